package calendar

import (
	"errors"
	"time"
)

// floatingReach widens the bounds of an object with floating times: UTC
// offsets in use range from -12:00 to +14:00.
const floatingReach = 14 * time.Hour

// Bounds returns the earliest start and the latest end over the object's
// whole recurrence set, with the semantics of store.Object.Start/End: a
// zero start is unbounded in the past, a zero end unbounded in the
// future (an RRULE with neither COUNT nor UNTIL), and a component that
// time-ranges never exclude (a VTODO without dates) has both zero.
//
// The bounds contain every instance's extent as RFC 4791 §9.9 defines
// it, so a range [from, to) that overlaps an instance always satisfies
// (start.IsZero() || start < to) && (end.IsZero() || end > from); where
// an instance matches a range that only touches it (a zero-length event
// at a range's start) the bound is a second wider. A series longer than
// Limits.BoundsInstances is bounded without expanding it: by UNTIL plus
// the longest instance, or unbounded for COUNT. Floating times widen the
// bounds by 14 hours, so they hold in any calendar time zone.
func (o *Object) Bounds() (start, end time.Time) {
	o.bounds.once.Do(func() { o.bounds.start, o.bounds.end = o.computeBounds() })
	return o.bounds.start, o.bounds.end
}

func (o *Object) computeBounds() (time.Time, time.Time) {
	u := o.InZone(time.UTC)
	var h hull
	add := func(in *instance) bool {
		for _, s := range u.spans(in) {
			h.add(s)
		}
		return true
	}
	m := u.master
	unbounded := m != nil && m.rule != nil && m.rule.Count == 0 && m.rule.Until.IsZero()
	err := u.each(time.Time{}, time.Time{}, newBudget(o.lim.BoundsInstances), unbounded, add)
	switch {
	case unbounded:
		h.hiInf = true
	case errors.Is(err, ErrTooManyInstances) && m.rule.Until.IsZero():
		h.hiInf = true
	case errors.Is(err, ErrTooManyInstances):
		g := u.newGenerator(newBudget(1), add)
		after, _ := g.reach()
		h.add(pointSpan(toInstant(g.z, g.untilWall()).Add(after)))
	case err != nil:
		return time.Time{}, time.Time{}
	}
	if m != nil && m.hasStart {
		// The first instance of the series, even if an EXDATE removes it.
		h.add(pointSpan(u.instant(m.start)))
	}
	return h.bounds(o.hasFloating)
}

// hull is the union of spans.
type hull struct {
	lo, hi       time.Time
	loInf, hiInf bool
	any          bool
}

func (h *hull) add(s span) {
	if s.never {
		return
	}
	lo, hi := s.lo, s.hi
	if s.loClosed {
		lo = lo.Add(-time.Second)
	}
	if s.hiClosed {
		hi = hi.Add(time.Second)
	}
	h.loInf = h.loInf || s.loInf
	h.hiInf = h.hiInf || s.hiInf
	if !s.loInf && (!h.any || lo.Before(h.lo)) {
		h.lo = lo
	}
	if !s.hiInf && (!h.any || hi.After(h.hi)) {
		h.hi = hi
	}
	h.any = true
}

func (h *hull) bounds(floating bool) (start, end time.Time) {
	if !h.any {
		return time.Time{}, time.Time{}
	}
	if !h.loInf {
		start = h.lo
		if floating {
			start = start.Add(-floatingReach)
		}
	}
	if !h.hiInf {
		end = h.hi
		if floating {
			end = end.Add(floatingReach)
		}
	}
	return start.UTC(), end.UTC()
}
