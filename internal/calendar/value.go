package calendar

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// dtKind says how a DATE or DATE-TIME value is placed on the time line.
type dtKind uint8

const (
	kindUTC      dtKind = iota // "Z": an instant
	kindFloating               // no TZID, or a DATE: the object's floating zone
	kindZoned                  // TZID: a VTIMEZONE or an IANA zone
)

// The years a DATE or DATE-TIME may have: rrule-go panics on year 0 and
// searches up to 9999; Outlook's VTIMEZONEs start in 1601.
const (
	minYear = 1000
	maxYear = 9000
)

// dtValue is one DATE or DATE-TIME value as written: wall holds its
// fields as a UTC time (for kindUTC, the instant itself).
type dtValue struct {
	wall time.Time
	date bool
	kind dtKind
	zone zone // kindZoned only
}

// wallValue reads one DATE or DATE-TIME value with go-ical, ignoring any
// TZID. A DATE written without VALUE=DATE is accepted.
func wallValue(s string, vt ical.ValueType) (dtValue, error) {
	p := ical.Prop{Name: ical.PropDateTimeStart, Params: ical.Params{}, Value: s}
	if vt == ical.ValueDate {
		p.Params.Set(ical.ParamValue, string(ical.ValueDate))
	}
	t, err := p.DateTime(time.UTC)
	if err != nil && len(s) == len("20060102") && vt != ical.ValueDate {
		p.Params.Set(ical.ParamValue, string(ical.ValueDate))
		t, err = p.DateTime(time.UTC)
	}
	if err != nil {
		return dtValue{}, err
	}
	if y := t.Year(); y < minYear || y > maxYear {
		return dtValue{}, fmt.Errorf("year %d outside %d-%d", y, minYear, maxYear)
	}
	v := dtValue{wall: t.UTC(), date: len(s) == len("20060102"), kind: kindFloating}
	if strings.HasSuffix(s, "Z") {
		v.kind = kindUTC
	}
	return v, nil
}

// resolver finds the zone of a TZID.
type resolver func(tzid string) (zone, error)

// propTimes reads every value of a DATE or DATE-TIME property (EXDATE and
// RDATE carry comma-separated lists), resolving its TZID.
func propTimes(p *ical.Prop, resolve resolver) ([]dtValue, error) {
	var z zone
	if tzid := p.Params.Get(ical.ParamTimezoneID); tzid != "" {
		var err error
		if z, err = resolve(tzid); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	parts := strings.Split(p.Value, ",")
	out := make([]dtValue, 0, len(parts))
	for _, s := range parts {
		v, err := wallValue(s, p.ValueType())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		if z != nil && v.kind == kindFloating && !v.date {
			v.kind, v.zone = kindZoned, z
		}
		out = append(out, v)
	}
	return out, nil
}

// propTime reads a property that holds exactly one DATE or DATE-TIME.
func propTime(p *ical.Prop, resolve resolver) (dtValue, error) {
	vs, err := propTimes(p, resolve)
	if err != nil {
		return dtValue{}, err
	}
	if len(vs) != 1 {
		return dtValue{}, fmt.Errorf("%s: want one value, got %d", p.Name, len(vs))
	}
	return vs[0], nil
}

// duration is an iCalendar DURATION: days are nominal (a day is the same
// wall time the next day, RFC 5545 §3.3.6), the rest exact.
type duration struct {
	days  int
	exact time.Duration
}

// parseDuration reads a DURATION value with go-ical, once whole and once
// up to its time part, to tell nominal days from exact time.
func parseDuration(s string) (duration, error) {
	total, err := (&ical.Prop{Name: ical.PropDuration, Params: ical.Params{}, Value: s}).Duration()
	if err != nil {
		return duration{}, err
	}
	datePart := s
	if i := strings.IndexAny(s, "Tt"); i >= 0 {
		datePart = s[:i]
	}
	var days time.Duration
	if trimmed := strings.TrimLeft(datePart, "+-"); len(trimmed) > 1 {
		if days, err = (&ical.Prop{Name: ical.PropDuration, Params: ical.Params{}, Value: datePart}).Duration(); err != nil {
			return duration{}, err
		}
	}
	const day = 24 * time.Hour
	if days/day > 1<<20 || days/day < -(1<<20) {
		return duration{}, errors.New("duration out of range")
	}
	return duration{days: int(days / day), exact: total - days}, nil
}

// after is the instant d after a start at wall time wall (instant at) in z.
func (d duration) after(z zone, wall, at time.Time) time.Time {
	if d.days != 0 {
		at = toInstant(z, wall.AddDate(0, 0, d.days))
	}
	return at.Add(d.exact)
}

// period is one PERIOD value (RFC 5545 §3.3.9): a start and either an
// end or a duration.
type period struct {
	start  dtValue
	end    dtValue
	dur    duration
	hasEnd bool
}

// periodValue reads "start/end" or "start/duration".
func periodValue(s string, z zone) (period, error) {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return period{}, fmt.Errorf("invalid period %q", s)
	}
	var p period
	var err error
	if p.start, err = wallValue(s[:i], ical.ValueDateTime); err != nil {
		return p, err
	}
	rest := s[i+1:]
	if strings.ContainsAny(rest[:min(len(rest), 2)], "Pp") {
		p.dur, err = parseDuration(rest)
		return p.zoned(z), err
	}
	if p.end, err = wallValue(rest, ical.ValueDateTime); err != nil {
		return p, err
	}
	p.hasEnd = true
	return p.zoned(z), nil
}

func (p period) zoned(z zone) period {
	if z != nil && p.start.kind == kindFloating {
		p.start.kind, p.start.zone = kindZoned, z
	}
	if z != nil && p.end.kind == kindFloating {
		p.end.kind, p.end.zone = kindZoned, z
	}
	return p
}
