package dav

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-vcard"
	"github.com/mailyard/mailyard/dav/internal/contact"
	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

// report answers REPORT (RFC 3253 §3.6) with the reports of RFC 4791
// §7, RFC 6352 §8 and RFC 6578 §3.
func (h *Handler) report(rq *request) error {
	body, err := h.readXML(rq.w, rq.r)
	if err != nil {
		return err
	}
	if body == nil {
		return &httpError{status: http.StatusBadRequest, msg: "REPORT needs a body"}
	}
	cal := rq.t.collKind() == store.KindCalendar
	switch {
	case body.is(nsCalDAV, "calendar-multiget") && cal, body.is(nsCardDAV, "addressbook-multiget") && !cal:
		return h.multiget(rq, body)
	case body.is(nsCalDAV, "calendar-query") && cal:
		return h.calendarQuery(rq, body)
	case body.is(nsCardDAV, "addressbook-query") && !cal:
		return h.addressbookQuery(rq, body)
	case body.is(nsCalDAV, "free-busy-query") && cal:
		return h.freeBusyQuery(rq, body)
	case body.is(nsDAV, "sync-collection"):
		return h.syncCollection(rq, body)
	case body.is(nsDAV, "expand-property"):
		return h.expandProperty(rq, body) // principals (expandprop.go)
	case body.is(nsDAV, "principal-property-search"):
		return h.principalPropertySearch(rq, body) // RFC 3744 §9.4 (principal_search.go)
	case body.is(nsDAV, "principal-search-property-set"):
		return h.principalSearchPropertySet(rq) // RFC 3744 §9.5
	}
	return precondition(http.StatusForbidden, nsDAV, "supported-report", "this report is not supported here")
}

// reportProps is what a report asks of each object: DAV properties and
// the object's data, whole or in part.
type reportProps struct {
	pr       propRequest
	calData  *calDataRequest
	cardData *cardDataRequest
	// etagOnly: of the DAV properties, the report asks for DAV:getetag
	// (once) or none, by name: objectResponse then writes an object
	// whose data it has straight through multistatus.objectData.
	etagOnly, etag bool
}

// calDataRequest is a CALDAV:calendar-data element (RFC 4791 §9.6).
type calDataRequest struct {
	comp       *compSelect // nil: every component and property
	expand     bool
	start, end time.Time
}

// compSelect is a CALDAV:comp element: which properties and components
// of a component to return (RFC 4791 §9.6.1).
type compSelect struct {
	name     string
	allProps bool
	props    []string
	allComps bool
	comps    []*compSelect
}

// cardDataRequest is a CARDDAV:address-data element (RFC 6352 §10.4).
type cardDataRequest struct {
	props []string // empty: the whole card
}

// parseReportProps reads the DAV:prop (or DAV:allprop, DAV:propname)
// child of a report body.
func parseReportProps(body *node) (reportProps, error) {
	var rp reportProps
	if body.child(nsDAV, "allprop") != nil {
		rp.pr.allprop = true
	}
	if body.child(nsDAV, "propname") != nil {
		rp.pr.propname = true
	}
	prop := body.child(nsDAV, "prop")
	if prop == nil {
		return rp, nil
	}
	for _, c := range prop.Children {
		switch {
		case c.is(nsCalDAV, "calendar-data"):
			cd, err := parseCalData(c)
			if err != nil {
				return rp, err
			}
			rp.calData = cd
		case c.is(nsCardDAV, "address-data"):
			rp.cardData = parseCardData(c)
		default:
			rp.pr.names = append(rp.pr.names, c.Name)
		}
	}
	getetag := xml.Name{Space: nsDAV, Local: "getetag"}
	switch {
	case rp.pr.allprop || rp.pr.propname:
	case len(rp.pr.names) == 0:
		rp.etagOnly = true
	case len(rp.pr.names) == 1 && rp.pr.names[0] == getetag:
		rp.etagOnly, rp.etag = true, true
	}
	return rp, nil
}

func parseCalData(n *node) (*calDataRequest, error) {
	if ct, ok := n.attr("content-type"); ok && ct != typeCalendar {
		return nil, precondition(http.StatusForbidden, nsCalDAV, "supported-calendar-data", "only text/calendar is served")
	}
	cd := &calDataRequest{}
	for _, c := range n.Children {
		switch {
		case c.is(nsCalDAV, "comp"):
			cd.comp = parseCompSelect(c, 0)
		case c.is(nsCalDAV, "expand"):
			start, end, err := parseTimeRange(c)
			if err != nil || start.IsZero() || end.IsZero() {
				return nil, precondition(http.StatusForbidden, nsCalDAV, "valid-filter", "expand needs start and end in UTC")
			}
			cd.expand, cd.start, cd.end = true, start, end
		case c.is(nsCalDAV, "limit-recurrence-set"), c.is(nsCalDAV, "limit-freebusy-set"):
			return nil, &httpError{status: http.StatusNotImplemented, msg: "CALDAV:" + c.Name.Local + " is not supported; use expand"}
		}
	}
	return cd, nil
}

func parseCompSelect(n *node, depth int) *compSelect {
	name, _ := n.attr("name")
	cs := &compSelect{name: strings.ToUpper(name)}
	if depth > 4 {
		cs.allProps, cs.allComps = true, true
		return cs
	}
	for _, c := range n.Children {
		switch {
		case c.is(nsCalDAV, "allprop"):
			cs.allProps = true
		case c.is(nsCalDAV, "prop"):
			if p, ok := c.attr("name"); ok {
				cs.props = append(cs.props, strings.ToUpper(p))
			}
		case c.is(nsCalDAV, "allcomp"):
			cs.allComps = true
		case c.is(nsCalDAV, "comp"):
			cs.comps = append(cs.comps, parseCompSelect(c, depth+1))
		}
	}
	return cs
}

func parseCardData(n *node) *cardDataRequest {
	cd := &cardDataRequest{}
	if n.child(nsCardDAV, "allprop") != nil {
		return cd
	}
	for _, c := range n.Children {
		if c.is(nsCardDAV, "prop") {
			if p, ok := c.attr("name"); ok {
				cd.props = append(cd.props, p)
			}
		}
	}
	return cd
}

// parseTimeRange reads the start and end attributes (UTC date-times,
// RFC 4791 §9.9); either may be absent.
func parseTimeRange(n *node) (start, end time.Time, err error) {
	for _, a := range []struct {
		name string
		t    *time.Time
	}{{"start", &start}, {"end", &end}} {
		v, ok := n.attr(a.name)
		if !ok {
			continue
		}
		if *a.t, err = time.Parse("20060102T150405Z", v); err != nil {
			return start, end, err
		}
	}
	return start, end, nil
}

// objectResponse writes one object of a report: its DAV properties and
// its data as asked. parsedCal, if not nil, is the object already
// parsed (by a query's filter).
func (h *Handler) objectResponse(rq *request, ms *multistatus, res *resource, rp reportProps, parsedCal *calendar.Object) error {
	var (
		data        []byte
		ok          bool
		space, name string
	)
	switch {
	case rp.calData != nil:
		var err error
		if data, ok, err = h.calendarData(rq, res.coll, res.obj, rp.calData, parsedCal); err != nil {
			return err
		}
		space, name = nsCalDAV, "calendar-data"
	case rp.cardData != nil:
		data, ok = h.cardData(rq, res.obj, rp.cardData)
		space, name = nsCardDAV, "address-data"
	}
	if rp.etagOnly && ok && len(data) > 0 && (res.t.kind == kindCalObject || res.t.kind == kindCard) {
		// What props and addData below would make, without the
		// elements: the ETag is the object's (propTable's getetag).
		return ms.objectData(h.hrefOf(res.t), rp.etag, res.obj.ETag, space, name, data)
	}
	stats := h.props(rq, res, rp.pr)
	if space != "" {
		stats = addData(stats, space, name, data, ok)
	}
	return ms.response(h.hrefOf(res.t), stats...)
}

// addData adds a data property to the 200 propstat, or to a 404 one
// when it could not be made.
func addData(stats []propstat, space, local string, data []byte, ok bool) []propstat {
	status := http.StatusOK
	if !ok {
		status = http.StatusNotFound
		data = nil
	}
	i := slices.IndexFunc(stats, func(p propstat) bool { return p.status == status })
	if i < 0 {
		stats = append(stats, propstat{status: status})
		i = len(stats) - 1
	}
	stats[i].props = append(stats[i].props, &node{Name: xml.Name{Space: space, Local: local}, Raw: data})
	return stats
}

// errInstanceLimit stops a report whose expansions reached
// Limits.MaxInstances instances over all its objects.
var errInstanceLimit = errors.New("expanded instances reached the limit")

// calendarData returns the calendar-data of an object: the stored bytes
// as they are (not copied: the caller only writes them) unless the
// request selects parts or expands recurrences. ok is false when the
// data cannot be made (answered 404 for the property). Expansion draws on the request's budget of
// Limits.MaxInstances instances: once an object would take the request
// past it, the error is errInstanceLimit and the report ends there with
// a 507 (RFC 5323 §5.17's number-of-matches-within-limits, which CalDAV
// clients know from truncated queries) instead of growing without
// bound. An object parsed here for expand has its floating times in its
// calendar's calendar-timezone (RFC 4791 §5.2.2), or the zone a
// calendar-query set for it (calzone.go).
func (h *Handler) calendarData(rq *request, coll *store.Collection, o *store.Object, cd *calDataRequest, obj *calendar.Object) (data []byte, ok bool, err error) {
	if cd.comp == nil && !cd.expand {
		return o.Data, true, nil
	}
	if obj == nil {
		if obj, err = h.parseCalendar(coll.ID, o); err != nil {
			rq.log.Warn("stored calendar object does not parse", "object", o.Name, "err", err)
			return nil, false, nil
		}
		if cd.expand {
			if obj, err = rq.calendarZones(h).place(rq.ctx, coll, obj, h.opts.FloatingLocation); err != nil {
				return nil, false, err
			}
		}
	}
	cal := obj.Calendar()
	if cd.expand {
		limit := h.opts.Limits.MaxInstances
		left := limit - rq.expanded
		if left <= 0 {
			return nil, false, errInstanceLimit
		}
		if cal, err = obj.Expand(cd.start, cd.end, left); err != nil {
			if errors.Is(err, calendar.ErrTooManyInstances) && left < limit {
				return nil, false, errInstanceLimit
			}
			rq.log.Info("expand refused", "object", o.Name, "err", err)
			return nil, false, nil
		}
		rq.expanded += len(cal.Children)
	}
	comp := cal.Component
	if cd.comp != nil {
		comp = selectComponent(cal.Component, cd.comp)
	}
	var b bytes.Buffer
	if err := ical.NewEncoder(&b).Encode(&ical.Calendar{Component: comp}); err != nil {
		rq.log.Info("calendar-data selection is not valid iCalendar", "object", o.Name, "err", err)
		return nil, false, nil
	}
	return b.Bytes(), true, nil
}

// requiredProps are the properties iCalendar requires of each component
// (RFC 5545 §3.6): a selection keeps them, so that what is returned is
// still valid iCalendar.
func requiredProps(comp string) []string {
	switch comp {
	case ical.CompCalendar:
		return []string{ical.PropProductID, ical.PropVersion}
	case ical.CompEvent, ical.CompToDo, ical.CompJournal, ical.CompFreeBusy:
		return []string{ical.PropUID, ical.PropDateTimeStamp}
	case ical.CompTimezone:
		return []string{ical.PropTimezoneID}
	case ical.CompTimezoneStandard, ical.CompTimezoneDaylight:
		return []string{ical.PropDateTimeStart, ical.PropTimezoneOffsetFrom, ical.PropTimezoneOffsetTo}
	case ical.CompAlarm:
		return []string{ical.PropAction, ical.PropTrigger}
	}
	return nil
}

// selectComponent returns a copy of c with only the properties and
// components sel names (RFC 4791 §9.6.1), sharing property values.
func selectComponent(c *ical.Component, sel *compSelect) *ical.Component {
	out := &ical.Component{Name: c.Name, Props: ical.Props{}}
	for name, props := range c.Props {
		if sel.allProps || slices.Contains(sel.props, name) || slices.Contains(requiredProps(c.Name), name) {
			out.Props[name] = props
		}
	}
	for _, child := range c.Children {
		if sel.allComps {
			out.Children = append(out.Children, child)
			continue
		}
		if i := slices.IndexFunc(sel.comps, func(s *compSelect) bool { return s.name == child.Name }); i >= 0 {
			out.Children = append(out.Children, selectComponent(child, sel.comps[i]))
		}
	}
	return out
}

// cardData returns the address-data of an object: the stored card, or
// the selected properties of it (RFC 6352 §10.4.2).
func (h *Handler) cardData(rq *request, o *store.Object, cd *cardDataRequest) ([]byte, bool) {
	if len(cd.props) == 0 {
		return o.Data, true
	}
	card, err := contact.Parse(o.Data, contact.Limits{MaxSize: len(o.Data) + 1})
	if err != nil {
		rq.log.Warn("stored vCard does not parse", "object", o.Name, "err", err)
		return nil, false
	}
	return encodeCard(contact.Project(card.VCard(), cd.props))
}

func encodeCard(c vcard.Card) ([]byte, bool) {
	var b bytes.Buffer
	if err := vcard.NewEncoder(&b).Encode(c); err != nil {
		return nil, false
	}
	return b.Bytes(), true
}

// parseCalendar parses a stored object of collection coll with the
// handler's limits and floating time zone, through the handler's cache
// of parsed objects.
func (h *Handler) parseCalendar(coll int64, o *store.Object) (*calendar.Object, error) {
	return h.parseCalendarIn(coll, o, nil)
}

// parseCalendarIn is parseCalendar with floating times read in tz, or
// with tz nil in Options.FloatingLocation. The cache holds objects
// before any zone is applied, so each query gets its own.
func (h *Handler) parseCalendarIn(coll int64, o *store.Object, tz *calendar.Timezone) (*calendar.Object, error) {
	lim := storedLimits(o.Data, h.zones)
	lim.MaxAttendees = max(lim.MaxAttendees, h.opts.Limits.MaxAttendees)
	obj, err := h.parsed.parse(coll, o, lim)
	if err != nil {
		return nil, err
	}
	if tz != nil {
		return obj.InTimezone(tz), nil
	}
	return obj.InZone(h.opts.FloatingLocation), nil
}

// storedLimits are the limits a stored object is read again with: it
// passed the configured ones when it was stored, and a lowered limit
// must not hide it, so only its own size bounds it.
func storedLimits(data []byte, zones *calendar.ZoneCache) calendar.Limits {
	return calendar.Limits{MaxSize: len(data) + 1, MaxAttendees: 1 << 20, Zones: zones}
}

// reportPage is how many objects (with their data) a report reads at
// once; pageObjects holds two pages, at most 2 * reportPage *
// Limits.MaxResourceSize bytes, typically a few megabytes. Pages of 100
// made BenchmarkAddressbookQuery slower.
const reportPage = 250

// objectPage is one page of pageObjects, or the error that ended the
// reading.
type objectPage struct {
	objs []store.Object
	err  error
}

// pageObjects calls fn for every object of a collection that q selects,
// a page at a time, so that memory stays bounded by two pages: while fn
// goes through one page, the next is read in another goroutine. A long
// report's two halves, the store's reading and the answer's writing,
// then run side by side on two cores instead of one after the other.
func (h *Handler) pageObjects(ctx context.Context, collectionID int64, q store.ObjectQuery, fn func(*store.Object) error) error {
	q.Limit = reportPage
	objs, err := h.opts.Store.QueryObjects(ctx, collectionID, q)
	if err != nil {
		return err
	}
	if len(objs) < q.Limit {
		return eachObject(objs, fn) // the only page: nothing to read ahead
	}
	ctx, cancel := context.WithCancel(ctx)
	pages := make(chan objectPage) // unbuffered: one page read ahead, no more
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	q.After = objs[len(objs)-1].Name
	wg.Go(func() {
		defer close(pages)
		for {
			page, err := h.opts.Store.QueryObjects(ctx, collectionID, q)
			select {
			case pages <- objectPage{page, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(page) < q.Limit {
				return
			}
			q.After = page[len(page)-1].Name
		}
	})
	if err := eachObject(objs, fn); err != nil {
		return err
	}
	for p := range pages {
		if p.err != nil {
			return p.err
		}
		if err := eachObject(p.objs, fn); err != nil {
			return err
		}
	}
	return nil
}

// eachObject calls fn for each object until it returns an error.
func eachObject(objs []store.Object, fn func(*store.Object) error) error {
	for i := range objs {
		if err := fn(&objs[i]); err != nil {
			return err
		}
	}
	return nil
}
