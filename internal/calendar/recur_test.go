package calendar

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
)

// expandStarts lists "DTSTART/DTEND-or-DURATION/SUMMARY" of each expanded instance.
func expandStarts(t *testing.T, o *Object, from, to string) []string {
	t.Helper()
	cal, err := o.Expand(opt(from), opt(to), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cal.Children {
		s := c.Props.Get("DTSTART").Value
		if p := c.Props.Get("DTEND"); p != nil {
			s += "/" + p.Value
		}
		if p := c.Props.Get("SUMMARY"); p != nil {
			s += " " + p.Value
		}
		out = append(out, s)
	}
	var buf bytes.Buffer
	if len(cal.Children) > 0 {
		if err := ical.NewEncoder(&buf).Encode(cal); err != nil {
			t.Errorf("expansion does not encode: %v", err)
		}
	}
	return out
}

func wantStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s\n got %q\nwant %q", what, got, want)
	}
}

func TestWindowsTimeZoneAcrossDST(t *testing.T) {
	o := parseOrFail(t, winTZ+vevent("DTSTART;TZID=W. Europe Standard Time:20240325T090000\nDTEND;TZID=W. Europe Standard Time:20240325T100000\nRRULE:FREQ=WEEKLY;COUNT=3\n"))
	wantStrings(t, "weekly 09:00 in W. Europe across 31 March", expandStarts(t, o, "20240301T000000Z", "20240501T000000Z"),
		[]string{"20240325T080000Z/20240325T090000Z", "20240401T070000Z/20240401T080000Z", "20240408T070000Z/20240408T080000Z"})
	// October: back to +01:00 on the last Sunday.
	o = parseOrFail(t, winTZ+vevent("DTSTART;TZID=W. Europe Standard Time:20241026T120000\nRRULE:FREQ=DAILY;COUNT=2\n"))
	wantStrings(t, "across 27 October", expandStarts(t, o, "20241001T000000Z", "20241101T000000Z"),
		[]string{"20241026T100000Z", "20241027T110000Z"})
}

func TestGapAndOverlap(t *testing.T) {
	// RFC 5545 §3.3.5: 02:30 on 31 March 2024 does not exist in Berlin and
	// is read with the offset before the gap; 02:30 on 27 October occurs
	// twice and is the first.
	for _, tz := range []string{"Europe/Berlin", "W. Europe Standard Time"} {
		o := parseOrFail(t, winTZ+vevent("DTSTART;TZID="+tz+":20240331T023000\nRDATE;TZID="+tz+":20241027T023000\n"))
		wantStrings(t, tz, expandStarts(t, o, "20240101T000000Z", "20250101T000000Z"), []string{"20240331T013000Z", "20241027T003000Z"})
	}
}

func TestOverridesAndRanges(t *testing.T) {
	o := parseOrFail(t, vevent("DTSTART:20240301T100000Z\nDURATION:PT1H\nRRULE:FREQ=DAILY;COUNT=5\nSUMMARY:daily\nEXDATE:20240302T100000Z,20240304T100000Z\n")+
		vevent("RECURRENCE-ID:20240303T100000Z\nDTSTART:20240303T150000Z\nDURATION:PT2H\nSUMMARY:moved\n"))
	wantStrings(t, "EXDATE list and a moved instance", expandStarts(t, o, "", "20250101T000000Z"),
		[]string{"20240301T100000Z daily", "20240303T150000Z moved", "20240305T100000Z daily"})
	ok, err := o.Match(vcal(CompFilter{Name: "VEVENT", Start: utc("20240303T100000Z"), End: utc("20240303T110000Z")}), 100)
	if err != nil || ok {
		t.Errorf("the overridden instance's old slot matched: %v %v", ok, err)
	}

	o = parseOrFail(t, vevent("DTSTART:20240301T100000Z\nDURATION:PT1H\nRRULE:FREQ=DAILY;COUNT=5\nSUMMARY:daily\n")+
		vevent("RECURRENCE-ID;RANGE=THISANDFUTURE:20240303T100000Z\nDTSTART:20240303T140000Z\nDURATION:PT30M\nSUMMARY:later\n"))
	wantStrings(t, "THISANDFUTURE moves the rest of the series", expandStarts(t, o, "", "20250101T000000Z"),
		[]string{"20240301T100000Z daily", "20240302T100000Z daily", "20240303T140000Z later", "20240304T140000Z later", "20240305T140000Z later"})
	if _, e := o.Bounds(); !e.Equal(utc("20240305T143000Z")) {
		t.Errorf("bounds end %v, want the moved last instance's end", e)
	}

	o = parseOrFail(t, vevent("DTSTART:20240301T100000Z\nDTEND:20240301T110000Z\nRDATE;VALUE=PERIOD:20240310T100000Z/PT3H,20240311T080000Z/20240311T090000Z\nRDATE;VALUE=DATE-TIME:20240312T100000Z\n"))
	wantStrings(t, "RDATE periods and date-times", expandStarts(t, o, "", "20250101T000000Z"),
		[]string{"20240301T100000Z/20240301T110000Z", "20240310T100000Z/20240310T130000Z", "20240311T080000Z/20240311T090000Z", "20240312T100000Z/20240312T110000Z"})
}

func TestUnsynchronizedDTSTART(t *testing.T) {
	// DTSTART (a Wednesday) is the first instance and counts (RFC 5545 §3.3.10).
	o := parseOrFail(t, vevent("DTSTART:20240306T100000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3\n"))
	wantStrings(t, "COUNT with DTSTART off the rule", expandStarts(t, o, "", "20250101T000000Z"),
		[]string{"20240306T100000Z", "20240311T100000Z", "20240318T100000Z"})
	o = parseOrFail(t, vevent("DTSTART;VALUE=DATE:20240301\nRRULE:FREQ=DAILY;UNTIL=20240303\n"))
	wantStrings(t, "DATE UNTIL is inclusive", expandStarts(t, o, "", "20250101T000000Z"),
		[]string{"20240301", "20240302", "20240303"})
	o = parseOrFail(t, "BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:STANDARD\nDTSTART:19701025T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\nEND:STANDARD\nBEGIN:DAYLIGHT\nDTSTART:19700329T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\nEND:DAYLIGHT\nEND:VTIMEZONE\n"+
		vevent("DTSTART;TZID=Europe/Berlin:20240301T090000\nRRULE:FREQ=DAILY;UNTIL=20240303T080000Z\n"))
	wantStrings(t, "UTC UNTIL of a zoned series", expandStarts(t, o, "", "20250101T000000Z"),
		[]string{"20240301T080000Z", "20240302T080000Z", "20240303T080000Z"})
}

func TestFloatingAndAllDay(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	o := parseOrFail(t, vevent("DTSTART;VALUE=DATE:20240308\nDTEND;VALUE=DATE:20240309\nRRULE:FREQ=WEEKLY;COUNT=2\n"))
	wantStrings(t, "all-day stays DATE", expandStarts(t, o.InZone(ny), "", "20250101T000000Z"),
		[]string{"20240308/20240309", "20240315/20240316"})
	busy, err := o.InZone(ny).Busy(utc("20240301T000000Z"), utc("20240401T000000Z"), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []Period{{utc("20240308T050000Z"), utc("20240309T050000Z"), Busy}, {utc("20240315T040000Z"), utc("20240316T040000Z"), Busy}}
	if !slices.Equal(busy, want) {
		t.Errorf("all-day busy in New York across 10 March\n got %v\nwant %v", busy, want)
	}
	o = parseOrFail(t, vevent("DTSTART:20240301T090000\nDTEND:20240301T100000\n"))
	wantStrings(t, "floating in New York", expandStarts(t, o.InZone(ny), "", "20250101T000000Z"), []string{"20240301T140000Z/20240301T150000Z"})
	wantStrings(t, "floating in UTC", expandStarts(t, o, "", "20250101T000000Z"), []string{"20240301T090000Z/20240301T100000Z"})
	s, e := o.Bounds()
	if !s.Equal(utc("20240301T090000Z").Add(-14*time.Hour)) || !e.Equal(utc("20240301T100000Z").Add(14*time.Hour)) {
		t.Errorf("floating bounds %v..%v are not widened by 14h", s, e)
	}
}

func TestLimitsOnInstances(t *testing.T) {
	o := parseOrFail(t, vevent("DTSTART:20000101T100000Z\nDURATION:PT1H\nRRULE:FREQ=DAILY\n"))
	if _, e := o.Bounds(); !e.IsZero() {
		t.Errorf("unbounded RRULE has bounds end %v", e)
	}
	if _, err := o.Expand(utc("20260101T000000Z"), time.Time{}, 100); !errors.Is(err, ErrTooManyInstances) {
		t.Errorf("Expand to infinity: %v", err)
	}
	if _, err := o.Busy(utc("20260101T000000Z"), utc("20270101T000000Z"), 100); !errors.Is(err, ErrTooManyInstances) {
		t.Errorf("Busy over a year of a daily event with 100 instances: %v", err)
	}
	// A month in 2026 of a daily series from 2000 skips ahead: few instances.
	got := expandStarts(t, o, "20260301T000000Z", "20260304T000000Z")
	wantStrings(t, "skip ahead", got, []string{"20260301T100000Z", "20260302T100000Z", "20260303T100000Z"})
	ok, err := o.Match(vcal(CompFilter{Name: "VEVENT", Start: utc("20260301T000000Z"), End: utc("20260302T000000Z")}), 20)
	if err != nil || !ok {
		t.Errorf("Match in 2026 with 20 instances: %v %v", ok, err)
	}
	ok, err = o.Match(vcal(CompFilter{Name: "VEVENT", Start: utc("20300101T000000Z")}), 20)
	if err != nil || !ok {
		t.Errorf("open-ended Match stops at the first instance: %v %v", ok, err)
	}
	// A non-periodic rule is expanded from the start and runs out.
	o = parseOrFail(t, vevent("DTSTART:20000101T100000Z\nRRULE:FREQ=MONTHLY;BYMONTHDAY=1,15\n"))
	if _, err := o.Match(vcal(CompFilter{Name: "VEVENT", Start: utc("20260301T000000Z"), End: utc("20260302T000000Z")}), 50); !errors.Is(err, ErrTooManyInstances) {
		t.Errorf("MONTHLY from 2000 with 50 instances: %v", err)
	}

	long := vevent("DTSTART:20000101T100000Z\nDURATION:PT1H\nRRULE:FREQ=DAILY;COUNT=5000\n")
	p, err := Parse(ics(long), Limits{BoundsInstances: 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, e := p.Bounds(); !e.IsZero() {
		t.Errorf("COUNT beyond BoundsInstances: end %v, want unbounded", e)
	}
	p, err = Parse(ics(strings.Replace(long, "COUNT=5000", "UNTIL=20201231T100000Z", 1)), Limits{BoundsInstances: 100})
	if err != nil {
		t.Fatal(err)
	}
	if s, e := p.Bounds(); !s.Equal(utc("20000101T100000Z")) || e.Before(utc("20201231T110000Z")) || e.After(utc("20210201T000000Z")) {
		t.Errorf("UNTIL beyond BoundsInstances: %v..%v", s, e)
	}
	p, _ = Parse(ics(long), Limits{BoundsInstances: 10000})
	if _, e := p.Bounds(); !e.Equal(time.Date(2000, 1, 1, 11, 0, 0, 0, time.UTC).AddDate(0, 0, 4999)) {
		t.Errorf("COUNT=5000 bounds end %v", e)
	}
}

func TestAlarmOnRecurringInstances(t *testing.T) {
	o := parseOrFail(t, "BEGIN:VEVENT\nUID:a\nDTSTART:20240301T100000Z\nDURATION:PT1H\nRRULE:FREQ=WEEKLY;COUNT=4\n"+
		"BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15M\nEND:VALARM\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER;RELATED=END:P1D\nREPEAT:1\nDURATION:PT1H\nEND:VALARM\nEND:VEVENT\n")
	alarmIn := func(from, to string) bool {
		ok, err := o.Match(vcal(CompFilter{Name: "VEVENT", Comps: []CompFilter{{Name: "VALARM", Start: utc(from), End: utc(to)}}}), 100)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	cases := []struct {
		from, to string
		want     bool
	}{
		{"20240315T094500Z", "20240315T094600Z", true},  // third instance, 15 min before
		{"20240315T094600Z", "20240315T100000Z", false}, // between alarms
		{"20240316T120000Z", "20240316T120001Z", true},  // a day after the third's end, repeated an hour later
		{"20240329T094500Z", "20240329T094600Z", false}, // a fifth instance does not exist
	}
	for _, c := range cases {
		if got := alarmIn(c.from, c.to); got != c.want {
			t.Errorf("alarm in [%s, %s) = %v", c.from, c.to, got)
		}
	}
}

func TestFreeBusyReply(t *testing.T) {
	o := parseOrFail(t, vevent("DTSTART:20240301T100000Z\nDTEND:20240301T120000Z\n")+
		vevent("RECURRENCE-ID:20240302T100000Z\nDTSTART:20240302T100000Z\nDTEND:20240302T110000Z\nSTATUS:CANCELLED\n"))
	busy, err := o.Busy(utc("20240301T110000Z"), utc("20240305T000000Z"), 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Period{{utc("20240301T110000Z"), utc("20240301T120000Z"), Busy}}; !slices.Equal(busy, want) {
		t.Errorf("busy %v, want %v (clipped, cancelled override left out)", busy, want)
	}
	merged := MergeBusy([]Period{
		{utc("20240301T100000Z"), utc("20240301T110000Z"), Busy},
		{utc("20240301T090000Z"), utc("20240301T093000Z"), BusyTentative},
		{utc("20240301T110000Z"), utc("20240301T120000Z"), Busy},
		{utc("20240301T103000Z"), utc("20240301T104500Z"), Busy},
	})
	want := []Period{{utc("20240301T090000Z"), utc("20240301T093000Z"), BusyTentative}, {utc("20240301T100000Z"), utc("20240301T120000Z"), Busy}}
	if !slices.Equal(merged, want) {
		t.Errorf("merged %v, want %v", merged, want)
	}
	cal := FreeBusyCalendar(merged, FreeBusyInfo{From: utc("20240301T000000Z"), To: utc("20240302T000000Z"), Stamp: utc("20240229T000000Z"),
		UID: "fb-1", Organizer: "mailto:alice@example.com", Attendee: "mailto:bob@example.com"})
	var buf bytes.Buffer
	if err := ical.NewEncoder(&buf).Encode(cal); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"METHOD:REPLY", "ORGANIZER:mailto:alice@example.com", "ATTENDEE:mailto:bob@example.com", "UID:fb-1", "DTSTAMP:20240229T000000Z",
		"FREEBUSY:20240301T100000Z/20240301T120000Z", "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20240301T090000Z/20240301T093000Z"} {
		if !strings.Contains(buf.String(), line+"\r\n") {
			t.Errorf("reply lacks %q:\n%s", line, buf.String())
		}
	}
}

// winTZ is windowsVTimezone with LF line ends, for ics.
var winTZ = strings.ReplaceAll(windowsVTimezone, "\r\n", "\n")
