package calendar

import (
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// Expand returns the instances of the object that overlap [from, to)
// (RFC 4791 §9.9; a zero side is unbounded) as separate components, in
// the form RFC 4791 §9.6.5 requires: each instance of a recurrence set
// carries its RECURRENCE-ID, no component has RRULE, RDATE or EXDATE,
// DATE-TIME values are in UTC (DATE values stay DATEs), and the result
// has no VTIMEZONE. Components are ordered by start. The calendar has no
// components when no instance overlaps.
func (o *Object) Expand(from, to time.Time, maxInstances int) (*ical.Calendar, error) {
	type item struct {
		start time.Time
		c     *ical.Component
	}
	var items []item
	err := o.each(from, to, newBudget(maxInstances), false, func(in *instance) bool {
		if o.instanceOverlaps(in, from, to) {
			items = append(items, item{in.start, o.expanded(in)})
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].start.Before(items[j].start) })
	out := ical.NewCalendar()
	for name, ps := range o.cal.Props {
		out.Props[name] = cloneProps(ps)
	}
	for _, it := range items {
		out.Children = append(out.Children, it.c)
	}
	return out, nil
}

// expanded is one instance as a stand-alone component.
func (o *Object) expanded(in *instance) *ical.Component {
	t := in.t
	c := cloneComponent(t.c)
	for _, name := range []string{ical.PropRecurrenceRule, ical.PropRecurrenceDates, ical.PropExceptionDates, "EXRULE"} {
		c.Props.Del(name)
	}
	o.utcTimes(c)
	if in.recurring {
		c.Props.Set(o.timeProp(ical.PropRecurrenceID, in.rid, in.ridValue))
	}
	if t.hasStart || in.recurring {
		c.Props.Set(o.timeProp(ical.PropDateTimeStart, in.start, t.start))
	}
	switch {
	case in.period:
		// An RDATE PERIOD gives this instance its own end.
		c.Props.Del(ical.PropDuration)
		c.Props.Set(o.timeProp(ical.PropDateTimeEnd, in.end, t.start))
	case t.hasEnd && t.c.Name == ical.CompToDo:
		c.Props.Set(o.timeProp(ical.PropDue, in.end, t.end))
	case t.hasEnd && t.c.Name == ical.CompEvent:
		c.Props.Set(o.timeProp(ical.PropDateTimeEnd, in.end, t.end))
	}
	return c
}

// timeProp writes instant at as like's value type: a DATE (its date in
// like's zone) or a UTC DATE-TIME.
func (o *Object) timeProp(name string, at time.Time, like dtValue) *ical.Prop {
	p := ical.NewProp(name)
	if like.date {
		p.SetDate(toWall(o.zoneOf(like), at))
	} else {
		p.SetDateTime(at.UTC())
	}
	return p
}

// utcTimes rewrites every DATE-TIME property with a TZID, or floating,
// of the date-time properties RFC 5545 defines, into UTC.
func (o *Object) utcTimes(c *ical.Component) {
	for name, ps := range c.Props {
		for i := range ps {
			p := &ps[i]
			if p.Params.Get(ical.ParamTimezoneID) == "" && !floatingTimeProp(p) {
				continue
			}
			vs, err := propTimes(p, o.resolve)
			if err != nil {
				continue
			}
			vals := make([]string, len(vs))
			for j, v := range vs {
				vals[j] = o.timeProp(name, o.instant(v), v).Value
			}
			p.Params.Del(ical.ParamTimezoneID)
			p.Value = strings.Join(vals, ",")
		}
	}
}

// floatingTimeProp: a DTSTART, DTEND, DUE or RECURRENCE-ID with a
// floating DATE-TIME.
func floatingTimeProp(p *ical.Prop) bool {
	switch p.Name {
	case ical.PropDateTimeStart, ical.PropDateTimeEnd, ical.PropDue, ical.PropRecurrenceID:
		return len(p.Value) == len("20060102T150405")
	}
	return false
}

func cloneComponent(c *ical.Component) *ical.Component {
	out := &ical.Component{Name: c.Name, Props: make(ical.Props, len(c.Props))}
	for name, ps := range c.Props {
		out.Props[name] = cloneProps(ps)
	}
	for _, ch := range c.Children {
		out.Children = append(out.Children, cloneComponent(ch))
	}
	return out
}

func cloneProps(ps []ical.Prop) []ical.Prop {
	out := make([]ical.Prop, len(ps))
	for i, p := range ps {
		params := make(ical.Params, len(p.Params))
		for k, v := range p.Params {
			params[k] = append([]string(nil), v...)
		}
		out[i] = ical.Prop{Name: p.Name, Params: params, Value: p.Value}
	}
	return out
}
