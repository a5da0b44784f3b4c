package dav

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/emersion/go-ical"
	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

// BusyPeriod is a span [Start, End) of busy time in UTC and its free/busy
// type (RFC 5545 §3.2.9): "BUSY", "BUSY-TENTATIVE" or "BUSY-UNAVAILABLE".
type BusyPeriod struct {
	Start, End time.Time
	Type       string
}

// FreeBusyQuery asks for the busy time of accounts in [From, To).
type FreeBusyQuery struct {
	// Accounts are store accounts (directory.User.ID, or a resource's).
	Accounts []string
	// From and To bound the range; To must be after From.
	From, To time.Time
	// MaxInstances bounds the recurrence instances one object may
	// expand to; 0 means DefaultMaxInstances. An object beyond it counts
	// as busy over its whole stored extent within the range.
	MaxInstances int
	// FloatingLocation is where floating times are read in a calendar
	// without a calendar-timezone; nil is UTC.
	FloatingLocation *time.Location
	// zones, if not nil, shares parsed VTIMEZONE definitions between the
	// objects read (the Handler's own, for its REPORTs).
	zones *calendar.ZoneCache
	// parsed, if not nil, keeps parsed objects between queries (the
	// Handler's own).
	parsed *parsedCache
	// timezone, if not nil, is where floating times are read instead of
	// FloatingLocation: the calendar's calendar-timezone, for the
	// free-busy-query REPORT on it (RFC 4791 §5.2.2).
	timezone *calendar.Timezone
	// calZones, if not nil, reads the calendar-timezone of each calendar
	// (FreeBusy sets it).
	calZones *calendarZones
	// skipUID, if not empty, leaves out the object with this UID (a
	// booking being decided, when it is updated).
	skipUID string
}

// FreeBusy returns, for each account of q, its merged busy periods within
// [q.From, q.To) over all its calendars that hold events (RFC 4791
// §7.10): events marked TRANSP:TRANSPARENT or STATUS:CANCELLED are free,
// STATUS:TENTATIVE is BUSY-TENTATIVE, and nothing but the time is told,
// so private events show as busy only. Floating times and all-day
// events are read in the calendar-timezone of the calendar holding them
// (RFC 4791 §5.2.2; kept in NamespaceProps when st is a store.Records),
// else in q.FloatingLocation. Only the store's time-range index
// candidates are parsed. An account without calendars has no busy time.
func FreeBusy(ctx context.Context, st Store, q FreeBusyQuery) (map[string][]BusyPeriod, error) {
	if !q.To.After(q.From) || q.From.IsZero() {
		return nil, errors.New("dav: free/busy range needs From before To")
	}
	if q.calZones == nil {
		q.calZones = newCalendarZones(st)
	}
	if q.MaxInstances <= 0 {
		q.MaxInstances = DefaultMaxInstances
	}
	if aq, ok := st.(store.AccountsQuerier); ok {
		return accountsBusy(ctx, aq, q)
	}
	out := make(map[string][]BusyPeriod, len(q.Accounts))
	for _, acct := range q.Accounts {
		colls, err := st.ListCollections(ctx, acct, store.KindCalendar)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("dav: free/busy of %s: %w", acct, err)
		}
		var periods []calendar.Period
		for _, c := range colls {
			if !busyCollection(&c) {
				continue
			}
			p, err := collectionBusy(ctx, st, &c, q)
			if err != nil {
				return nil, fmt.Errorf("dav: free/busy of %s: %w", acct, err)
			}
			periods = append(periods, p...)
		}
		out[acct] = mergeBusy(periods)
	}
	return out, nil
}

// accountsBusy is FreeBusy in one read of the store for all the
// accounts (store.AccountsQuerier): a meeting's fifty attendees cost one
// query rather than a ListCollections and a QueryObjects each. The walk
// may not call the store, so an object with floating times in a
// calendar whose calendar-timezone is not read yet waits, parsed, until
// the walk is over.
func accountsBusy(ctx context.Context, aq store.AccountsQuerier, q FreeBusyQuery) (map[string][]BusyPeriod, error) {
	periods := make(map[string][]calendar.Period, len(q.Accounts))
	type waiting struct {
		c   store.Collection
		o   store.Object
		obj *calendar.Object
	}
	var later []waiting
	err := aq.QueryAccounts(ctx, q.Accounts, store.KindCalendar, store.ObjectQuery{From: q.From, To: q.To},
		func(c *store.Collection, o *store.Object) error {
			if !busyCollection(c) || (q.skipUID != "" && o.UID == q.skipUID) {
				return ctx.Err()
			}
			obj := busyObject(c, o, q)
			switch {
			case obj == nil:
			case q.timezone == nil && q.calZones != nil && obj.HasFloating() && !q.calZones.known(c.ID):
				later = append(later, waiting{c: *c, o: *o, obj: obj})
			default:
				placed, err := q.place(ctx, c, obj) // reads nothing: the zone is known or not needed
				if err != nil {
					return err
				}
				periods[c.Account] = append(periods[c.Account], busyOf(placed, o, q)...)
			}
			return ctx.Err()
		})
	if err != nil {
		return nil, fmt.Errorf("dav: free/busy: %w", err)
	}
	for i := range later {
		w := &later[i]
		placed, err := q.place(ctx, &w.c, w.obj)
		if err != nil {
			return nil, fmt.Errorf("dav: free/busy: %w", err)
		}
		periods[w.c.Account] = append(periods[w.c.Account], busyOf(placed, &w.o, q)...)
	}
	out := make(map[string][]BusyPeriod, len(q.Accounts))
	for _, acct := range q.Accounts {
		out[acct] = mergeBusy(periods[acct])
	}
	return out, nil
}

// busyCollection tells whether a calendar's events are its owner's
// time: not the schedule inbox, whose scheduling messages are not
// (RFC 6638 §2.2), nor a calendar that holds neither events nor
// free/busy.
func busyCollection(c *store.Collection) bool {
	if c.Name == inboxName {
		return false
	}
	return len(c.Components) == 0 || slices.Contains(c.Components, "VEVENT") || slices.Contains(c.Components, "VFREEBUSY")
}

// mergeBusy is calendar.MergeBusy of the periods, as BusyPeriods.
func mergeBusy(periods []calendar.Period) []BusyPeriod {
	merged := calendar.MergeBusy(periods)
	bp := make([]BusyPeriod, len(merged))
	for i, p := range merged {
		bp[i] = BusyPeriod(p)
	}
	return bp
}

// collectionBusy is the busy time of one calendar, read a page of index
// candidates at a time.
func collectionBusy(ctx context.Context, st Store, c *store.Collection, q FreeBusyQuery) ([]calendar.Period, error) {
	var periods []calendar.Period
	sq := store.ObjectQuery{From: q.From, To: q.To, Limit: reportPage}
	for {
		objs, err := st.QueryObjects(ctx, c.ID, sq)
		if err != nil {
			return nil, err
		}
		for i := range objs {
			if q.skipUID != "" && objs[i].UID == q.skipUID {
				continue
			}
			p, err := objectBusy(ctx, c, &objs[i], q)
			if err != nil {
				return nil, err
			}
			periods = append(periods, p...)
		}
		if len(objs) < sq.Limit {
			return periods, nil
		}
		sq.After = objs[len(objs)-1].Name
	}
}

// objectBusy is one object's busy time. An object that cannot be
// expanded within the limit is busy over its indexed extent: claiming
// too much time is safer for scheduling than claiming too little. The
// error is only a failure to read c's calendar-timezone.
func objectBusy(ctx context.Context, c *store.Collection, o *store.Object, q FreeBusyQuery) ([]calendar.Period, error) {
	obj := busyObject(c, o, q)
	if obj == nil {
		return nil, nil
	}
	obj, err := q.place(ctx, c, obj)
	if err != nil {
		return nil, err
	}
	return busyOf(obj, o, q), nil
}

// busyObject parses an object that may make its owner busy, or returns
// nil.
func busyObject(c *store.Collection, o *store.Object, q FreeBusyQuery) *calendar.Object {
	if o.Component != "" && o.Component != "VEVENT" && o.Component != "VFREEBUSY" {
		return nil
	}
	obj, err := q.parsed.parse(c.ID, o, storedLimits(o.Data, q.zones))
	if err != nil {
		return nil
	}
	return obj
}

// place gives obj's floating times their zone: q.timezone, else c's
// calendar-timezone (through q.calZones), else q.FloatingLocation.
func (q FreeBusyQuery) place(ctx context.Context, c *store.Collection, obj *calendar.Object) (*calendar.Object, error) {
	switch {
	case q.timezone != nil:
		return obj.InTimezone(q.timezone), nil
	case q.calZones != nil:
		return q.calZones.place(ctx, c, obj, q.FloatingLocation)
	}
	return obj.InZone(q.FloatingLocation), nil
}

// busyOf is the busy time of obj, stored as o, within the query's range.
func busyOf(obj *calendar.Object, o *store.Object, q FreeBusyQuery) []calendar.Period {
	p, err := obj.Busy(q.From, q.To, q.MaxInstances)
	if errors.Is(err, calendar.ErrTooManyInstances) {
		start, end := o.Start, o.End
		if start.IsZero() || start.Before(q.From) {
			start = q.From
		}
		if end.IsZero() || end.After(q.To) {
			end = q.To
		}
		return []calendar.Period{{Start: start.UTC(), End: end.UTC(), Type: calendar.Busy}}
	}
	if err != nil {
		return nil
	}
	return p
}

// freeBusyQuery answers the free-busy-query REPORT (RFC 4791 §7.10) on a
// calendar with a VFREEBUSY of its busy time in the time-range.
func (h *Handler) freeBusyQuery(rq *request, body *node) error {
	if rq.t.kind != kindCalendar {
		return &httpError{status: http.StatusForbidden, msg: "free-busy-query applies to a calendar"}
	}
	tr := body.child(nsCalDAV, "time-range")
	if tr == nil {
		return &httpError{status: http.StatusBadRequest, msg: "free-busy-query needs a time-range"}
	}
	from, to, err := timeRangeFilter(tr)
	if err != nil {
		return err
	}
	if from.IsZero() || to.IsZero() {
		return &httpError{status: http.StatusBadRequest, msg: "free-busy-query needs start and end"}
	}
	c, err := h.collection(rq, rq.t)
	if err != nil {
		return err
	}
	// Floating times are read in the calendar's calendar-timezone, if it
	// has one (RFC 4791 §5.2.2).
	tz, err := h.timezone(rq.ctx, c)
	if err != nil {
		return err
	}
	q := FreeBusyQuery{From: from, To: to, MaxInstances: h.opts.Limits.MaxInstances, FloatingLocation: h.opts.FloatingLocation,
		timezone: tz, zones: h.zones, parsed: h.parsed}
	periods, err := collectionBusy(rq.ctx, h.opts.Store, &c, q)
	if err != nil {
		return err
	}
	cal := calendar.FreeBusyCalendar(periods, calendar.FreeBusyInfo{From: from, To: to, Stamp: time.Now()})
	var b bytes.Buffer
	if err := ical.NewEncoder(&b).Encode(cal); err != nil {
		return err
	}
	rq.w.Header().Set("Content-Type", typeCalendar+"; charset=utf-8")
	rq.w.WriteHeader(http.StatusOK)
	_, _ = rq.w.Write(b.Bytes())
	return nil
}
