package ews

import (
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-ical"
)

//go:embed windowszones.txt
var windowsZonesData string

// zoneTable is the parsed CLDR mapping, built on first use.
var zoneTable = sync.OnceValue(func() (t struct{ toIANA, toWindows map[string]string }) {
	t.toIANA, t.toWindows = map[string]string{}, map[string]string{}
	for line := range strings.Lines(windowsZonesData) {
		line = strings.TrimRight(line, "\r\n")
		win, iana, ok := strings.Cut(line, "\t")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		t.toIANA[win] = iana
		if _, dup := t.toWindows[iana]; !dup {
			t.toWindows[iana] = win
		}
	}
	return t
})

// IANAZone returns the IANA time zone CLDR maps a Windows time zone id
// to ("W. Europe Standard Time" -> "Europe/Berlin"), and whether the id
// is known.
func IANAZone(windowsID string) (string, bool) {
	z, ok := zoneTable().toIANA[windowsID]
	return z, ok
}

// WindowsZone returns the Windows time zone id for an IANA zone: CLDR's
// own entry, or else the first Windows zone whose IANA zone has the same
// UTC offsets as loc in January and July of year (a zone CLDR lists only
// for a territory, "Europe/Amsterdam", gets "W. Europe Standard Time").
func WindowsZone(loc *time.Location, year int) (string, bool) {
	if loc == time.UTC {
		return "UTC", true
	}
	if w, ok := zoneTable().toWindows[loc.String()]; ok {
		return w, true
	}
	jan, jul := time.Date(year, 1, 15, 12, 0, 0, 0, time.UTC), time.Date(year, 7, 15, 12, 0, 0, 0, time.UTC)
	_, a := jan.In(loc).Zone()
	_, b := jul.In(loc).Zone()
	best := ""
	for win, iana := range zoneTable().toIANA {
		l, err := time.LoadLocation(iana)
		if err != nil {
			continue
		}
		_, x := jan.In(l).Zone()
		_, y := jul.In(l).Zone()
		if x == a && y == b && (best == "" || win < best) {
			best = win
		}
	}
	return best, best != ""
}

// ErrUnknownZone is returned for a time zone that is neither a known
// Windows id nor described by periods with a bias.
var ErrUnknownZone = errors.New("ews: unknown time zone")

// Location returns the zone an EWS time zone definition means and the
// TZID to write for it: the IANA zone of its Windows id, or else a fixed
// zone of its standard period's bias (named by its id). A nil definition
// is UTC.
func Location(def *TimeZoneDefinition) (*time.Location, string, error) {
	if def == nil || (def.ID == "" && len(def.Periods) == 0) {
		return time.UTC, "UTC", nil
	}
	if iana, ok := IANAZone(def.ID); ok {
		if loc, err := time.LoadLocation(iana); err == nil {
			return loc, iana, nil
		}
	}
	var p *Period
	for i := range def.Periods {
		if p == nil || strings.EqualFold(def.Periods[i].Name, "Standard") {
			p = &def.Periods[i]
		}
	}
	if p == nil {
		return nil, "", fmt.Errorf("%w: %q", ErrUnknownZone, def.ID)
	}
	bias, err := parseDuration(p.Bias)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %q: bias %q: %v", ErrUnknownZone, def.ID, p.Bias, err)
	}
	name := def.ID
	if name == "" {
		name = "UTC" + formatOffset(-int(bias/time.Second))
	}
	return time.FixedZone(name, -int(bias/time.Second)), name, nil
}

// parseDuration reads an xs:duration of days, hours, minutes and seconds
// ("-PT1H", "PT5H30M", "P1DT2H"), as EWS writes time zone biases.
func parseDuration(s string) (time.Duration, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if !strings.HasPrefix(s, "P") || len(s) < 3 {
		return 0, errors.New("not a duration")
	}
	var d time.Duration
	inTime := false
	num := ""
	for _, r := range s[1:] {
		switch {
		case r >= '0' && r <= '9':
			num += string(r)
		case r == 'T' && num == "" && !inTime:
			inTime = true
		default:
			n, err := strconv.Atoi(num)
			if err != nil || len(num) > 6 {
				return 0, errors.New("bad duration number")
			}
			unit := map[rune]time.Duration{'D': 24 * time.Hour, 'H': time.Hour, 'M': time.Minute, 'S': time.Second}[r]
			if unit == 0 || (r == 'D') == inTime {
				return 0, fmt.Errorf("bad duration unit %q", r)
			}
			d += time.Duration(n) * unit
			num = ""
		}
	}
	if num != "" || d > 48*time.Hour {
		return 0, errors.New("bad duration")
	}
	if neg {
		d = -d
	}
	return d, nil
}

// formatOffset writes a UTC offset as RFC 5545 §3.3.14 UTC-OFFSET.
func formatOffset(sec int) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "-", -sec
	}
	s := fmt.Sprintf("%s%02d%02d", sign, sec/3600, sec/60%60)
	if sec%60 != 0 {
		s += fmt.Sprintf("%02d", sec%60)
	}
	return s
}

// transition is a change of UTC offset.
type transition struct {
	at       time.Time // the instant
	from, to int       // offsets before and after, in seconds
	dst      bool      // daylight time after
}

// transitions returns loc's offset changes in year.
func transitions(loc *time.Location, year int) []transition {
	var out []transition
	t := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
	end := t.AddDate(1, 0, 0)
	_, off := t.In(loc).Zone()
	for t.Before(end) {
		next := t.Add(24 * time.Hour)
		if _, o := next.In(loc).Zone(); o != off {
			lo, hi := t, next // offset(lo) == off, offset(hi) != off
			for hi.Sub(lo) > time.Second {
				mid := lo.Add(hi.Sub(lo) / 2)
				if _, o := mid.In(loc).Zone(); o == off {
					lo = mid
				} else {
					hi = mid
				}
			}
			_, o := hi.In(loc).Zone()
			out = append(out, transition{at: hi, from: off, to: o, dst: hi.In(loc).IsDST()})
			off = o
		}
		t = next
	}
	return out
}

// yearlyRule is the RFC 5545 rule that gives tr's local date every year
// (the n-th or last weekday of its month), and whether it does so for
// years after tr.
func yearlyRule(loc *time.Location, tr transition, index int) (string, bool) {
	wall := tr.at.Add(time.Duration(tr.from) * time.Second).UTC()
	n := (wall.Day()-1)/7 + 1
	if wall.Day()+7 > daysIn(wall.Year(), wall.Month()) {
		n = -1
	}
	rule := fmt.Sprintf("FREQ=YEARLY;BYMONTH=%d;BYDAY=%d%s", int(wall.Month()), n, dayCodes[wall.Weekday()])
	for y := wall.Year() + 1; y <= wall.Year()+3; y++ {
		ts := transitions(loc, y)
		if len(ts) <= index {
			return rule, false
		}
		w := ts[index].at.Add(time.Duration(ts[index].from) * time.Second).UTC()
		if w.Month() != wall.Month() || w.Weekday() != wall.Weekday() || w.Hour() != wall.Hour() || w.Minute() != wall.Minute() || nthOf(w) != n {
			return rule, false
		}
	}
	return rule, true
}

// nthOf is the ordinal of t's weekday in its month, -1 for the last.
func nthOf(t time.Time) int {
	if t.Day()+7 > daysIn(t.Year(), t.Month()) {
		return -1
	}
	return (t.Day()-1)/7 + 1
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

var dayCodes = [7]string{"SU", "MO", "TU", "WE", "TH", "FR", "SA"}

// rdateYears is how many years of explicit onsets a zone whose changes
// follow no yearly rule gets.
const rdateYears = 30

// VTimezone describes loc as a VTIMEZONE component named tzid (RFC 5545
// §3.6.5) that is exact from the year of from on: the year's offset
// changes as STANDARD and DAYLIGHT observances with a yearly RRULE where
// one holds (checked against the next years), else with RDATEs for
// rdateYears years; a zone without changes is one STANDARD observance.
func VTimezone(loc *time.Location, tzid string, from time.Time) *ical.Component {
	tz := ical.NewComponent(ical.CompTimezone)
	tz.Props.SetText(ical.PropTimezoneID, tzid)
	year := from.In(loc).Year()
	trs := transitions(loc, year)
	if len(trs) == 0 {
		_, off := from.In(loc).Zone()
		tz.Children = append(tz.Children, observance(ical.CompTimezoneStandard, "19700101T000000", off, off))
		return tz
	}
	for i, tr := range trs {
		name := ical.CompTimezoneStandard
		if tr.dst {
			name = ical.CompTimezoneDaylight
		}
		wall := tr.at.Add(time.Duration(tr.from) * time.Second).UTC()
		obs := observance(name, wall.Format("20060102T150405"), tr.from, tr.to)
		if rule, ok := yearlyRule(loc, tr, i); ok && len(trs) == 2 {
			obs.Props.Set(&ical.Prop{Name: ical.PropRecurrenceRule, Params: ical.Params{}, Value: rule})
		} else {
			for y := year + 1; y < year+rdateYears; y++ {
				for _, t := range transitions(loc, y) {
					if t.dst == tr.dst && t.from == tr.from && t.to == tr.to {
						w := t.at.Add(time.Duration(t.from) * time.Second).UTC()
						obs.Props.Add(&ical.Prop{Name: ical.PropRecurrenceDates, Params: ical.Params{}, Value: w.Format("20060102T150405")})
					}
				}
			}
		}
		tz.Children = append(tz.Children, obs)
	}
	return tz
}

func observance(name, start string, from, to int) *ical.Component {
	c := ical.NewComponent(name)
	c.Props.Set(&ical.Prop{Name: ical.PropDateTimeStart, Params: ical.Params{}, Value: start})
	c.Props.Set(&ical.Prop{Name: ical.PropTimezoneOffsetFrom, Params: ical.Params{}, Value: formatOffset(from)})
	c.Props.Set(&ical.Prop{Name: ical.PropTimezoneOffsetTo, Params: ical.Params{}, Value: formatOffset(to)})
	return c
}
