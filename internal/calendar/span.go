package calendar

import (
	"time"

	"github.com/emersion/go-ical"
)

// span is the condition RFC 4791 §9.9 sets for an instance to overlap a
// time-range [start, end): end must be after lo (or at it, loClosed) and
// start before hi (or at it, hiClosed). An infinite side always holds;
// never is a component a time-range never matches.
type span struct {
	lo, hi             time.Time
	loClosed, hiClosed bool
	loInf, hiInf       bool
	never              bool
}

// overlaps evaluates the span against a time-range; a zero from or to is
// unbounded on that side.
func (s span) overlaps(from, to time.Time) bool {
	if s.never {
		return false
	}
	if !from.IsZero() && !s.hiInf && (from.After(s.hi) || from.Equal(s.hi) && !s.hiClosed) {
		return false
	}
	if !to.IsZero() && !s.loInf && (to.Before(s.lo) || to.Equal(s.lo) && !s.loClosed) {
		return false
	}
	return true
}

func openSpan(lo, hi time.Time) span   { return span{lo: lo, hi: hi} }
func pointSpan(at time.Time) span      { return span{lo: at, hi: at, hiClosed: true} }
func closedSpan(lo, hi time.Time) span { return span{lo: lo, hi: hi, loClosed: true, hiClosed: true} }

// spanOf is an instance's extent by the tables of RFC 4791 §9.9.
func (o *Object) spanOf(in *instance) span {
	switch in.t.c.Name {
	case ical.CompEvent:
		return eventSpan(in)
	case ical.CompToDo:
		return o.todoSpan(in)
	case ical.CompJournal:
		switch {
		case !in.t.hasStart:
			return span{never: true}
		case in.t.start.date:
			return openSpan(in.start, in.end)
		}
		return pointSpan(in.start)
	}
	return freeBusySpan(in)
}

func eventSpan(in *instance) span {
	t := in.t
	switch {
	case in.period || t.hasEnd:
		return openSpan(in.start, in.end) // (start < DTEND AND end > DTSTART)
	case t.hasDur && in.end.After(in.start):
		return openSpan(in.start, in.end)
	case t.hasDur || !t.start.date:
		return pointSpan(in.start) // (start <= DTSTART AND end > DTSTART)
	}
	return openSpan(in.start, in.end) // DTSTART+P1D
}

// todoSpan is the VTODO table of RFC 4791 §9.9.
func (o *Object) todoSpan(in *instance) span {
	t := in.t
	switch {
	case t.hasStart && t.hasDur:
		// (start <= DTSTART+DURATION) AND ((end > DTSTART) OR (end >= DTSTART+DURATION))
		s := span{lo: in.start, hi: in.end, hiClosed: true}
		s.loClosed = !in.end.After(in.start)
		return s
	case t.hasStart && t.hasEnd:
		// ((start < DUE) OR (start <= DTSTART)) AND ((end > DTSTART) OR (end >= DUE))
		if in.end.After(in.start) {
			return openSpan(in.start, in.end)
		}
		return span{lo: in.end, hi: in.start, loClosed: true, hiClosed: true}
	case t.hasStart:
		return pointSpan(in.start)
	case t.hasEnd:
		// (start < DUE) AND (end >= DUE)
		return span{lo: in.end, hi: in.end, loClosed: true}
	case t.hasCompleted && t.hasCreated:
		// ((start <= CREATED) OR (start <= COMPLETED)) AND ((end >= CREATED) OR (end >= COMPLETED))
		a, b := o.instant(t.created), o.instant(t.completed)
		if b.Before(a) {
			a, b = b, a
		}
		return closedSpan(a, b)
	case t.hasCompleted:
		c := o.instant(t.completed)
		return closedSpan(c, c)
	case t.hasCreated:
		return span{lo: o.instant(t.created), hiInf: true} // (end > CREATED)
	}
	return span{loInf: true, hiInf: true}
}

// freeBusySpan: (start <= DTEND) AND (end > DTSTART) with both; else the
// FREEBUSY periods, handled by the caller; else never.
func freeBusySpan(in *instance) span {
	if in.t.hasStart && in.t.hasEnd {
		return span{lo: in.start, hi: in.end, hiClosed: true}
	}
	return span{never: true}
}

// instanceOverlaps reports whether an instance overlaps [from, to) by
// RFC 4791 §9.9, including a VFREEBUSY's periods.
func (o *Object) instanceOverlaps(in *instance, from, to time.Time) bool {
	if o.spanOf(in).overlaps(from, to) {
		return true
	}
	if in.t.c.Name != ical.CompFreeBusy || in.t.hasStart && in.t.hasEnd {
		return false
	}
	for _, fb := range in.t.freebusy {
		// (start < freebusy-period-end) AND (end > freebusy-period-start)
		if openSpan(o.periodSpan(fb.p)).overlaps(from, to) {
			return true
		}
	}
	return false
}

// spans lists the extents an instance occupies, for Bounds: a
// VFREEBUSY's FREEBUSY periods count even beside DTSTART and DTEND, since
// free/busy reads them whatever the time-range rule says.
func (o *Object) spans(in *instance) []span {
	out := []span{o.spanOf(in)}
	if in.t.c.Name == ical.CompFreeBusy {
		for _, fb := range in.t.freebusy {
			out = append(out, openSpan(o.periodSpan(fb.p)))
		}
	}
	return out
}
