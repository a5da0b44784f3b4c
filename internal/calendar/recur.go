package calendar

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// errRecurrence: rrule-go failed on a rule Parse accepted.
var errRecurrence = errors.New("calendar: recurrence expansion failed")

// instance is one member of the recurrence set (or the one occurrence of
// a non-recurring component).
type instance struct {
	t         *timing   // the component whose properties the instance has
	recurring bool      // a member of a recurrence set: expanded with a RECURRENCE-ID
	rid       time.Time // original start (RECURRENCE-ID), recurring only
	ridValue  dtValue
	start     time.Time // zero: the component has no DTSTART
	end       time.Time // DTEND, DUE, or start plus duration; start if none
	period    bool      // the end came from an RDATE PERIOD
}

// margin widens the original-start window on each side: it covers UTC
// offsets (wall time is at most a day from the instant) and nominal-day
// durations across a daylight-saving change.
const margin = 3 * 24 * time.Hour

// each calls fn with every instance that might overlap [from, to) (zero:
// unbounded) and stops when fn returns false. Every instance generated,
// in the range or not, takes one from b; when b runs out, each returns
// ErrTooManyInstances. With noRule, the master's RRULE is not expanded.
func (o *Object) each(from, to time.Time, b *budget, noRule bool, fn func(*instance) bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errRecurrence, r)
		}
	}()
	for _, ov := range o.overrides {
		if err := b.take(); err != nil {
			return err
		}
		if !fn(o.overrideInstance(ov)) {
			return nil
		}
	}
	m := o.master
	if m == nil {
		return nil
	}
	if m.rule == nil && len(m.rdates) == 0 {
		if err := b.take(); err != nil {
			return err
		}
		if in := o.single(m); !o.overridden(in.start) {
			fn(in)
		}
		return nil
	}
	g := o.newGenerator(b, fn)
	if !g.emitStartAndRDates() {
		return g.err
	}
	if m.rule != nil && !noRule {
		g.emitRule(from, to)
	}
	return g.err
}

// overridden reports whether a component overrides the instance that
// starts at at.
func (o *Object) overridden(at time.Time) bool {
	for _, ov := range o.overrides {
		if o.instant(ov.rid).Equal(at) {
			return true
		}
	}
	return false
}

// single is the instance of a non-recurring component.
func (o *Object) single(t *timing) *instance {
	in := &instance{t: t}
	if t.hasStart {
		in.start = o.instant(t.start)
		in.end = o.endFor(t, t.start.wall, in.start)
	} else if t.hasEnd {
		in.end = o.instant(t.end)
	}
	return in
}

func (o *Object) overrideInstance(t *timing) *instance {
	in := &instance{t: t, recurring: true, rid: o.instant(t.rid), ridValue: t.rid}
	if t.hasStart {
		in.start = o.instant(t.start)
		in.end = o.endFor(t, t.start.wall, in.start)
	} else {
		// No DTSTART of its own: the instance keeps the start it replaces.
		in.start = in.rid
		in.end = o.endFor(t, t.rid.wall, in.start)
	}
	return in
}

// endFor is the end of an instance of t starting at wall time wall
// (instant at), in the zone of t's DTSTART: DTEND or DUE keep their exact
// distance from DTSTART (days, for DATE values); DURATION adds nominal
// days and exact time; otherwise a DATE lasts a day and a DATE-TIME not
// at all (RFC 5545 §3.6.1, RFC 4791 §9.9).
func (o *Object) endFor(t *timing, wall, at time.Time) time.Time {
	z := o.zoneOf(t.start)
	switch {
	case !t.hasStart:
		return at
	case t.hasEnd && t.start.date:
		days := int(t.end.wall.Sub(t.start.wall).Hours() / 24)
		return toInstant(z, wall.AddDate(0, 0, max(days, 0)))
	case t.hasEnd:
		d := o.instant(t.end).Sub(o.instant(t.start))
		return at.Add(max(d, 0))
	case t.hasDur:
		return t.dur.after(z, wall, at)
	case t.start.date && t.c.Name != ical.CompToDo:
		return toInstant(z, wall.AddDate(0, 0, 1))
	}
	return at
}

// generator expands a master component's recurrence set.
type generator struct {
	o          *Object
	m          *timing
	z          zone
	b          *budget
	fn         func(*instance) bool
	err        error
	excluded   map[int64]bool // EXDATE instants, and those overridden
	rdateAt    map[int64]bool
	futures    []*timing // RANGE=THISANDFUTURE overrides, by RECURRENCE-ID
	startAt    time.Time
	futureRIDs []time.Time
}

func (o *Object) newGenerator(b *budget, fn func(*instance) bool) *generator {
	m := o.master
	g := &generator{o: o, m: m, z: o.zoneOf(m.start), b: b, fn: fn,
		excluded: map[int64]bool{}, rdateAt: map[int64]bool{}, startAt: o.instant(m.start)}
	for _, ex := range m.exdates {
		g.excluded[o.instant(ex).Unix()] = true
	}
	for _, ov := range o.overrides {
		g.excluded[o.instant(ov.rid).Unix()] = true
		if ov.future {
			g.futures = append(g.futures, ov)
		}
	}
	sort.Slice(g.futures, func(i, j int) bool { return o.instant(g.futures[i].rid).Before(o.instant(g.futures[j].rid)) })
	for _, f := range g.futures {
		g.futureRIDs = append(g.futureRIDs, o.instant(f.rid))
	}
	for _, r := range m.rdates {
		g.rdateAt[o.instant(r.v).Unix()] = true
	}
	return g
}

// emitStartAndRDates emits DTSTART (always an instance, RFC 5545
// §3.8.5.3) and the RDATEs; false means stop.
func (g *generator) emitStartAndRDates() bool {
	if !g.rdateAt[g.startAt.Unix()] && !g.emit(g.m.start.wall, g.startAt, g.m.start, nil) {
		return false
	}
	seen := map[int64]bool{}
	for _, r := range g.m.rdates {
		at := g.o.instant(r.v)
		if seen[at.Unix()] {
			continue
		}
		seen[at.Unix()] = true
		if !g.emit(r.v.wall, at, r.v, r.period) {
			return false
		}
	}
	return true
}

// emit hands one generated start to fn unless it is excluded or
// overridden; false means stop.
func (g *generator) emit(wall, at time.Time, v dtValue, per *period) bool {
	if g.err = g.b.take(); g.err != nil {
		return false
	}
	if g.excluded[at.Unix()] {
		return true
	}
	in := &instance{t: g.m, recurring: true, rid: at, ridValue: v, start: at}
	switch f := g.futureFor(at); {
	case per != nil:
		_, in.end = g.o.periodSpan(*per)
		in.period = true
	case f != nil:
		// RFC 5545 §3.8.4.4: later instances take the override's
		// properties, moved as the override moved its own instance.
		in.t = f
		ft := g.o.overrideInstance(f)
		in.start = at.Add(ft.start.Sub(ft.rid))
		in.end = in.start.Add(ft.end.Sub(ft.start))
	default:
		in.end = g.o.endFor(g.m, wall, at)
	}
	return g.fn(in)
}

// futureFor is the THISANDFUTURE override in force at original start at.
func (g *generator) futureFor(at time.Time) *timing {
	i := sort.Search(len(g.futureRIDs), func(i int) bool { return !g.futureRIDs[i].Before(at) }) - 1
	if i < 0 {
		return nil
	}
	return g.futures[i]
}

// reach bounds how far an instance may end after, and start before, its
// original start.
func (g *generator) reach() (after, before time.Duration) {
	after = g.o.endFor(g.m, g.m.start.wall, g.startAt).Sub(g.startAt)
	for _, f := range g.futures {
		ft := g.o.overrideInstance(f)
		shift := ft.start.Sub(ft.rid)
		after = max(after, shift+ft.end.Sub(ft.start))
		before = max(before, -shift)
	}
	return after + margin, before + margin
}

// emitRule expands the RRULE in wall time from DTSTART, skipping ahead
// where the rule is periodic, and stops past the range.
func (g *generator) emitRule(from, to time.Time) {
	opt := *g.m.rule
	opt.Dtstart = g.m.start.wall
	opt.Until = g.untilWall()
	count := opt.Count
	opt.Count = 0
	after, before := g.reach()
	if !from.IsZero() && count == 0 {
		opt.Dtstart = skipAhead(opt, from.Add(-after))
	}
	var stop time.Time
	if !to.IsZero() {
		stop = to.Add(before)
	}
	r, err := rrule.NewRRule(opt)
	if err != nil {
		g.err = err
		return
	}
	n := 1 // DTSTART is the first instance and counts (RFC 5545 §3.3.10)
	next := r.Iterator()
	for w, ok := next(); ok; w, ok = next() {
		if !stop.IsZero() && w.After(stop) {
			return
		}
		if w.Equal(g.m.start.wall) {
			continue
		}
		if n++; count > 0 && n > count {
			return
		}
		at := toInstant(g.z, w)
		if g.rdateAt[at.Unix()] {
			if g.err = g.b.take(); g.err != nil {
				return
			}
			continue
		}
		if !g.emit(w, at, dtValue{wall: w, date: g.m.start.date, kind: g.m.start.kind, zone: g.m.start.zone}, nil) {
			return
		}
	}
}

// untilWall is UNTIL as a wall time comparable with the rule's wall
// times: a UTC UNTIL of a zoned DTSTART is read in the DTSTART's zone; a
// DATE UNTIL of a DATE-TIME DTSTART lasts the whole day.
func (g *generator) untilWall() time.Time {
	u := g.m.rule.Until
	if u.IsZero() {
		// rrule-go's own end, 290 years on, also bounds the work of a
		// rule that never matches.
		return u
	}
	if !g.untilIsDateTime() && !g.m.start.date {
		return u.Add(24*time.Hour - time.Second)
	}
	if g.m.untilUTC && g.m.start.kind == kindZoned {
		return toWall(g.z, u)
	}
	return u
}

func (g *generator) untilIsDateTime() bool { return g.m.untilDT }

// skipAhead moves the DTSTART of a periodic rule (FREQ=DAILY or WEEKLY
// with no BY-part but BYDAY without ordinals, BYHOUR, BYMINUTE,
// BYSECOND, and no COUNT) forward by whole periods to just before from:
// in wall time such a rule's set is unchanged by that shift.
func skipAhead(opt rrule.ROption, from time.Time) time.Time {
	start := opt.Dtstart
	if len(opt.Bymonth)+len(opt.Bymonthday)+len(opt.Byyearday)+len(opt.Byweekno)+len(opt.Bysetpos)+len(opt.Byeaster) > 0 {
		return start
	}
	for _, wd := range opt.Byweekday {
		if wd.N() != 0 {
			return start
		}
	}
	interval := max(opt.Interval, 1)
	var days int
	switch {
	case opt.Freq == rrule.WEEKLY, opt.Freq == rrule.DAILY && len(opt.Byweekday) > 0:
		days = 7 * interval
	case opt.Freq == rrule.DAILY:
		days = interval
	default:
		return start
	}
	if days > 36500 {
		return start
	}
	period := time.Duration(days) * 24 * time.Hour
	gap := from.Sub(start)
	if gap < period {
		return start
	}
	k := int(gap / period)
	return start.AddDate(0, 0, k*days)
}
