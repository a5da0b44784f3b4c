package ews

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/teambition/rrule-go"
)

// ErrNotRepresentable is returned for an iCalendar recurrence rule that
// no EWS recurrence pattern expresses (BYHOUR, several months, a
// BYMONTHDAY list, FREQ finer than daily, ...).
var ErrNotRepresentable = errors.New("ews: recurrence rule has no EWS equivalent")

// ewsDays are EWS's day names in time.Weekday order.
var ewsDays = [7]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}

// dayGroups are EWS's DaysOfWeek values that name several days
// ([MS-OXWSCDATA] DayOfWeekType).
var dayGroups = map[string][]time.Weekday{
	"Day":        {time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday},
	"Weekday":    {time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
	"WeekendDay": {time.Sunday, time.Saturday},
}

var dayIndexes = map[string]int{"First": 1, "Second": 2, "Third": 3, "Fourth": 4, "Last": -1}

// Weekdays parses an EWS DaysOfWeek list ("Monday Wednesday", "Weekday").
func Weekdays(s string) ([]time.Weekday, error) {
	var out []time.Weekday
	for f := range strings.FieldsSeq(s) {
		if g, ok := dayGroups[f]; ok {
			out = append(out, g...)
			continue
		}
		i := slices.Index(ewsDays[:], f)
		if i < 0 {
			return nil, fmt.Errorf("ews: unknown day %q", f)
		}
		out = append(out, time.Weekday(i))
	}
	if len(out) == 0 {
		return nil, errors.New("ews: no days of week")
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// DayIndex parses an EWS DayOfWeekIndex: 1-4, or -1 for Last.
func DayIndex(s string) (int, error) {
	if n, ok := dayIndexes[s]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("ews: unknown day index %q", s)
}

// MonthNumber parses an English month name.
func MonthNumber(s string) (time.Month, error) {
	for m := time.January; m <= time.December; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("ews: unknown month %q", s)
}

// Date parses an EWS xs:date ("2006-10-16", possibly followed by a zone
// offset, which names the same calendar day).
func Date(s string) (time.Time, error) {
	if len(s) < 10 {
		return time.Time{}, fmt.Errorf("ews: bad date %q", s)
	}
	return time.Parse("2006-01-02", s[:10])
}

func byDay(days []time.Weekday, n int) string {
	parts := make([]string, len(days))
	for i, d := range days {
		parts[i] = dayCodes[d]
		if n != 0 {
			parts[i] = strconv.Itoa(n) + parts[i]
		}
	}
	return strings.Join(parts, ",")
}

// monthDay is the RRULE part for "day d of the month, or its last day
// where the month is shorter", EWS's meaning of DayOfMonth.
func monthDay(d int) (string, error) {
	switch {
	case d < 1 || d > 31:
		return "", fmt.Errorf("ews: day of month %d", d)
	case d <= 28:
		return "BYMONTHDAY=" + strconv.Itoa(d), nil
	case d == 31:
		return "BYMONTHDAY=-1", nil
	}
	days := []string{}
	for i := 28; i <= d; i++ {
		days = append(days, strconv.Itoa(i))
	}
	return "BYMONTHDAY=" + strings.Join(days, ",") + ";BYSETPOS=-1", nil
}

// relative is the RRULE part for the n-th of days: an ordinal BYDAY for
// one day, a BYSETPOS over a group.
func relative(daysOfWeek, index string) (string, error) {
	days, err := Weekdays(daysOfWeek)
	if err != nil {
		return "", err
	}
	n, err := DayIndex(index)
	if err != nil {
		return "", err
	}
	if len(days) == 1 {
		return "BYDAY=" + byDay(days, n), nil
	}
	return "BYDAY=" + byDay(days, 0) + ";BYSETPOS=" + strconv.Itoa(n), nil
}

func interval(n int) (string, error) {
	if n < 1 || n > 999 {
		return "", fmt.Errorf("ews: recurrence interval %d", n)
	}
	return ";INTERVAL=" + strconv.Itoa(n), nil
}

// RRule maps an EWS recurrence to an RRULE value (RFC 5545 §3.3.10) for
// an event whose first instance starts at start, a time in the event's
// zone: the pattern becomes FREQ and BY-parts, a numbered range COUNT, an
// end date UNTIL (a DATE for all-day events, else the end date at the
// start's time of day, in UTC).
func RRule(r *Recurrence, start time.Time, allDay bool) (string, error) {
	var rule string
	var err error
	switch {
	case r.Daily != nil:
		rule, err = interval(r.Daily.Interval)
		rule = "FREQ=DAILY" + rule
	case r.Weekly != nil:
		var days []time.Weekday
		if days, err = Weekdays(r.Weekly.DaysOfWeek); err != nil {
			return "", err
		}
		rule, err = interval(r.Weekly.Interval)
		wkst := "SU"
		if r.Weekly.FirstDayOfWeek != "" {
			i := slices.Index(ewsDays[:], r.Weekly.FirstDayOfWeek)
			if i < 0 {
				return "", fmt.Errorf("ews: unknown first day of week %q", r.Weekly.FirstDayOfWeek)
			}
			wkst = dayCodes[i]
		}
		rule = "FREQ=WEEKLY" + rule + ";BYDAY=" + byDay(days, 0) + ";WKST=" + wkst
	case r.AbsoluteMonthly != nil:
		var md string
		if md, err = monthDay(r.AbsoluteMonthly.DayOfMonth); err != nil {
			return "", err
		}
		rule, err = interval(r.AbsoluteMonthly.Interval)
		rule = "FREQ=MONTHLY" + rule + ";" + md
	case r.RelativeMonthly != nil:
		var rel string
		if rel, err = relative(r.RelativeMonthly.DaysOfWeek, r.RelativeMonthly.DayOfWeekIndex); err != nil {
			return "", err
		}
		rule, err = interval(r.RelativeMonthly.Interval)
		rule = "FREQ=MONTHLY" + rule + ";" + rel
	case r.AbsoluteYearly != nil:
		var m time.Month
		if m, err = MonthNumber(r.AbsoluteYearly.Month); err != nil {
			return "", err
		}
		var md string
		if md, err = monthDay(min(r.AbsoluteYearly.DayOfMonth, daysIn(2000, m))); err != nil {
			return "", err
		}
		rule = "FREQ=YEARLY;BYMONTH=" + strconv.Itoa(int(m)) + ";" + md
	case r.RelativeYearly != nil:
		var m time.Month
		if m, err = MonthNumber(r.RelativeYearly.Month); err != nil {
			return "", err
		}
		var rel string
		if rel, err = relative(r.RelativeYearly.DaysOfWeek, r.RelativeYearly.DayOfWeekIndex); err != nil {
			return "", err
		}
		rule = "FREQ=YEARLY;BYMONTH=" + strconv.Itoa(int(m)) + ";" + rel
	default:
		return "", errors.New("ews: recurrence without a pattern")
	}
	if err != nil {
		return "", err
	}
	switch {
	case r.Numbered != nil:
		if r.Numbered.NumberOfOccurrences < 1 {
			return "", fmt.Errorf("ews: %d occurrences", r.Numbered.NumberOfOccurrences)
		}
		rule += ";COUNT=" + strconv.Itoa(r.Numbered.NumberOfOccurrences)
	case r.EndDate != nil:
		end, err := Date(r.EndDate.EndDate)
		if err != nil {
			return "", err
		}
		if allDay {
			rule += ";UNTIL=" + end.Format("20060102")
		} else {
			until := time.Date(end.Year(), end.Month(), end.Day(), start.Hour(), start.Minute(), start.Second(), 0, start.Location())
			rule += ";UNTIL=" + until.UTC().Format("20060102T150405Z")
		}
	case r.NoEnd != nil:
	default:
		return "", errors.New("ews: recurrence without a range")
	}
	return rule, nil
}

// RecurrenceOf maps an RRULE value back to an EWS recurrence for an event
// whose first instance starts at start (in the event's zone), or fails
// with ErrNotRepresentable. It reads the forms RRule writes and the
// common ones clients write (a MONTHLY or YEARLY rule without BY-parts
// takes its day from start, a WEEKLY one its day).
func RecurrenceOf(value string, start time.Time) (*Recurrence, error) {
	o, err := rrule.StrToROption(value)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRepresentable, err)
	}
	if len(o.Byhour)+len(o.Byminute)+len(o.Bysecond)+len(o.Byyearday)+len(o.Byweekno)+len(o.Byeaster) > 0 || len(o.Bymonth) > 1 {
		return nil, fmt.Errorf("%w: %s", ErrNotRepresentable, value)
	}
	if o.Interval == 0 {
		o.Interval = 1
	}
	if _, err := interval(o.Interval); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRepresentable, err)
	}
	r := &Recurrence{}
	if err := setPattern(r, o, start); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotRepresentable, value, err)
	}
	startDate := start.Format("2006-01-02")
	switch {
	case o.Count > 0:
		r.Numbered = &NumberedRecurrence{StartDate: startDate, NumberOfOccurrences: o.Count}
	case !o.Until.IsZero():
		// UNTIL is a DATE or UTC; the last instance is the one on or
		// before it, in the event's zone.
		u := o.Until
		if untilUTC(value) {
			u = u.In(start.Location())
		}
		r.EndDate = &EndDateRecurrence{StartDate: startDate, EndDate: u.Format("2006-01-02")}
		if u.Hour()*3600+u.Minute()*60+u.Second() < start.Hour()*3600+start.Minute()*60+start.Second() {
			r.EndDate.EndDate = u.AddDate(0, 0, -1).Format("2006-01-02")
		}
	default:
		r.NoEnd = &NoEndRecurrence{StartDate: startDate}
	}
	return r, nil
}

// weekdaysOf turns rrule-go weekdays (Monday = 0) into time.Weekdays and
// their common ordinal.
func weekdaysOf(ws []rrule.Weekday) ([]time.Weekday, int, error) {
	var out []time.Weekday
	n := 0
	for i, w := range ws {
		if i > 0 && w.N() != n {
			return nil, 0, errors.New("mixed BYDAY ordinals")
		}
		n = w.N()
		out = append(out, time.Weekday((w.Day()+1)%7))
	}
	slices.Sort(out)
	return out, n, nil
}

func daysOfWeek(days []time.Weekday) string {
	for _, g := range []string{"Day", "Weekday", "WeekendDay"} {
		if slices.Equal(days, dayGroups[g]) {
			return g
		}
	}
	names := make([]string, len(days))
	for i, d := range days {
		names[i] = ewsDays[d]
	}
	return strings.Join(names, " ")
}

func indexName(n int) (string, error) {
	for name, i := range dayIndexes {
		if i == n {
			return name, nil
		}
	}
	return "", fmt.Errorf("day index %d", n)
}

// monthDayOf reads the BYMONTHDAY forms monthDay writes.
func monthDayOf(o *rrule.ROption, start time.Time) (int, error) {
	md, pos := o.Bymonthday, o.Bysetpos
	switch {
	case len(md) == 0 && len(pos) == 0:
		return start.Day(), nil
	case len(md) == 1 && len(pos) == 0 && md[0] >= 1 && md[0] <= 28:
		return md[0], nil
	case len(md) == 1 && len(pos) == 0 && md[0] == -1:
		return 31, nil
	case slices.Equal(pos, []int{-1}) && (slices.Equal(md, []int{28, 29}) || slices.Equal(md, []int{28, 29, 30})):
		return md[len(md)-1], nil
	}
	return 0, errors.New("BYMONTHDAY form")
}

// relativeOf reads the BYDAY/BYSETPOS forms relative writes.
func relativeOf(o *rrule.ROption) (days string, index string, err error) {
	ds, n, err := weekdaysOf(o.Byweekday)
	if err != nil {
		return "", "", err
	}
	switch {
	case len(ds) == 1 && n != 0 && len(o.Bysetpos) == 0:
	case n == 0 && len(o.Bysetpos) == 1 && daysOfWeek(ds) != "" && !strings.Contains(daysOfWeek(ds), " ") && len(ds) > 1:
		n = o.Bysetpos[0]
	default:
		return "", "", errors.New("BYDAY form")
	}
	name, err := indexName(n)
	return daysOfWeek(ds), name, err
}

func setPattern(r *Recurrence, o *rrule.ROption, start time.Time) error {
	switch o.Freq {
	case rrule.DAILY:
		if len(o.Byweekday)+len(o.Bymonthday)+len(o.Bysetpos)+len(o.Bymonth) > 0 {
			return errors.New("DAILY with BY-parts")
		}
		r.Daily = &DailyRecurrence{Interval: o.Interval}
	case rrule.WEEKLY:
		if len(o.Bymonthday)+len(o.Bysetpos)+len(o.Bymonth) > 0 {
			return errors.New("WEEKLY with BY-parts")
		}
		days := []time.Weekday{start.Weekday()}
		if len(o.Byweekday) > 0 {
			var n int
			var err error
			if days, n, err = weekdaysOf(o.Byweekday); err != nil || n != 0 {
				return errors.New("WEEKLY BYDAY form")
			}
		}
		names := make([]string, len(days))
		for i, d := range days {
			names[i] = ewsDays[d]
		}
		r.Weekly = &WeeklyRecurrence{Interval: o.Interval, DaysOfWeek: strings.Join(names, " "), FirstDayOfWeek: ewsDays[(o.Wkst.Day()+1)%7]}
	case rrule.MONTHLY:
		if len(o.Bymonth) > 0 {
			return errors.New("MONTHLY with BYMONTH")
		}
		if len(o.Byweekday) > 0 {
			if len(o.Bymonthday) > 0 {
				return errors.New("MONTHLY BYDAY with BYMONTHDAY")
			}
			days, index, err := relativeOf(o)
			if err != nil {
				return err
			}
			r.RelativeMonthly = &RelativeMonthlyRecurrence{Interval: o.Interval, DaysOfWeek: days, DayOfWeekIndex: index}
			return nil
		}
		d, err := monthDayOf(o, start)
		if err != nil {
			return err
		}
		r.AbsoluteMonthly = &AbsoluteMonthlyRecurrence{Interval: o.Interval, DayOfMonth: d}
	case rrule.YEARLY:
		if o.Interval != 1 {
			return errors.New("YEARLY with INTERVAL")
		}
		m := start.Month()
		if len(o.Bymonth) == 1 {
			if o.Bymonth[0] < 1 || o.Bymonth[0] > 12 {
				return errors.New("BYMONTH out of range")
			}
			m = time.Month(o.Bymonth[0])
		}
		if len(o.Byweekday) > 0 {
			if len(o.Bymonthday) > 0 || len(o.Bymonth) == 0 {
				return errors.New("YEARLY BYDAY form")
			}
			days, index, err := relativeOf(o)
			if err != nil {
				return err
			}
			r.RelativeYearly = &RelativeYearlyRecurrence{DaysOfWeek: days, DayOfWeekIndex: index, Month: m.String()}
			return nil
		}
		d, err := monthDayOf(o, start)
		if err != nil {
			return err
		}
		r.AbsoluteYearly = &AbsoluteYearlyRecurrence{DayOfMonth: d, Month: m.String()}
	default:
		return errors.New("FREQ " + o.Freq.String())
	}
	return nil
}

// untilUTC reports whether the rule's UNTIL is a UTC time (ends in Z)
// rather than a DATE or a local time.
func untilUTC(rule string) bool {
	for part := range strings.SplitSeq(strings.ToUpper(rule), ";") {
		if v, ok := strings.CutPrefix(part, "UNTIL="); ok {
			return strings.HasSuffix(v, "Z")
		}
	}
	return false
}
