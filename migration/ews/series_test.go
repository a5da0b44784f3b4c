package ews_test

import (
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-ical"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/migration/ews"
)

// TestSeriesStartNotOnPattern: a series whose Start is not a day of its
// pattern (a "second Tuesday" series entered on a Wednesday) begins at
// the pattern's first match, as EWS expands it, and NumberedRecurrence
// counts from there. Regression: DTSTART was the item's Start, an extra
// instance that also used up one of the COUNT.
func TestSeriesStartNotOnPattern(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	start := time.Date(2026, 1, 14, 10, 0, 0, 0, berlin) // a Wednesday
	end := start.Add(time.Hour)
	ci := &ews.CalendarItem{UID: "series-start", Subject: "Review", Start: &start, End: &end,
		StartTimeZone: &ews.TimeZoneDefinition{ID: "W. Europe Standard Time"},
		Recurrence: &ews.Recurrence{
			RelativeMonthly: &ews.RelativeMonthlyRecurrence{Interval: 1, DaysOfWeek: "Tuesday", DayOfWeekIndex: "Second"},
			Numbered:        &ews.NumberedRecurrence{StartDate: "2026-01-14", NumberOfOccurrences: 3},
		}}
	cal, err := ews.ToICalendar(ci, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ews.Encode(cal)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := calendar.Parse(data, calendar.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := obj.Expand(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []time.Time
	for _, c := range exp.Children {
		s, err := c.Props.DateTime(ical.PropDateTimeStart, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s.In(berlin))
	}
	want := []time.Time{
		time.Date(2026, 2, 10, 10, 0, 0, 0, berlin),
		time.Date(2026, 3, 10, 10, 0, 0, 0, berlin),
		time.Date(2026, 4, 14, 10, 0, 0, 0, berlin),
	}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("instances %v, want %v\n%s", got, want, data)
	}
}
