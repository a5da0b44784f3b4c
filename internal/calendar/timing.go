package calendar

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// timing is what one VEVENT, VTODO, VJOURNAL or VFREEBUSY says about
// time, read once at Parse.
type timing struct {
	c *ical.Component

	start    dtValue // DTSTART
	hasStart bool
	end      dtValue // DTEND (VEVENT, VFREEBUSY) or DUE (VTODO)
	hasEnd   bool
	dur      duration // DURATION
	hasDur   bool

	completed, created       dtValue // VTODO
	hasCompleted, hasCreated bool

	rid    dtValue // RECURRENCE-ID
	hasRID bool
	future bool // RANGE=THISANDFUTURE

	rule              *rrule.ROption // RRULE, in wall time from DTSTART
	untilUTC, untilDT bool           // how UNTIL was written: with Z, as a DATE-TIME
	rdates            []rdate
	exdates           []dtValue

	freebusy []fbPeriod // VFREEBUSY

	floating bool // some value is floating or a DATE
}

type rdate struct {
	v      dtValue
	period *period
}

type fbPeriod struct {
	p   period
	typ string
}

// single is one of a component's properties, or nil; more than one is an
// error (RFC 5545 §3.6: these MUST NOT occur more than once).
func single(c *ical.Component, name string) (*ical.Prop, error) {
	ps := c.Props.Values(name)
	switch len(ps) {
	case 0:
		return nil, nil
	case 1:
		return &ps[0], nil
	}
	return nil, fmt.Errorf("%s: more than one %s", c.Name, name)
}

func readTiming(c *ical.Component, resolve resolver) (*timing, error) {
	t := &timing{c: c}
	steps := []func(resolver) error{t.readStartEnd, t.readTodoDates, t.readRecurrenceID, t.readRecurrence, t.readFreeBusy}
	for _, step := range steps {
		if err := step(resolve); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *timing) note(v dtValue) dtValue {
	if v.kind == kindFloating {
		t.floating = true
	}
	return v
}

func (t *timing) readStartEnd(resolve resolver) error {
	c := t.c
	if p, err := single(c, ical.PropDateTimeStart); err != nil {
		return err
	} else if p != nil {
		if t.start, err = propTime(p, resolve); err != nil {
			return err
		}
		t.hasStart = true
		t.note(t.start)
	}
	endName := ical.PropDateTimeEnd
	if c.Name == ical.CompToDo {
		endName = ical.PropDue
	}
	if c.Name == ical.CompEvent || c.Name == ical.CompToDo || c.Name == ical.CompFreeBusy {
		if p, err := single(c, endName); err != nil {
			return err
		} else if p != nil {
			if t.end, err = propTime(p, resolve); err != nil {
				return err
			}
			t.hasEnd = true
			t.note(t.end)
		}
	}
	if c.Name == ical.CompEvent || c.Name == ical.CompToDo {
		if p, err := single(c, ical.PropDuration); err != nil {
			return err
		} else if p != nil {
			if t.dur, err = parseDuration(p.Value); err != nil {
				return fmt.Errorf("DURATION: %w", err)
			}
			t.hasDur = true
		}
	}
	return t.checkStartEnd(endName)
}

// checkStartEnd applies RFC 5545 §3.6.1 and §3.6.2.
func (t *timing) checkStartEnd(endName string) error {
	switch {
	case t.hasEnd && t.hasDur:
		return fmt.Errorf("%s: both %s and DURATION", t.c.Name, endName)
	case t.c.Name == ical.CompEvent && !t.hasStart:
		// Required when the calendar has no METHOD, which a stored object never has.
		return errors.New("VEVENT without DTSTART")
	case t.hasDur && !t.hasStart:
		return fmt.Errorf("%s: DURATION without DTSTART", t.c.Name)
	case t.hasStart && t.hasEnd && t.start.date != t.end.date:
		return fmt.Errorf("%s: DTSTART and %s differ in value type", t.c.Name, endName)
	case t.hasDur && (t.dur.days < 0 || t.dur.exact < 0 && t.dur.days == 0):
		return fmt.Errorf("%s: negative DURATION", t.c.Name)
	}
	return nil
}

func (t *timing) readTodoDates(resolve resolver) error {
	if t.c.Name != ical.CompToDo {
		return nil
	}
	for _, f := range []struct {
		name string
		v    *dtValue
		has  *bool
	}{{ical.PropCompleted, &t.completed, &t.hasCompleted}, {ical.PropCreated, &t.created, &t.hasCreated}} {
		p, err := single(t.c, f.name)
		if err != nil {
			return err
		}
		if p == nil {
			continue
		}
		if *f.v, err = propTime(p, resolve); err != nil {
			return err
		}
		*f.has = true
		t.note(*f.v)
	}
	return nil
}

func (t *timing) readRecurrenceID(resolve resolver) error {
	p, err := single(t.c, ical.PropRecurrenceID)
	if err != nil || p == nil {
		return err
	}
	if t.rid, err = propTime(p, resolve); err != nil {
		return err
	}
	t.hasRID = true
	t.note(t.rid)
	switch r := strings.ToUpper(p.Params.Get(ical.ParamRange)); r {
	case "":
	case "THISANDFUTURE":
		t.future = true
	default:
		return fmt.Errorf("RECURRENCE-ID: RANGE=%s is not allowed", r)
	}
	return nil
}

// readRecurrence reads RRULE, RDATE and EXDATE of a master component;
// an overriding component is one instance, so its own are ignored.
func (t *timing) readRecurrence(resolve resolver) error {
	if t.hasRID || t.c.Name == ical.CompFreeBusy {
		return nil
	}
	if len(t.c.Props.Values(ical.PropRecurrenceRule)) > 1 {
		return fmt.Errorf("%s: more than one RRULE", t.c.Name)
	}
	if err := t.readRule(); err != nil {
		return err
	}
	for _, p := range t.c.Props.Values(ical.PropRecurrenceDates) {
		if err := t.readRDate(&p, resolve); err != nil {
			return err
		}
	}
	for _, p := range t.c.Props.Values(ical.PropExceptionDates) {
		vs, err := propTimes(&p, resolve)
		if err != nil {
			return err
		}
		for _, v := range vs {
			t.exdates = append(t.exdates, t.note(v))
		}
	}
	if (t.rule != nil || len(t.rdates) > 0) && !t.hasStart {
		return fmt.Errorf("%s: RRULE or RDATE without DTSTART", t.c.Name)
	}
	return nil
}

func (t *timing) readRule() error {
	opt, err := t.c.Props.RecurrenceRule()
	if err != nil || opt == nil {
		return err
	}
	if !t.hasStart {
		return fmt.Errorf("%s: RRULE without DTSTART", t.c.Name)
	}
	if opt.Freq < rrule.YEARLY || opt.Freq > rrule.SECONDLY || opt.Count < 0 || opt.Interval < 0 {
		return errors.New("RRULE: invalid FREQ, COUNT or INTERVAL")
	}
	opt.Dtstart = t.start.wall
	if _, err := rrule.NewRRule(*opt); err != nil {
		return fmt.Errorf("RRULE: %w", err)
	}
	if err := checkRuleCost(*opt); err != nil {
		return fmt.Errorf("RRULE: %w", err)
	}
	for _, part := range strings.Split(strings.ToUpper(t.c.Props.Get(ical.PropRecurrenceRule).Value), ";") {
		if v, ok := strings.CutPrefix(part, "UNTIL="); ok {
			t.untilUTC = strings.HasSuffix(v, "Z")
			t.untilDT = len(v) > len("20060102")
		}
	}
	t.rule = opt
	return nil
}

func (t *timing) readRDate(p *ical.Prop, resolve resolver) error {
	if p.ValueType() != ical.ValuePeriod {
		vs, err := propTimes(p, resolve)
		if err != nil {
			return err
		}
		for _, v := range vs {
			t.rdates = append(t.rdates, rdate{v: t.note(v)})
		}
		return nil
	}
	var z zone
	if tzid := p.Params.Get(ical.ParamTimezoneID); tzid != "" {
		var err error
		if z, err = resolve(tzid); err != nil {
			return err
		}
	}
	for _, s := range strings.Split(p.Value, ",") {
		per, err := periodValue(s, z)
		if err != nil {
			return fmt.Errorf("RDATE: %w", err)
		}
		t.note(per.start)
		t.rdates = append(t.rdates, rdate{v: per.start, period: &per})
	}
	return nil
}

// readFreeBusy reads the FREEBUSY periods of a VFREEBUSY (RFC 5545
// §3.8.2.6); FBTYPE defaults to BUSY.
func (t *timing) readFreeBusy(resolve resolver) error {
	if t.c.Name != ical.CompFreeBusy {
		return nil
	}
	for _, p := range t.c.Props.Values(ical.PropFreeBusy) {
		typ := strings.ToUpper(p.Params.Get(ical.ParamFreeBusyType))
		if typ == "" {
			typ = Busy
		}
		for _, s := range strings.Split(p.Value, ",") {
			per, err := periodValue(s, nil)
			if err != nil {
				return fmt.Errorf("FREEBUSY: %w", err)
			}
			t.note(per.start)
			t.freebusy = append(t.freebusy, fbPeriod{p: per, typ: typ})
		}
	}
	return nil
}

// periodSpan is a PERIOD's start and end instants.
func (o *Object) periodSpan(p period) (time.Time, time.Time) {
	s := o.instant(p.start)
	if p.hasEnd {
		return s, o.instant(p.end)
	}
	return s, p.dur.after(o.zoneOf(p.start), p.start.wall, s)
}

// checkRuleCost refuses the rules rrule-go cannot expand in bounded
// time. rrule-go looks for the next instance period by period until the
// year 9999, whatever UNTIL says: a rule with no instances, or none for
// centuries, stalls every query that touches it. So:
//
//  1. FREQ finer than DAILY is refused: a sub-daily rule whose BYHOUR,
//     BYMINUTE or BYSETPOS never lines up (FREQ=HOURLY;INTERVAL=2;BYHOUR=3)
//     takes hours; no mainstream client writes one.
//  2. A BYSETPOS beyond the largest set a period can hold is refused.
//  3. A rule whose BY-parts select no day at all (BYMONTH=2;BYMONTHDAY=30)
//     is refused, found with a yearly probe of the same BY-parts, which
//     costs at most one step per year.
func checkRuleCost(opt rrule.ROption) error {
	if opt.Freq > rrule.DAILY {
		return fmt.Errorf("FREQ=%s is not supported, DAILY is the finest", opt.Freq)
	}
	if len(opt.Bysetpos) > 0 {
		days := map[rrule.Frequency]int{rrule.DAILY: 1, rrule.WEEKLY: 7, rrule.MONTHLY: 31, rrule.YEARLY: 366}[opt.Freq]
		if opt.Freq == rrule.WEEKLY {
			days = max(len(opt.Byweekday), 1) // a week holds each weekday once
		}
		size := days * max(len(opt.Byhour), 1) * max(len(opt.Byminute), 1) * max(len(opt.Bysecond), 1)
		ok := false
		for _, p := range opt.Bysetpos {
			ok = ok || p <= size && p >= -size
		}
		if !ok {
			return errors.New("BYSETPOS beyond any set the rule can make")
		}
	}
	if len(opt.Bymonth)+len(opt.Bymonthday)+len(opt.Byyearday)+len(opt.Byweekno)+len(opt.Byeaster) == 0 {
		return nil
	}
	probe, err := rrule.NewRRule(dayProbe(opt))
	if err != nil {
		return err
	}
	if _, ok := probe.Iterator()(); !ok {
		return errors.New("the rule selects no day")
	}
	return nil
}

// dayProbe is a YEARLY rule over the days opt selects, ignoring INTERVAL,
// COUNT, UNTIL and BYSETPOS; it has an instance iff some day qualifies.
func dayProbe(opt rrule.ROption) rrule.ROption {
	p := rrule.ROption{Freq: rrule.YEARLY, Dtstart: opt.Dtstart, Wkst: opt.Wkst,
		Bymonth: opt.Bymonth, Bymonthday: opt.Bymonthday, Byyearday: opt.Byyearday,
		Byweekno: opt.Byweekno, Byweekday: opt.Byweekday, Byeaster: opt.Byeaster,
		Byhour: opt.Byhour, Byminute: opt.Byminute, Bysecond: opt.Bysecond}
	dayParts := len(p.Bymonthday)+len(p.Byyearday)+len(p.Byweekno)+len(p.Byweekday)+len(p.Byeaster) > 0
	if len(p.Bymonth) == 0 && opt.Freq != rrule.YEARLY {
		p.Bymonth = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	}
	if !dayParts {
		// The defaults each frequency takes from DTSTART (RFC 5545 §3.3.10).
		switch opt.Freq {
		case rrule.MONTHLY:
			p.Bymonthday = []int{opt.Dtstart.Day()}
		case rrule.WEEKLY, rrule.DAILY:
			p.Byweekday = []rrule.Weekday{rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU}
			if opt.Freq == rrule.WEEKLY {
				p.Byweekday = p.Byweekday[(int(opt.Dtstart.Weekday())+6)%7:][:1]
			}
		}
	}
	return p
}
