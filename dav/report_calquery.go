package dav

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/internal/textmatch"
	"github.com/mailyard/mailyard/store"
)

// queryTimezone is the zone of a calendar-query's floating times (RFC
// 4791 §7.3): the request's CALDAV:timezone (§9.8), else the calendar's
// calendar-timezone, else nil (Options.FloatingLocation).
func (h *Handler) queryTimezone(rq *request, body *node, c store.Collection) (*calendar.Timezone, error) {
	if n := body.child(nsCalDAV, "timezone"); n != nil {
		if len(n.Text) > maxTimezoneSize {
			return nil, precondition(http.StatusForbidden, nsCalDAV, "valid-calendar-data", "timezone too large")
		}
		tz, err := calendar.ParseTimezone([]byte(n.Text))
		if err != nil {
			return nil, precondition(http.StatusForbidden, nsCalDAV, "valid-calendar-data", "timezone: "+err.Error())
		}
		return tz, nil
	}
	return h.timezone(rq.ctx, c)
}

// maxFilterDepth bounds the nesting of comp-filters (VCALENDAR, a
// component, VALARM, and room to spare).
const maxFilterDepth = 6

// calendarQuery answers calendar-query (RFC 4791 §7.8). The store's
// time-range index selects the candidates of the filter's component and
// time range (a superset); each candidate is then parsed and matched
// against the whole filter, a page at a time, and written as it
// matches.
func (h *Handler) calendarQuery(rq *request, body *node) error {
	rp, err := parseReportProps(body)
	if err != nil {
		return err
	}
	filterNode := body.child(nsCalDAV, "filter")
	if filterNode == nil {
		return precondition(http.StatusForbidden, nsCalDAV, "valid-filter", "calendar-query needs a filter")
	}
	f, err := parseCalFilter(filterNode)
	if err != nil {
		return err
	}
	c, err := h.collection(rq, rq.t)
	if err != nil {
		return err
	}
	tz, err := h.queryTimezone(rq, body, c)
	if err != nil {
		return err
	}
	rq.calendarZones(h).set(c.ID, tz) // for the objects the index matches unparsed
	ms := newMultistatus(rq.w)
	match := func(o *store.Object) error {
		if indexMatches(f, o) {
			t := target{kind: kindCalObject, user: rq.t.user, coll: rq.t.coll, name: o.Name}
			return h.objectResponse(rq, ms, &resource{t: t, coll: &c, obj: o}, rp, nil)
		}
		obj, err := h.parseCalendarIn(c.ID, o, tz)
		if err != nil {
			rq.log.Warn("stored calendar object does not parse", "object", o.Name, "err", err)
			return nil
		}
		ok, err := obj.Match(f, h.opts.Limits.MaxInstances)
		if errors.Is(err, calendar.ErrTooManyInstances) {
			// Returning a candidate the filter could not finish is
			// better than hiding it: the client filters again.
			rq.log.Info("calendar-query match gave up", "object", o.Name, "err", err)
			ok = true
		} else if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		t := target{kind: kindCalObject, user: rq.t.user, coll: rq.t.coll, name: o.Name}
		return h.objectResponse(rq, ms, &resource{t: t, coll: &c, obj: o}, rp, obj)
	}
	if rq.t.kind == kindCalObject {
		_, o, err := h.object(rq, rq.t)
		if err == nil {
			err = match(&o)
		}
		return h.endQuery(rq, ms, err)
	}
	return h.endQuery(rq, ms, h.pageObjects(rq.ctx, c.ID, prefilter(f), match))
}

// prefilter turns the filter into the store query that selects a
// superset of its matches: the one component it asks for and that
// component's time range.
func prefilter(f calendar.CompFilter) store.ObjectQuery {
	var q store.ObjectQuery
	if len(f.Comps) != 1 || f.Comps[0].IsNotDefined {
		return q
	}
	c := f.Comps[0]
	switch c.Name {
	case "VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY":
		q.Component = c.Name
	}
	q.From, q.To = c.Start, c.End
	return q
}

// parseCalFilter reads a CALDAV:filter (RFC 4791 §9.7), whose one
// comp-filter must name VCALENDAR.
func parseCalFilter(n *node) (calendar.CompFilter, error) {
	if len(n.Children) != 1 || !n.Children[0].is(nsCalDAV, "comp-filter") {
		return calendar.CompFilter{}, invalidFilter("the filter must hold one comp-filter")
	}
	f, err := parseCompFilter(n.Children[0], 0)
	if err == nil && f.Name != "VCALENDAR" {
		err = invalidFilter("the top comp-filter must name VCALENDAR")
	}
	return f, err
}

func invalidFilter(msg string) error {
	return precondition(http.StatusForbidden, nsCalDAV, "valid-filter", msg)
}

func parseCompFilter(n *node, depth int) (calendar.CompFilter, error) {
	if depth > maxFilterDepth {
		return calendar.CompFilter{}, invalidFilter("comp-filters nested too deeply")
	}
	name, ok := n.attr("name")
	if !ok || name == "" {
		return calendar.CompFilter{}, invalidFilter("comp-filter without a name")
	}
	f := calendar.CompFilter{Name: strings.ToUpper(name)}
	for _, c := range n.Children {
		var err error
		switch {
		case c.is(nsCalDAV, "is-not-defined"):
			f.IsNotDefined = true
		case c.is(nsCalDAV, "time-range"):
			f.Start, f.End, err = timeRangeFilter(c)
		case c.is(nsCalDAV, "prop-filter"):
			var pf calendar.PropFilter
			pf, err = parsePropFilter(c)
			f.Props = append(f.Props, pf)
		case c.is(nsCalDAV, "comp-filter"):
			var cf calendar.CompFilter
			cf, err = parseCompFilter(c, depth+1)
			f.Comps = append(f.Comps, cf)
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

// timeRangeFilter reads a time-range: UTC, at least one bound, end after
// start (RFC 4791 §9.9).
func timeRangeFilter(n *node) (start, end time.Time, err error) {
	start, end, err = parseTimeRange(n)
	switch {
	case err != nil:
		return start, end, invalidFilter("time-range bounds must be UTC date-times")
	case start.IsZero() && end.IsZero():
		return start, end, invalidFilter("time-range needs start or end")
	case !start.IsZero() && !end.IsZero() && !end.After(start):
		return start, end, invalidFilter("time-range end must be after start")
	}
	return start, end, nil
}

func parsePropFilter(n *node) (calendar.PropFilter, error) {
	name, ok := n.attr("name")
	if !ok || name == "" {
		return calendar.PropFilter{}, invalidFilter("prop-filter without a name")
	}
	pf := calendar.PropFilter{Name: strings.ToUpper(name)}
	for _, c := range n.Children {
		var err error
		switch {
		case c.is(nsCalDAV, "is-not-defined"):
			pf.IsNotDefined = true
		case c.is(nsCalDAV, "time-range"):
			pf.Start, pf.End, err = timeRangeFilter(c)
		case c.is(nsCalDAV, "text-match"):
			pf.TextMatch, err = textMatch(c, nsCalDAV)
		case c.is(nsCalDAV, "param-filter"):
			var p calendar.ParamFilter
			p, err = parseParamFilter(c)
			pf.Params = append(pf.Params, p)
		}
		if err != nil {
			return pf, err
		}
	}
	return pf, nil
}

func parseParamFilter(n *node) (calendar.ParamFilter, error) {
	name, ok := n.attr("name")
	if !ok || name == "" {
		return calendar.ParamFilter{}, invalidFilter("param-filter without a name")
	}
	p := calendar.ParamFilter{Name: strings.ToUpper(name)}
	for _, c := range n.Children {
		switch {
		case c.is(nsCalDAV, "is-not-defined"):
			p.IsNotDefined = true
		case c.is(nsCalDAV, "text-match"):
			m, err := textMatch(c, nsCalDAV)
			if err != nil {
				return p, err
			}
			p.TextMatch = m
		}
	}
	return p, nil
}

// textMatch reads a text-match of CalDAV (always "contains", RFC 4791
// §9.7.5) or CardDAV (with match-type, RFC 6352 §10.5.4). An unknown
// collation is the supported-collation precondition.
func textMatch(n *node, space string) (*textmatch.Matcher, error) {
	collation, _ := n.attr("collation")
	negate, _ := n.attr("negate-condition")
	mt := textmatch.Contains
	if space == nsCardDAV {
		if v, ok := n.attr("match-type"); ok {
			mt = textmatch.MatchType(v)
		}
	}
	switch mt {
	case textmatch.Contains, textmatch.Equals, textmatch.StartsWith, textmatch.EndsWith:
	default:
		return nil, precondition(http.StatusForbidden, space, "valid-filter", "unknown match-type")
	}
	m, err := textmatch.New(n.Text, collation, mt, negate == "yes")
	if errors.Is(err, textmatch.ErrUnsupportedCollation) {
		return nil, precondition(http.StatusForbidden, space, "supported-collation", err.Error())
	}
	if err != nil {
		return nil, precondition(http.StatusForbidden, space, "valid-filter", err.Error())
	}
	return m, nil
}

// indexMatches reports whether the object's index entry alone shows that
// it matches f, so that calendar-query need not parse it. That holds for
// the common "events in a time-range" filter (a VCALENDAR comp-filter
// holding only a VEVENT comp-filter with at most a time-range) on an
// object that has exactly one instance and whose indexed bounds lie
// inside the range:
//
//   - the bounds hold every instance's extent as RFC 4791 §9.9 defines it
//     (calendar.Object.Bounds; floating times 14 hours wider), so an
//     instance within bounds strictly inside the range starts after its
//     start and ends before its end, and then overlaps the range by every
//     row of §9.9's table, the zero-length ones included (an event whose
//     DTEND equals DTSTART matches only a range with start < DTSTART);
//   - one instance exists when the event has no RRULE, RDATE, EXRULE,
//     EXDATE or RECURRENCE-ID (singleInstance): an EXDATE could remove the
//     only instance, and the bounds then still hold the first one.
//
// It also holds for a bare VCALENDAR comp-filter (a client's "everything"
// query), which every stored object satisfies: PUT stored only objects
// that parse as one VCALENDAR (RFC 4791 §9.7.1).
//
// Anything else goes through calendar.Object.Match.
// TestIndexMatchesEqualsMatch checks it against the full path.
func indexMatches(f calendar.CompFilter, o *store.Object) bool {
	if f.Name == "VCALENDAR" && !f.IsNotDefined && !hasTimeRange(f.Start, f.End) && len(f.Props) == 0 && len(f.Comps) == 0 {
		return true
	}
	if !eventRangeOnly(f) || o.Component != "VEVENT" || o.Start.IsZero() || o.End.IsZero() {
		return false
	}
	tr := f.Comps[0]
	if !tr.Start.IsZero() && !o.Start.After(tr.Start) {
		return false
	}
	if !tr.End.IsZero() && !o.End.Before(tr.End) {
		return false
	}
	return singleInstance(o.Data)
}

// eventRangeOnly reports whether f is VCALENDAR > VEVENT with nothing but
// an optional time-range on the VEVENT.
func eventRangeOnly(f calendar.CompFilter) bool {
	if f.Name != "VCALENDAR" || f.IsNotDefined || hasTimeRange(f.Start, f.End) || len(f.Props) != 0 || len(f.Comps) != 1 {
		return false
	}
	c := f.Comps[0]
	return c.Name == "VEVENT" && !c.IsNotDefined && len(c.Props) == 0 && len(c.Comps) == 0
}

func hasTimeRange(start, end time.Time) bool { return !start.IsZero() || !end.IsZero() }

// recurrenceNames are the properties that make or change a recurrence
// set (RFC 5545 §3.8.5, EXRULE of RFC 2445 §4.8.5.2), upper case.
var recurrenceNames = [][]byte{[]byte("RRULE"), []byte("RDATE"), []byte("EXRULE"), []byte("EXDATE"), []byte("RECURRENCE-ID")}

// singleInstance reports whether the iCalendar text data names none of
// the recurrence properties anywhere, judged on its text upper-cased
// with every CR, LF, space and tab removed: a property name split by a
// line fold (RFC 5545 §3.1) is found whole, and a name that only occurs
// inside a value just sends the object the slow way.
func singleInstance(data []byte) bool {
	// A typical event fits the array, which stays on the stack: this
	// runs for every candidate of every time-range query.
	var buf [4096]byte
	squeezed := buf[:0]
	for _, c := range data {
		switch {
		case c == '\r' || c == '\n' || c == ' ' || c == '\t':
		case 'a' <= c && c <= 'z':
			squeezed = append(squeezed, c-'a'+'A')
		default:
			squeezed = append(squeezed, c)
		}
	}
	for _, name := range recurrenceNames {
		if bytes.Contains(squeezed, name) {
			return false
		}
	}
	return true
}
