package calendar

import (
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// maxRepeat bounds the triggers one VALARM's REPEAT adds.
const maxRepeat = 1000

// alarmTimes are the trigger times of a VALARM for an instance (RFC 5545
// §3.8.6.3): an absolute DATE-TIME, or a duration from the instance's
// start (RELATED=START, the default) or end, plus REPEAT more spaced by
// DURATION. A VTODO without DTSTART relates its alarms to DUE, as RFC
// 4791 §7.8.5's example expects.
func (o *Object) alarmTimes(a *ical.Component, in *instance) []time.Time {
	p := a.Props.Get(ical.PropTrigger)
	if p == nil {
		return nil
	}
	var base time.Time
	if p.ValueType() == ical.ValueDateTime {
		v, err := propTime(p, o.resolve)
		if err != nil {
			return nil
		}
		base = o.instant(v)
	} else {
		d, err := parseDuration(p.Value)
		if err != nil {
			return nil
		}
		anchor := in.start
		if strings.EqualFold(p.Params.Get(ical.ParamRelated), "END") || !in.t.hasStart {
			anchor = in.end
		}
		if anchor.IsZero() {
			return nil
		}
		base = anchor.Add(time.Duration(d.days)*24*time.Hour + d.exact)
	}
	times := []time.Time{base}
	n, _ := propInt(a, ical.PropRepeat)
	if dp := a.Props.Get(ical.PropDuration); dp != nil && n > 0 {
		if d, err := parseDuration(dp.Value); err == nil {
			step := time.Duration(d.days)*24*time.Hour + d.exact
			for k := 1; k <= min(n, maxRepeat); k++ {
				times = append(times, base.Add(time.Duration(k)*step))
			}
		}
	}
	return times
}

func propInt(c *ical.Component, name string) (int, error) {
	p := c.Props.Get(name)
	if p == nil {
		return 0, nil
	}
	return p.Int()
}

// alarmOverlaps: some trigger time t has (start <= t AND end > t) (RFC
// 4791 §9.9).
func (o *Object) alarmOverlaps(a *ical.Component, in *instance, from, to time.Time) bool {
	for _, t := range o.alarmTimes(a, in) {
		if pointSpan(t).overlaps(from, to) {
			return true
		}
	}
	return false
}

// alarmWindow widens a time-range by the farthest any alarm of the
// object triggers from its instance, so that expanding the instances of
// the wider range finds every alarm in the narrower; an absolute trigger
// or a range unbounded already makes it unbounded.
func (o *Object) alarmWindow(from, to time.Time) (time.Time, time.Time) {
	if from.IsZero() && to.IsZero() {
		return from, to
	}
	var reach time.Duration
	for _, t := range o.timings() {
		for _, a := range t.c.Children {
			if a.Name != ical.CompAlarm {
				continue
			}
			p := a.Props.Get(ical.PropTrigger)
			if p == nil {
				continue
			}
			if p.ValueType() == ical.ValueDateTime {
				return time.Time{}, time.Time{}
			}
			d, err := parseDuration(p.Value)
			if err != nil {
				continue
			}
			r := (time.Duration(d.days)*24*time.Hour + d.exact).Abs()
			n, _ := propInt(a, ical.PropRepeat)
			if dp := a.Props.Get(ical.PropDuration); dp != nil && n > 0 {
				if rd, err := parseDuration(dp.Value); err == nil {
					r += time.Duration(min(n, maxRepeat)) * (time.Duration(rd.days)*24*time.Hour + rd.exact).Abs()
				}
			}
			reach = max(reach, r)
		}
	}
	if !from.IsZero() {
		from = from.Add(-reach)
	}
	if !to.IsZero() {
		to = to.Add(reach)
	}
	return from, to
}
