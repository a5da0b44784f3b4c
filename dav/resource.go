package dav

import (
	"context"
	"errors"
	"time"

	"github.com/emersion/go-ical"
	"github.com/mailyard/mailyard/dav/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

// resourceHorizon bounds the conflict check of a booking that recurs
// without end: its instances in this span after its start are checked.
const resourceHorizon = 2 * 365 * 24 * time.Hour

// resourceDecision answers an invitation of a room or equipment at once
// (issue 14 item 7, the default "auto" booking policy): ACCEPTED when
// the resource is free over every instance of the booking, DECLINED when
// any instance overlaps busy time of another object in its calendars
// (checked through the store's time-range index), or when the booking
// has more instances than Limits.MaxInstances.
func (h *Handler) resourceDecision(ctx context.Context, cu calUser, msg *ical.Calendar) (string, error) {
	cpy, err := cloneCalendar(msg)
	if err != nil {
		return "", err
	}
	data, err := encodeCalendar(withoutMethod(cpy))
	if err != nil {
		return "", err
	}
	obj, err := calendar.Parse(data, calendar.Limits{MaxSize: len(data) + 1, MaxAttendees: h.opts.Limits.MaxAttendees})
	if err != nil {
		return "DECLINED", nil
	}
	from, to := obj.Bounds()
	if to.IsZero() {
		to = from.Add(resourceHorizon)
	}
	if from.IsZero() {
		from = to.Add(-resourceHorizon)
	}
	want, err := obj.InZone(h.opts.FloatingLocation).Busy(from, to, h.opts.Limits.MaxInstances)
	if errors.Is(err, calendar.ErrTooManyInstances) {
		return "DECLINED", nil
	}
	if err != nil || len(want) == 0 {
		return "ACCEPTED", err
	}
	busy, err := h.busyExcept(ctx, cu.account, obj.UID(), want[0].Start, want[len(want)-1].End)
	if err != nil {
		return "", err
	}
	if overlaps(oneType(want), busy) {
		return "DECLINED", nil
	}
	return "ACCEPTED", nil
}

// busyExcept is an account's merged busy time in [from, to) over its
// calendars, leaving out the object with the given UID (the booking being
// decided, when it is updated).
func (h *Handler) busyExcept(ctx context.Context, account, uid string, from, to time.Time) ([]calendar.Period, error) {
	colls, err := h.opts.Store.ListCollections(ctx, account, store.KindCalendar)
	if err != nil {
		return nil, err
	}
	q := FreeBusyQuery{From: from, To: to, MaxInstances: h.opts.Limits.MaxInstances, FloatingLocation: h.opts.FloatingLocation}
	var periods []calendar.Period
	for _, c := range colls {
		if c.Name == inboxName {
			continue
		}
		sq := store.ObjectQuery{From: from, To: to, Limit: reportPage}
		for {
			objs, err := h.opts.Store.QueryObjects(ctx, c.ID, sq)
			if err != nil {
				return nil, err
			}
			for i := range objs {
				if objs[i].UID != uid {
					periods = append(periods, objectBusy(&objs[i], q)...)
				}
			}
			if len(objs) < sq.Limit {
				break
			}
			sq.After = objs[len(objs)-1].Name
		}
	}
	return oneType(periods), nil
}

// overlaps reports whether any period of a overlaps any of b; both are
// sorted by start.
func overlaps(a, b []calendar.Period) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i].Start.Before(b[j].End) && b[j].Start.Before(a[i].End) {
			return true
		}
		if a[i].End.Before(b[j].End) {
			i++
		} else {
			j++
		}
	}
	return false
}

// oneType merges periods regardless of their free/busy type, so that
// the result is sorted and disjoint.
func oneType(p []calendar.Period) []calendar.Period {
	out := make([]calendar.Period, len(p))
	for i := range p {
		out[i] = calendar.Period{Start: p[i].Start, End: p[i].End, Type: calendar.Busy}
	}
	return calendar.MergeBusy(out)
}
