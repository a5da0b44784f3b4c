package ews

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
)

func decodeICS(t *testing.T, s string) *ical.Calendar {
	t.Helper()
	cal, err := ical.NewDecoder(strings.NewReader(strings.ReplaceAll(s, "\n", "\r\n"))).Decode()
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

// TestCancelledInstance: the cancellation of one instance of a series
// without an override of it adds one made from the master (RECURRENCE-ID
// and DTSTART at the instance in the master's zone, the master's
// duration, no recurrence of its own); an instance of an event that is
// no series is none (regression: it got an override, which makes the
// object invalid).
func TestCancelledInstance(t *testing.T) {
	series := decodeICS(t, `BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:s-1
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Berlin:20260701T110000
DTEND;TZID=Europe/Berlin:20260701T113000
RRULE:FREQ=DAILY;COUNT=3
EXDATE;TZID=Europe/Berlin:20260703T110000
SUMMARY:daily
END:VEVENT
END:VCALENDAR
`)
	rid := time.Date(2026, 7, 2, 9, 0, 0, 0, time.UTC)
	ev := cancelled(series, &rid)
	if ev == nil || len(series.Children) != 2 {
		t.Fatalf("no override made: %v", ev)
	}
	for name, want := range map[string]string{ical.PropRecurrenceID: "20260702T110000", ical.PropDateTimeStart: "20260702T110000",
		ical.PropDateTimeEnd: "20260702T113000", ical.PropSummary: "daily"} {
		p := ev.Props.Get(name)
		if p == nil || p.Value != want || name != ical.PropSummary && p.Params.Get(ical.ParamTimezoneID) != "Europe/Berlin" {
			t.Errorf("%s: %v, want %s in Europe/Berlin", name, p, want)
		}
	}
	if ev.Props.Get(ical.PropRecurrenceRule) != nil || ev.Props.Get(ical.PropExceptionDates) != nil {
		t.Errorf("the override recurs: %v", ev.Props)
	}
	if again := cancelled(series, &rid); again != ev || len(series.Children) != 2 {
		t.Errorf("a second cancellation of the instance made another override")
	}

	single := decodeICS(t, `BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:o-1
DTSTAMP:20260101T000000Z
DTSTART:20260701T090000Z
DTEND:20260701T100000Z
SUMMARY:once
END:VEVENT
END:VCALENDAR
`)
	if ev := cancelled(single, &rid); ev != nil || len(single.Children) != 1 {
		t.Errorf("an instance of a single event: %v", ev)
	}
}
