package calendar

import (
	"testing"
	"time"
)

// typicalEvent is what Thunderbird stores for a weekly meeting: a
// VTIMEZONE, a weekly RRULE running since 2023, an EXDATE, one moved
// instance and a few attendees.
var typicalEvent = ics(`BEGIN:VTIMEZONE
TZID:Europe/Berlin
X-LIC-LOCATION:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
CREATED:20230102T090000Z
LAST-MODIFIED:20240102T090000Z
DTSTAMP:20240102T090000Z
UID:4d2c9e7a-weekly@example.com
SUMMARY:Team meeting
ORGANIZER;CN=Alice:mailto:alice@example.com
ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:bob@example.com
ATTENDEE;CN=Carol;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:carol@example.com
RRULE:FREQ=WEEKLY;BYDAY=TU
EXDATE;TZID=Europe/Berlin:20260310T100000
DTSTART;TZID=Europe/Berlin:20230103T100000
DTEND;TZID=Europe/Berlin:20230103T110000
LOCATION:Room 1
SEQUENCE:2
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER;VALUE=DURATION:-PT15M
DESCRIPTION:Default Mozilla Description
END:VALARM
END:VEVENT
BEGIN:VEVENT
DTSTAMP:20240102T090000Z
UID:4d2c9e7a-weekly@example.com
RECURRENCE-ID;TZID=Europe/Berlin:20260317T100000
SUMMARY:Team meeting (moved)
DTSTART;TZID=Europe/Berlin:20260318T140000
DTEND;TZID=Europe/Berlin:20260318T150000
SEQUENCE:3
END:VEVENT
`)

var benchMonth = vcal(CompFilter{Name: "VEVENT", Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)})

// BenchmarkParseMatchTimeRange is the calendar-query path for one object:
// parse it and match a one-month time-range; zonecache=yes shares its
// VTIMEZONE through a ZoneCache as dav's Handler does.
func BenchmarkParseMatchTimeRange(b *testing.B) {
	for _, cached := range []bool{false, true} {
		b.Run(map[bool]string{false: "zonecache=no", true: "zonecache=yes"}[cached], func(b *testing.B) {
			var lim Limits
			if cached {
				lim.Zones = NewZoneCache(0)
			}
			benchParseMatch(b, lim)
		})
	}
}

func benchParseMatch(b *testing.B, lim Limits) {
	b.ReportAllocs()
	for b.Loop() {
		o, err := Parse(typicalEvent, lim)
		if err != nil {
			b.Fatal(err)
		}
		if ok, err := o.Match(benchMonth, 1000); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkMatchTimeRange matches an already parsed object.
func BenchmarkMatchTimeRange(b *testing.B) {
	o, err := Parse(typicalEvent, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := o.Match(benchMonth, 1000); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkParseBounds is the PUT path: parse, validate, bound.
func BenchmarkParseBounds(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		o, err := Parse(typicalEvent, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if _, e := o.Bounds(); !e.IsZero() {
			b.Fatal("weekly without end is unbounded")
		}
	}
}

// BenchmarkBusyMonth is one user's share of a free/busy query.
func BenchmarkBusyMonth(b *testing.B) {
	o, err := Parse(typicalEvent, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	from, to := benchMonth.Comps[0].Start, benchMonth.Comps[0].End
	b.ReportAllocs()
	for b.Loop() {
		if ps, err := o.Busy(from, to, 1000); len(ps) != 4 || err != nil {
			b.Fatal(ps, err)
		}
	}
}
