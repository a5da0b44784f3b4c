package calendar

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// zone maps instants to UTC offsets: an IANA location or a VTIMEZONE.
type zone interface {
	// offset returns the zone's offset from UTC in seconds at instant t.
	offset(t time.Time) int
}

// locZone is a zone from the Go time package (IANA, UTC or a caller's).
type locZone struct{ loc *time.Location }

func (z locZone) offset(t time.Time) int {
	_, off := t.In(z.loc).Zone()
	return off
}

var utcZone zone = locZone{time.UTC}

// endOfTime is the UNTIL of rules that have none: rrule-go's own default
// ends 290 years after DTSTART.
var endOfTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// toInstant places a wall-clock reading (its fields read as if in UTC) on
// the time line of z. RFC 5545 §3.3.5: a time in a gap takes the offset
// before the gap; a time that occurs twice is the first occurrence.
func toInstant(z zone, wall time.Time) time.Time {
	if lz, ok := z.(locZone); ok && lz.loc == time.UTC {
		return wall
	}
	before := z.offset(wall.Add(-24 * time.Hour))
	after := z.offset(wall.Add(24 * time.Hour))
	a := wall.Add(-time.Duration(before) * time.Second)
	if before == after {
		return a
	}
	b := wall.Add(-time.Duration(after) * time.Second)
	aOK := z.offset(a) == before
	bOK := z.offset(b) == after
	switch {
	case aOK && bOK:
		if b.Before(a) {
			return b
		}
		return a
	case bOK:
		return b
	default: // aOK alone, or a gap: the offset before the change
		return a
	}
}

// toWall is the wall-clock reading of instant t in z, as a UTC time.
func toWall(z zone, t time.Time) time.Time {
	return t.Add(time.Duration(z.offset(t)) * time.Second).UTC()
}

// vtimezone is a time zone defined by a VTIMEZONE component (RFC 5545
// §3.6.5). Its transitions are computed on demand for a window of years
// around the instants asked for, widened as needed, and at most
// maxTransitions of them (beyond those the last offset holds). A yearly
// rule without COUNT starts its expansion whole 400-year Gregorian
// cycles after its DTSTART, so Outlook's DTSTART:16010101 costs nothing.
type vtimezone struct {
	id  string
	obs []observance

	mu     sync.Mutex
	lo, hi time.Time // transitions are known for onsets in [lo, hi)
	trans  []transition
	capped bool
}

const maxTransitions = 20000

type observance struct {
	start    time.Time // DTSTART, wall time
	from, to int       // TZOFFSETFROM, TZOFFSETTO in seconds
	rule     *rrule.ROption
	rdates   []time.Time // wall times
}

type transition struct {
	at  time.Time
	off int
}

func (v *vtimezone) offset(t time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.extend(t)
	i := sort.Search(len(v.trans), func(i int) bool { return v.trans[i].at.After(t) }) - 1
	if i >= 0 {
		return v.trans[i].off
	}
	return v.firstFrom()
}

// firstFrom is the offset before the zone's first onset.
func (v *vtimezone) firstFrom() int {
	best := 0
	for i, o := range v.obs {
		if o.start.Add(-time.Duration(o.from) * time.Second).Before(v.obs[best].start.Add(-time.Duration(v.obs[best].from) * time.Second)) {
			best = i
		}
	}
	return v.obs[best].from
}

// extend makes the transitions known from a year before t to two years
// after; onsets are computed from the year before that, so the one in
// force at any instant from lo on is among them.
func (v *vtimezone) extend(t time.Time) {
	if v.capped || len(v.trans) > 0 && !t.Before(v.lo) && t.Before(v.hi) {
		return
	}
	lo, hi := t.AddDate(-1, 0, 0), t.AddDate(2, 0, 0)
	if len(v.trans) > 0 {
		lo, hi = minTime(lo, v.lo), maxTime(hi, v.hi)
	}
	var trans []transition
	defer func() {
		if r := recover(); r != nil {
			// rrule-go failed: keep the onsets found so far, and no more.
			v.trans, v.lo, v.hi, v.capped = sortTransitions(trans), lo, hi, true
		}
	}()
	for _, o := range v.obs {
		trans = o.onsets(trans, lo, hi)
	}
	trans = sortTransitions(trans)
	if len(trans) > maxTransitions {
		trans = trans[:maxTransitions]
		v.capped = true
	}
	v.trans, v.lo, v.hi = trans, lo, hi
}

// onsets appends the observance's onsets before hi, those of a yearly
// rule from the last 400-year cycle before lo.
func (o observance) onsets(trans []transition, lo, hi time.Time) []transition {
	add := func(wall time.Time) {
		trans = append(trans, transition{at: wall.Add(-time.Duration(o.from) * time.Second), off: o.to})
	}
	add(o.start)
	for _, w := range o.rdates {
		if w.Before(hi) {
			add(w)
		}
	}
	if o.rule == nil {
		return trans
	}
	opt := *o.rule
	if k := (lo.Year() - 1 - opt.Dtstart.Year()) / 400; opt.Freq == rrule.YEARLY && opt.Count == 0 && k > 0 {
		opt.Dtstart = opt.Dtstart.AddDate(400*k, 0, 0)
	}
	if y := lo.Year() - 1; fixedYearly(opt) && opt.Dtstart.Year() < y {
		// Every year alike: start the year before lo.
		d := opt.Dtstart
		opt.Dtstart = time.Date(y, d.Month(), min(d.Day(), 28), d.Hour(), d.Minute(), d.Second(), 0, time.UTC)
	}
	r, err := rrule.NewRRule(opt)
	if err != nil {
		return trans
	}
	next := r.Iterator()
	for w, ok := next(); ok && w.Before(hi) && len(trans) <= maxTransitions; w, ok = next() {
		if !w.Equal(o.start) {
			add(w)
		}
	}
	return trans
}

// fixedYearly: a rule whose every year is chosen alike from its BY-parts
// (as VTIMEZONE rules are: FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU), so that
// its DTSTART's year does not matter, only its time of day.
func fixedYearly(opt rrule.ROption) bool {
	return opt.Freq == rrule.YEARLY && opt.Interval <= 1 && opt.Count == 0 &&
		len(opt.Bymonth) > 0 && len(opt.Byweekday)+len(opt.Bymonthday) > 0 &&
		len(opt.Byyearday)+len(opt.Byweekno)+len(opt.Byeaster) == 0
}

func sortTransitions(trans []transition) []transition {
	sort.Slice(trans, func(i, j int) bool { return trans[i].at.Before(trans[j].at) })
	return trans
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// parseVTimezone reads a VTIMEZONE's observances.
func parseVTimezone(c *ical.Component) (*vtimezone, error) {
	id, err := c.Props.Text(ical.PropTimezoneID)
	if err != nil || id == "" {
		return nil, errors.New("VTIMEZONE without TZID")
	}
	v := &vtimezone{id: id}
	for _, ch := range c.Children {
		if ch.Name != ical.CompTimezoneStandard && ch.Name != ical.CompTimezoneDaylight {
			continue
		}
		o, err := parseObservance(ch)
		if err != nil {
			return nil, fmt.Errorf("VTIMEZONE %q: %s: %w", id, ch.Name, err)
		}
		v.obs = append(v.obs, o)
	}
	if len(v.obs) == 0 {
		return nil, fmt.Errorf("VTIMEZONE %q has no STANDARD or DAYLIGHT", id)
	}
	return v, nil
}

func parseObservance(c *ical.Component) (observance, error) {
	var o observance
	p := c.Props.Get(ical.PropDateTimeStart)
	if p == nil {
		return o, errors.New("no DTSTART")
	}
	start, err := wallValue(p.Value, p.ValueType())
	if err != nil {
		return o, fmt.Errorf("DTSTART: %w", err)
	}
	o.start = start.wall
	if o.from, err = utcOffset(c.Props.Get(ical.PropTimezoneOffsetFrom)); err != nil {
		return o, fmt.Errorf("TZOFFSETFROM: %w", err)
	}
	if o.to, err = utcOffset(c.Props.Get(ical.PropTimezoneOffsetTo)); err != nil {
		return o, fmt.Errorf("TZOFFSETTO: %w", err)
	}
	opt, err := c.Props.RecurrenceRule()
	if err != nil {
		return o, err
	}
	if opt != nil {
		opt.Dtstart = o.start
		opt.Count = min(max(opt.Count, 0), maxTransitions)
		if opt.Until.IsZero() {
			// rrule-go would stop 290 years after DTSTART (Outlook's is 1601).
			opt.Until = endOfTime
		} else {
			// UNTIL is in UTC (RFC 5545 §3.6.5); onsets are local before the change.
			opt.Until = opt.Until.Add(time.Duration(o.from) * time.Second)
		}
		if _, err = rrule.NewRRule(*opt); err != nil {
			return o, err
		}
		if err := checkRuleCost(*opt); err != nil {
			return o, fmt.Errorf("RRULE: %w", err)
		}
		o.rule = opt
	}
	for _, rp := range c.Props.Values(ical.PropRecurrenceDates) {
		for _, s := range strings.Split(rp.Value, ",") {
			v, err := wallValue(s, rp.ValueType())
			if err != nil {
				return o, fmt.Errorf("RDATE: %w", err)
			}
			o.rdates = append(o.rdates, v.wall)
		}
	}
	return o, nil
}

// utcOffset reads a UTC-OFFSET value, "+HHMM" or "-HHMMSS" (RFC 5545
// §3.3.14); go-ical has no reader for this value type.
func utcOffset(p *ical.Prop) (int, error) {
	if p == nil {
		return 0, errors.New("missing")
	}
	s := p.Value
	if (len(s) != 5 && len(s) != 7) || (s[0] != '+' && s[0] != '-') {
		return 0, fmt.Errorf("invalid UTC offset %q", s)
	}
	n, err := strconv.Atoi(s[1:])
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid UTC offset %q", s)
	}
	if len(s) == 5 {
		n *= 100
	}
	h, m, sec := n/10000, n/100%100, n%100
	if h > 23 || m > 59 || sec > 59 {
		return 0, fmt.Errorf("invalid UTC offset %q", s)
	}
	off := h*3600 + m*60 + sec
	if s[0] == '-' {
		off = -off
	}
	return off, nil
}
