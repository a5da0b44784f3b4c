package ews_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/migration/ews"
)

// The test's own model of an EWS recurrence ([MS-OXWSCAL] RecurrenceType
// as Exchange applies it): every day from the range's StartDate is tested
// against the pattern by brute force, with no RRULE in sight.

// fataler is what the model needs of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

var dayNames = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}

func parseDays(t fataler, s string) map[time.Weekday]bool {
	out := map[time.Weekday]bool{}
	for _, f := range strings.Fields(s) {
		switch f {
		case "Day":
			for d := range 7 {
				out[time.Weekday(d)] = true
			}
		case "Weekday":
			for d := time.Monday; d <= time.Friday; d++ {
				out[d] = true
			}
		case "WeekendDay":
			out[time.Saturday], out[time.Sunday] = true, true
		default:
			i := slices.Index(dayNames, f)
			if i < 0 {
				t.Fatalf("bad day %q", f)
			}
			out[time.Weekday(i)] = true
		}
	}
	return out
}

func lastDay(d time.Time) int { return time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day() }

func monthsBetween(a, b time.Time) int {
	return (b.Year()-a.Year())*12 + int(b.Month()) - int(a.Month())
}

// relativeHit: is d the index-th (1-4, or "Last") day of its month among
// the days in set?
func relativeHit(d time.Time, set map[time.Weekday]bool, index string) bool {
	var hits []int
	for day := 1; day <= lastDay(d); day++ {
		if set[time.Date(d.Year(), d.Month(), day, 0, 0, 0, 0, time.UTC).Weekday()] {
			hits = append(hits, day)
		}
	}
	n := map[string]int{"First": 0, "Second": 1, "Third": 2, "Fourth": 3, "Last": len(hits) - 1}[index]
	return n < len(hits) && hits[n] == d.Day()
}

func monthIndex(t fataler, s string) time.Month {
	for m := time.January; m <= time.December; m++ {
		if m.String() == s {
			return m
		}
	}
	t.Fatalf("bad month %q", s)
	return 0
}

// matches says whether date d (UTC midnight) is an occurrence of r's
// pattern, counting intervals from start (the range's StartDate).
func matches(t fataler, r *ews.Recurrence, start, d time.Time) bool {
	switch {
	case r.Daily != nil:
		return int(d.Sub(start).Hours()/24)%r.Daily.Interval == 0
	case r.Weekly != nil:
		wkst := time.Weekday(slices.Index(dayNames, r.Weekly.FirstDayOfWeek))
		weekStart := func(x time.Time) time.Time { return x.AddDate(0, 0, -((int(x.Weekday()) - int(wkst) + 7) % 7)) }
		weeks := int(weekStart(d).Sub(weekStart(start)).Hours() / (24 * 7))
		return parseDays(t, r.Weekly.DaysOfWeek)[d.Weekday()] && weeks%r.Weekly.Interval == 0
	case r.AbsoluteMonthly != nil:
		return monthsBetween(start, d)%r.AbsoluteMonthly.Interval == 0 && d.Day() == min(r.AbsoluteMonthly.DayOfMonth, lastDay(d))
	case r.RelativeMonthly != nil:
		return monthsBetween(start, d)%r.RelativeMonthly.Interval == 0 && relativeHit(d, parseDays(t, r.RelativeMonthly.DaysOfWeek), r.RelativeMonthly.DayOfWeekIndex)
	case r.AbsoluteYearly != nil:
		return d.Month() == monthIndex(t, r.AbsoluteYearly.Month) && d.Day() == min(r.AbsoluteYearly.DayOfMonth, lastDay(d))
	case r.RelativeYearly != nil:
		return d.Month() == monthIndex(t, r.RelativeYearly.Month) && relativeHit(d, parseDays(t, r.RelativeYearly.DaysOfWeek), r.RelativeYearly.DayOfWeekIndex)
	}
	t.Fatal("no pattern")
	return false
}

func rangeOf(t fataler, r *ews.Recurrence) (start time.Time, end time.Time, count int) {
	parse := func(s string) time.Time {
		d, err := time.Parse("2006-01-02", s[:10])
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	switch {
	case r.Numbered != nil:
		return parse(r.Numbered.StartDate), time.Time{}, r.Numbered.NumberOfOccurrences
	case r.EndDate != nil:
		return parse(r.EndDate.StartDate), parse(r.EndDate.EndDate), 0
	}
	return parse(r.NoEnd.StartDate), time.Time{}, 0
}

// occurrenceDates are the dates of r's occurrences before limit.
func occurrenceDates(t fataler, r *ews.Recurrence, limit time.Time) []time.Time {
	start, end, count := rangeOf(t, r)
	var out []time.Time
	for d := start; d.Before(limit); d = d.AddDate(0, 0, 1) {
		if !end.IsZero() && d.After(end) || count > 0 && len(out) == count {
			break
		}
		if matches(t, r, start, d) {
			out = append(out, d)
		}
	}
	return out
}

// instanceKeys is the model's instance set of ci before limit: each
// occurrence at the start's local time of day, less deleted ones, moved
// ones at their new start; keyed as the expansion writes starts (a DATE
// for all-day events, else UTC).
func instanceKeys(t fataler, ci *ews.CalendarItem, limit time.Time) []string {
	loc, _, err := ews.Location(ci.StartTimeZone)
	if err != nil {
		t.Fatal(err)
	}
	allDay := ci.IsAllDayEvent != nil && *ci.IsAllDayEvent
	first := ci.Start.In(loc)
	deleted, moved := map[time.Time]bool{}, map[time.Time]time.Time{}
	if ci.DeletedOccurrences != nil {
		for _, d := range ci.DeletedOccurrences.DeletedOccurrence {
			deleted[d.Start.UTC()] = true
		}
	}
	if ci.ModifiedOccurrences != nil {
		for _, o := range ci.ModifiedOccurrences.Occurrence {
			moved[o.OriginalStart.UTC()] = o.Start
		}
	}
	var keys []string
	for _, d := range occurrenceDates(t, ci.Recurrence, limit.AddDate(0, 0, 2)) {
		at := time.Date(d.Year(), d.Month(), d.Day(), first.Hour(), first.Minute(), 0, 0, loc)
		if deleted[at.UTC()] {
			continue
		}
		if m, ok := moved[at.UTC()]; ok {
			at = m
		}
		if allDay {
			// A DATE is floating: the expansion places it in UTC.
			day := at.In(loc)
			if !time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC).Before(limit) {
				continue
			}
			keys = append(keys, day.Format("20060102"))
		} else if at.Before(limit) {
			keys = append(keys, at.UTC().Format("20060102T150405Z"))
		}
	}
	slices.Sort(keys)
	return keys
}

var zones = []string{"W. Europe Standard Time", "Eastern Standard Time", "Russian Standard Time", "AUS Eastern Standard Time", "UTC", "India Standard Time", "Pacific Standard Time"}

func genDays(t *rapid.T, label string) string {
	set := rapid.SliceOfNDistinct(rapid.SampledFrom(dayNames), 1, 7, rapid.ID[string]).Draw(t, label)
	return strings.Join(set, " ")
}

func genRecurrence(t *rapid.T, startDate string) *ews.Recurrence {
	r := &ews.Recurrence{}
	index := rapid.SampledFrom([]string{"First", "Second", "Third", "Fourth", "Last"})
	relDays := rapid.OneOf(rapid.SampledFrom(dayNames), rapid.SampledFrom([]string{"Day", "Weekday", "WeekendDay"}))
	month := rapid.SampledFrom([]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"})
	switch rapid.IntRange(0, 5).Draw(t, "pattern") {
	case 0:
		r.Daily = &ews.DailyRecurrence{Interval: rapid.IntRange(1, 10).Draw(t, "interval")}
	case 1:
		r.Weekly = &ews.WeeklyRecurrence{Interval: rapid.IntRange(1, 4).Draw(t, "interval"), DaysOfWeek: genDays(t, "days"),
			FirstDayOfWeek: rapid.SampledFrom(dayNames).Draw(t, "wkst")}
	case 2:
		r.AbsoluteMonthly = &ews.AbsoluteMonthlyRecurrence{Interval: rapid.IntRange(1, 4).Draw(t, "interval"), DayOfMonth: rapid.IntRange(1, 31).Draw(t, "dom")}
	case 3:
		r.RelativeMonthly = &ews.RelativeMonthlyRecurrence{Interval: rapid.IntRange(1, 4).Draw(t, "interval"), DaysOfWeek: relDays.Draw(t, "days"), DayOfWeekIndex: index.Draw(t, "index")}
	case 4:
		r.AbsoluteYearly = &ews.AbsoluteYearlyRecurrence{DayOfMonth: rapid.IntRange(1, 31).Draw(t, "dom"), Month: month.Draw(t, "month")}
	case 5:
		r.RelativeYearly = &ews.RelativeYearlyRecurrence{DaysOfWeek: relDays.Draw(t, "days"), DayOfWeekIndex: index.Draw(t, "index"), Month: month.Draw(t, "month")}
	}
	switch rapid.IntRange(0, 2).Draw(t, "range") {
	case 0:
		r.NoEnd = &ews.NoEndRecurrence{StartDate: startDate}
	case 1:
		s, _ := time.Parse("2006-01-02", startDate)
		r.EndDate = &ews.EndDateRecurrence{StartDate: startDate, EndDate: s.AddDate(0, 0, rapid.IntRange(0, 900).Draw(t, "days")).Format("2006-01-02")}
	case 2:
		r.Numbered = &ews.NumberedRecurrence{StartDate: startDate, NumberOfOccurrences: rapid.IntRange(1, 40).Draw(t, "count")}
	}
	return r
}

// genItem draws a recurring calendar item whose Start is its first
// occurrence, as Exchange keeps it, with deleted and moved occurrences.
func genItem(t *rapid.T) (*ews.CalendarItem, time.Time) {
	zone := rapid.SampledFrom(zones).Draw(t, "zone")
	def := &ews.TimeZoneDefinition{ID: zone}
	loc, _, err := ews.Location(def)
	if err != nil {
		t.Fatal(err)
	}
	startDate := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rapid.IntRange(0, 400).Draw(t, "start"))
	r := genRecurrence(t, startDate.Format("2006-01-02"))
	limit := startDate.AddDate(2, 0, 0)
	dates := occurrenceDates(t, r, limit)
	if len(dates) == 0 {
		t.Skip("no occurrence in the window")
	}
	allDay := rapid.Bool().Draw(t, "allDay")
	hour, minute := 0, 0
	length := time.Duration(rapid.IntRange(1, 3).Draw(t, "days")) * 24 * time.Hour
	if !allDay {
		// Hours away from daylight-saving changes: a wall time that does
		// not exist is a separate question from the recurrence set.
		hour, minute = rapid.IntRange(5, 22).Draw(t, "hour"), rapid.SampledFrom([]int{0, 15, 30, 45}).Draw(t, "minute")
		length = time.Duration(rapid.IntRange(1, 16).Draw(t, "quarters")) * 15 * time.Minute
	}
	at := func(d time.Time) time.Time {
		return time.Date(d.Year(), d.Month(), d.Day(), hour, minute, 0, 0, loc)
	}
	start := at(dates[0]).UTC()
	end := start.Add(length)
	if allDay {
		end = at(dates[0].Add(length)).UTC()
	}
	ci := &ews.CalendarItem{UID: "040000008200E00074C5B7101A82E008", Subject: "Stand-up", Start: &start, End: &end,
		IsAllDayEvent: &allDay, StartTimeZone: def, EndTimeZone: def, Recurrence: r}
	picked := rapid.SliceOfDistinct(rapid.IntRange(0, min(len(dates), 20)-1), rapid.ID[int]).Draw(t, "exceptions")
	for i, n := range picked {
		orig := at(dates[n]).UTC()
		if i%2 == 0 {
			if ci.DeletedOccurrences == nil {
				ci.DeletedOccurrences = &ews.DeletedOccurrences{}
			}
			ci.DeletedOccurrences.DeletedOccurrence = append(ci.DeletedOccurrences.DeletedOccurrence, ews.DeletedOccurrence{Start: orig})
			continue
		}
		shift := time.Duration(rapid.IntRange(1, 12).Draw(t, "shift")) * 30 * time.Minute
		if allDay {
			shift = time.Duration(rapid.IntRange(1, 3).Draw(t, "shiftDays")) * 24 * time.Hour
		}
		if ci.ModifiedOccurrences == nil {
			ci.ModifiedOccurrences = &ews.Occurrences{}
		}
		s := orig.Add(shift)
		if allDay {
			s = at(dates[n].Add(shift)).UTC()
		}
		ci.ModifiedOccurrences.Occurrence = append(ci.ModifiedOccurrences.Occurrence, ews.Occurrence{Start: s, End: s.Add(end.Sub(start)), OriginalStart: orig})
	}
	return ci, limit
}

// expandedKeys are the instance starts our recurrence code
// (internal/calendar, the CalDAV server's) computes for cal before limit.
func expandedKeys(t fataler, cal *ical.Calendar, from, limit time.Time) []string {
	data, err := ews.Encode(cal)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := calendar.Parse(data, calendar.Limits{})
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	exp, err := obj.Expand(from, limit, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range exp.Children {
		keys = append(keys, c.Props.Get(ical.PropDateTimeStart).Value)
	}
	slices.Sort(keys)
	return keys
}

// TestRecurrenceRoundTrip: for random EWS recurrences, the iCalendar
// mapping has the same instances over two years as the EWS pattern (as
// the model expands it and as internal/calendar expands the RRULE), and
// mapping back to EWS keeps that instance set.
func TestRecurrenceRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ci, limit := genItem(t)
		want := instanceKeys(t, ci, limit)

		cal, err := ews.ToICalendar(ci, nil)
		if err != nil {
			t.Fatal(err)
		}
		from := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
		if got := expandedKeys(t, cal, from, limit); !slices.Equal(got, want) {
			data, _ := ews.Encode(cal)
			t.Fatalf("iCalendar instances differ\n got %v\nwant %v\n%s", got, want, data)
		}

		back, err := ews.FromICalendar(cal)
		if err != nil {
			t.Fatal(err)
		}
		if *back.IsAllDayEvent {
			// A DATE has no zone; the model reads the dates in the zone the
			// item names.
			back.StartTimeZone = ci.StartTimeZone
			s := time.Date(back.Start.Year(), back.Start.Month(), back.Start.Day(), 0, 0, 0, 0, mustLoc(t, ci.StartTimeZone)).UTC()
			back.Start = &s
			if back.DeletedOccurrences != nil {
				for i, d := range back.DeletedOccurrences.DeletedOccurrence {
					back.DeletedOccurrences.DeletedOccurrence[i].Start = time.Date(d.Start.Year(), d.Start.Month(), d.Start.Day(), 0, 0, 0, 0, mustLoc(t, ci.StartTimeZone))
				}
			}
			if back.ModifiedOccurrences != nil {
				for i, o := range back.ModifiedOccurrences.Occurrence {
					l := mustLoc(t, ci.StartTimeZone)
					back.ModifiedOccurrences.Occurrence[i].OriginalStart = time.Date(o.OriginalStart.Year(), o.OriginalStart.Month(), o.OriginalStart.Day(), 0, 0, 0, 0, l)
					back.ModifiedOccurrences.Occurrence[i].Start = time.Date(o.Start.Year(), o.Start.Month(), o.Start.Day(), 0, 0, 0, 0, l)
				}
			}
		}
		if got := instanceKeys(t, back, limit); !slices.Equal(got, want) {
			t.Fatalf("EWS -> iCalendar -> EWS changed the instances\n got %v\nwant %v\nrecurrence %+v", got, want, *back.Recurrence)
		}
	})
}

func mustLoc(t fataler, def *ews.TimeZoneDefinition) *time.Location {
	loc, _, err := ews.Location(def)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
