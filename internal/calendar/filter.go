package calendar

import (
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/mailyard/mailyard/internal/textmatch"
)

// CompFilter is a CALDAV:comp-filter (RFC 4791 §9.7.1). A zero Start and
// End mean no time-range; one zero side of a time-range is unbounded.
type CompFilter struct {
	Name         string
	IsNotDefined bool
	Start, End   time.Time
	Props        []PropFilter
	Comps        []CompFilter
}

// PropFilter is a CALDAV:prop-filter (RFC 4791 §9.7.2).
type PropFilter struct {
	Name         string
	IsNotDefined bool
	Start, End   time.Time
	TextMatch    *textmatch.Matcher
	Params       []ParamFilter
}

// ParamFilter is a CALDAV:param-filter (RFC 4791 §9.7.3).
type ParamFilter struct {
	Name         string
	IsNotDefined bool
	TextMatch    *textmatch.Matcher
}

func hasRange(start, end time.Time) bool { return !start.IsZero() || !end.IsZero() }

// Match reports whether the object satisfies a calendar-query filter,
// whose top comp-filter names VCALENDAR (RFC 4791 §9.7).
//
// A comp-filter on the object's component type matches when one
// instance of its recurrence set satisfies all of it at once: the
// instance overlaps the time-range (RFC 4791 §9.9), and the component
// that supplies the instance's properties (the master, or the override)
// satisfies the prop-filters and nested comp-filters, a VALARM
// time-range being evaluated on that instance's trigger times. An
// instance-independent filter is evaluated once per component.
func (o *Object) Match(f CompFilter, maxInstances int) (bool, error) {
	if !strings.EqualFold(f.Name, ical.CompCalendar) || f.IsNotDefined {
		return false, nil
	}
	for _, pf := range f.Props {
		if !o.matchProp(o.cal.Props, pf) {
			return false, nil
		}
	}
	b := newBudget(maxInstances)
	for _, cf := range f.Comps {
		if ok, err := o.matchTop(cf, b); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// matchTop evaluates a comp-filter on the children of VCALENDAR.
func (o *Object) matchTop(cf CompFilter, b *budget) (bool, error) {
	name := strings.ToUpper(cf.Name)
	if cf.IsNotDefined {
		for _, c := range o.cal.Children {
			if c.Name == name {
				return false, nil
			}
		}
		return true, nil
	}
	if name == ical.CompTimezone {
		for _, c := range o.cal.Children {
			if c.Name == name && o.matchIn(c, nil, cf) {
				return true, nil
			}
		}
		return false, nil
	}
	if name != o.comp {
		return false, nil
	}
	nested := nestedRange(cf.Comps)
	if !hasRange(cf.Start, cf.End) && !nested {
		for _, t := range o.timings() {
			if o.matchIn(t.c, nil, cf) {
				return true, nil
			}
		}
		return false, nil
	}
	from, to := cf.Start, cf.End
	if nested {
		from, to = o.alarmWindow(from, to)
	}
	matched := false
	err := o.each(from, to, b, false, func(in *instance) bool {
		if hasRange(cf.Start, cf.End) && !o.instanceOverlaps(in, cf.Start, cf.End) {
			return true
		}
		matched = o.matchIn(in.t.c, in, cf)
		return !matched
	})
	if matched {
		return true, nil
	}
	return false, err
}

func (o *Object) timings() []*timing {
	ts := append([]*timing(nil), o.overrides...)
	if o.master != nil {
		ts = append(ts, o.master)
	}
	return ts
}

// nestedRange reports whether a time-range appears in nested filters.
func nestedRange(cfs []CompFilter) bool {
	for _, cf := range cfs {
		if hasRange(cf.Start, cf.End) || nestedRange(cf.Comps) {
			return true
		}
	}
	return false
}

// matchIn evaluates a comp-filter's prop-filters and nested comp-filters
// on component c (of instance in, nil when no time-range needs it).
func (o *Object) matchIn(c *ical.Component, in *instance, cf CompFilter) bool {
	for _, pf := range cf.Props {
		if !o.matchProp(c.Props, pf) {
			return false
		}
	}
	for _, sub := range cf.Comps {
		if !o.matchSub(c, in, sub) {
			return false
		}
	}
	return true
}

// matchSub evaluates a comp-filter on the children of c (VALARM, or any
// other nested component).
func (o *Object) matchSub(c *ical.Component, in *instance, cf CompFilter) bool {
	name := strings.ToUpper(cf.Name)
	found := false
	for _, ch := range c.Children {
		if ch.Name != name {
			continue
		}
		found = true
		if cf.IsNotDefined {
			return false
		}
		if hasRange(cf.Start, cf.End) && !(name == ical.CompAlarm && in != nil && o.alarmOverlaps(ch, in, cf.Start, cf.End)) {
			continue
		}
		if o.matchIn(ch, in, cf) {
			return true
		}
	}
	return cf.IsNotDefined && !found
}

// matchProp evaluates a prop-filter on a component's properties: some
// property of the name satisfies its time-range, text-match and
// param-filters (RFC 4791 §9.7.2).
func (o *Object) matchProp(props ical.Props, pf PropFilter) bool {
	vals := props.Values(pf.Name)
	if pf.IsNotDefined {
		return len(vals) == 0
	}
	for i := range vals {
		p := &vals[i]
		if hasRange(pf.Start, pf.End) && !o.propOverlaps(p, pf.Start, pf.End) {
			continue
		}
		if pf.TextMatch != nil && !pf.TextMatch.Match(textOf(p)) {
			continue
		}
		if matchParams(p, pf.Params) {
			return true
		}
	}
	return false
}

func matchParams(p *ical.Prop, pfs []ParamFilter) bool {
	for _, f := range pfs {
		vals := p.Params.Values(f.Name)
		switch {
		case f.IsNotDefined:
			if len(vals) != 0 {
				return false
			}
		case f.TextMatch == nil:
			if len(vals) == 0 {
				return false
			}
		default:
			ok := false
			for _, v := range vals {
				ok = ok || f.TextMatch.Match(v)
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

// textOf is the value a text-match sees: TEXT values unescaped by
// go-ical, others as written.
func textOf(p *ical.Prop) string {
	if p.ValueType() == ical.ValueText {
		if s, err := p.Text(); err == nil {
			return s
		}
	}
	return p.Value
}

// propOverlaps: a DATE-TIME value v overlaps when (start <= v AND end >
// v); a DATE value is its whole day (RFC 4791 §9.9).
func (o *Object) propOverlaps(p *ical.Prop, from, to time.Time) bool {
	vs, err := propTimes(p, o.resolve)
	if err != nil {
		return false
	}
	for _, v := range vs {
		at := o.instant(v)
		s := pointSpan(at)
		if v.date {
			s = openSpan(at, toInstant(o.zoneOf(v), v.wall.AddDate(0, 0, 1)))
		}
		if s.overlaps(from, to) {
			return true
		}
	}
	return false
}
