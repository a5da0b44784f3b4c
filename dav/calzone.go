package dav

import (
	"context"
	"time"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

// calendarZones places objects' floating times (and DATE values) in the
// calendar-timezone of the calendar holding them (RFC 4791 §5.2.2),
// reading each calendar's property once, and only for an object that has
// such times. It serves one report or one free/busy computation and is
// not safe for concurrent use.
type calendarZones struct {
	recs store.Records // nil when the store keeps no records
	byID map[int64]*calendar.Timezone
}

// newCalendarZones reads calendar-timezone from st's NamespaceProps
// records, if st keeps records.
func newCalendarZones(st Store) *calendarZones {
	z := &calendarZones{byID: map[int64]*calendar.Timezone{}}
	z.recs, _ = st.(store.Records)
	return z
}

// set makes tz the zone of the calendar with the given ID for what is
// left of the request: a calendar-query's own CALDAV:timezone, which
// wins over the calendar's (§7.3); nil is Options.FloatingLocation.
func (z *calendarZones) set(id int64, tz *calendar.Timezone) { z.byID[id] = tz }

// known reports whether the zone of the calendar with the given ID is
// read already, so that place reads nothing for it.
func (z *calendarZones) known(id int64) bool {
	_, ok := z.byID[id]
	return ok
}

// of returns c's calendar-timezone, or nil if it has none.
func (z *calendarZones) of(ctx context.Context, c *store.Collection) (*calendar.Timezone, error) {
	if tz, ok := z.byID[c.ID]; ok {
		return tz, nil
	}
	tz, err := readTimezone(ctx, z.recs, *c)
	if err != nil {
		return nil, err
	}
	z.byID[c.ID] = tz
	return tz, nil
}

// place returns obj with its floating times in c's calendar-timezone,
// or in loc when c has none.
func (z *calendarZones) place(ctx context.Context, c *store.Collection, obj *calendar.Object, loc *time.Location) (*calendar.Object, error) {
	if !obj.HasFloating() {
		return obj.InZone(loc), nil
	}
	tz, err := z.of(ctx, c)
	if err != nil {
		return nil, err
	}
	if tz != nil {
		return obj.InTimezone(tz), nil
	}
	return obj.InZone(loc), nil
}

// calendarZones is the request's calendarZones, made the first time it
// is needed.
func (rq *request) calendarZones(h *Handler) *calendarZones {
	if rq.calZones == nil {
		rq.calZones = newCalendarZones(h.opts.Store)
	}
	return rq.calZones
}
