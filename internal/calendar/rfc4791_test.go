package calendar

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/mailyard/mailyard/internal/textmatch"
)

// appendixB parses the calendar collection of RFC 4791 Appendix B.
func appendixB(t testing.TB) map[string]*Object {
	t.Helper()
	files, err := filepath.Glob("testdata/rfc4791/*.ics")
	if err != nil || len(files) != 8 {
		t.Fatalf("appendix B files: %v %v", files, err)
	}
	objs := map[string]*Object{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		o, err := Parse(data, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		objs[strings.TrimSuffix(filepath.Base(f), ".ics")] = o
	}
	return objs
}

func utc(s string) time.Time {
	t, err := time.Parse("20060102T150405Z", s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustMatcher(t testing.TB, text, collation string, negate bool) *textmatch.Matcher {
	t.Helper()
	m, err := textmatch.New(text, collation, "", negate)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func query(t *testing.T, objs map[string]*Object, f CompFilter) []string {
	t.Helper()
	var got []string
	for name, o := range objs {
		ok, err := o.Match(f, 1000)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ok {
			got = append(got, name)
		}
	}
	sort.Strings(got)
	return got
}

func vcal(comps ...CompFilter) CompFilter { return CompFilter{Name: "VCALENDAR", Comps: comps} }

// TestRFC4791Queries runs the calendar-query examples of RFC 4791 §7.8
// on the Appendix B collection and expects the objects the RFC returns.
func TestRFC4791Queries(t *testing.T) {
	objs := appendixB(t)
	tests := []struct {
		name   string
		filter CompFilter
		want   []string
	}{
		{"7.8.2 events in a time range", vcal(CompFilter{Name: "VEVENT", Start: utc("20060104T000000Z"), End: utc("20060105T000000Z")}),
			[]string{"abcd2", "abcd3"}},
		{"7.8.3 expanded range", vcal(CompFilter{Name: "VEVENT", Start: utc("20060103T000000Z"), End: utc("20060105T000000Z")}),
			[]string{"abcd2", "abcd3"}},
		{"7.8.4 free busy in range", vcal(CompFilter{Name: "VFREEBUSY", Start: utc("20060102T000000Z"), End: utc("20060103T000000Z")}),
			[]string{"abcd8"}},
		{"7.8.5 todos with an alarm in range", vcal(CompFilter{Name: "VTODO", Comps: []CompFilter{{Name: "VALARM", Start: utc("20060106T100000Z"), End: utc("20060107T100000Z")}}}),
			[]string{"abcd5"}},
		{"7.8.6 event by UID", vcal(CompFilter{Name: "VEVENT", Props: []PropFilter{{Name: "UID", TextMatch: mustMatcher(t, "DC6C50A017428C5216A2F1CD@example.com", "i;octet", false)}}}),
			[]string{"abcd3"}},
		{"7.8.7 attendee needs action", vcal(CompFilter{Name: "VEVENT", Props: []PropFilter{{Name: "ATTENDEE",
			TextMatch: mustMatcher(t, "mailto:lisa@example.com", "i;ascii-casemap", false),
			Params:    []ParamFilter{{Name: "PARTSTAT", TextMatch: mustMatcher(t, "NEEDS-ACTION", "i;ascii-casemap", false)}}}}}),
			[]string{"abcd3"}},
		{"7.8.8 all events", vcal(CompFilter{Name: "VEVENT"}), []string{"abcd1", "abcd2", "abcd3"}},
		{"7.8.9 incomplete todos", vcal(CompFilter{Name: "VTODO", Props: []PropFilter{
			{Name: "COMPLETED", IsNotDefined: true},
			{Name: "STATUS", TextMatch: mustMatcher(t, "CANCELLED", "", true)}}}),
			[]string{"abcd4", "abcd5"}},
		{"no VEVENT", vcal(CompFilter{Name: "VEVENT", IsNotDefined: true}), []string{"abcd4", "abcd5", "abcd6", "abcd7", "abcd8"}},
		{"alarm not defined", vcal(CompFilter{Name: "VTODO", Comps: []CompFilter{{Name: "VALARM", IsNotDefined: true}}}), []string{"abcd6", "abcd7"}},
		{"summary param not defined", vcal(CompFilter{Name: "VEVENT", Props: []PropFilter{{Name: "ATTENDEE", Params: []ParamFilter{{Name: "ROLE", IsNotDefined: true}}}}}), []string{"abcd3"}},
		{"prop time-range on DTSTAMP", vcal(CompFilter{Name: "VEVENT", Props: []PropFilter{{Name: "DTSTAMP", Start: utc("20060206T001200Z"), End: utc("20060206T001300Z")}}}), []string{"abcd3"}},
		{"timezone comp-filter", vcal(CompFilter{Name: "VTIMEZONE", Props: []PropFilter{{Name: "TZID", TextMatch: mustMatcher(t, "eastern", "", false)}}}), []string{"abcd1", "abcd2", "abcd3", "abcd5"}},
		{"calendar prop-filter", CompFilter{Name: "VCALENDAR", Props: []PropFilter{{Name: "PRODID", TextMatch: mustMatcher(t, "Example Corp", "", false)}}}, []string{"abcd1", "abcd2", "abcd3", "abcd4", "abcd5", "abcd6", "abcd7", "abcd8"}},
		{"override's summary in range", vcal(CompFilter{Name: "VEVENT", Start: utc("20060106T000000Z"), End: utc("20060107T000000Z"),
			Props: []PropFilter{{Name: "SUMMARY", TextMatch: mustMatcher(t, "bis bis", "", false)}}}), []string{"abcd2"}},
		{"override's summary out of its range", vcal(CompFilter{Name: "VEVENT", Start: utc("20060105T000000Z"), End: utc("20060106T000000Z"),
			Props: []PropFilter{{Name: "SUMMARY", TextMatch: mustMatcher(t, "bis bis", "", false)}}}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := query(t, objs, tc.filter); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRFC4791Expand is RFC 4791 §7.8.3: abcd2 expanded into two
// instances in UTC with RECURRENCE-IDs, abcd3 into itself in UTC.
func TestRFC4791Expand(t *testing.T) {
	objs := appendixB(t)
	from, to := utc("20060103T000000Z"), utc("20060105T000000Z")
	cal, err := objs["abcd2"].Expand(from, to, 100)
	if err != nil {
		t.Fatal(err)
	}
	type inst struct{ start, rid, summary string }
	var got []inst
	for _, c := range cal.Children {
		if c.Name == ical.CompTimezone {
			t.Fatal("expanded calendar has a VTIMEZONE")
		}
		for _, p := range []string{"RRULE", "RDATE", "EXDATE"} {
			if c.Props.Get(p) != nil {
				t.Errorf("expanded instance has %s", p)
			}
		}
		got = append(got, inst{c.Props.Get("DTSTART").Value, c.Props.Get("RECURRENCE-ID").Value, c.Props.Get("SUMMARY").Value})
		if c.Props.Get("DTSTART").Params.Get("TZID") != "" {
			t.Error("DTSTART kept its TZID")
		}
	}
	want := []inst{{"20060103T170000Z", "20060103T170000Z", "Event #2"}, {"20060104T190000Z", "20060104T170000Z", "Event #2 bis"}}
	if !slices.Equal(got, want) {
		t.Errorf("abcd2 expanded to %v, want %v", got, want)
	}
	var buf bytes.Buffer
	if err := ical.NewEncoder(&buf).Encode(cal); err != nil {
		t.Fatalf("go-ical cannot encode the expansion: %v", err)
	}

	cal, err = objs["abcd3"].Expand(from, to, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(cal.Children) != 1 || cal.Children[0].Props.Get("DTSTART").Value != "20060104T150000Z" || cal.Children[0].Props.Get("RECURRENCE-ID") != nil {
		t.Errorf("abcd3 expanded to %+v", cal.Children)
	}
	cal, err = objs["abcd1"].Expand(from, to, 100)
	if err != nil || len(cal.Children) != 0 {
		t.Errorf("abcd1 is outside the range, got %v %v", cal, err)
	}
}

// TestRFC4791FreeBusy is RFC 4791 §7.10's free-busy-query over the
// Appendix B collection.
func TestRFC4791FreeBusy(t *testing.T) {
	objs := appendixB(t)
	from, to := utc("20060104T140000Z"), utc("20060105T220000Z")
	var all []Period
	for name, o := range objs {
		ps, err := o.Busy(from, to, 1000)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		all = append(all, ps...)
	}
	got := MergeBusy(all)
	want := []Period{
		{utc("20060104T150000Z"), utc("20060104T160000Z"), BusyTentative},
		{utc("20060104T190000Z"), utc("20060104T200000Z"), Busy},
		{utc("20060105T100000Z"), utc("20060105T120000Z"), BusyUnavailable},
		{utc("20060105T170000Z"), utc("20060105T180000Z"), Busy},
	}
	if !slices.Equal(got, want) {
		t.Errorf("busy\n got %v\nwant %v", got, want)
	}
	cal := FreeBusyCalendar(got, FreeBusyInfo{From: from, To: to, Stamp: utc("20060206T000000Z")})
	var buf bytes.Buffer
	if err := ical.NewEncoder(&buf).Encode(cal); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"FREEBUSY;FBTYPE=BUSY-TENTATIVE:20060104T150000Z/20060104T160000Z",
		"FREEBUSY:20060104T190000Z/20060104T200000Z",
		"FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20060105T100000Z/20060105T120000Z",
		"DTSTART:20060104T140000Z", "DTEND:20060105T220000Z",
	} {
		if !strings.Contains(buf.String(), line+"\r\n") {
			t.Errorf("reply lacks %q:\n%s", line, buf.String())
		}
	}
	if _, err := Parse(bytes.ReplaceAll(buf.Bytes(), []byte("X"), nil), Limits{}); err != nil {
		t.Errorf("the reply does not parse back: %v", err)
	}
}

func TestAppendixBBounds(t *testing.T) {
	objs := appendixB(t)
	tests := map[string][2]string{
		"abcd1": {"20060102T150000Z", "20060102T160000Z"},
		"abcd2": {"20060102T170000Z", "20060106T200000Z"},
		"abcd8": {"20050531T230000Z", "20060108T000001Z"},
	}
	for name, want := range tests {
		s, e := objs[name].Bounds()
		if !s.Equal(utc(want[0])) || !e.Equal(utc(want[1])) {
			t.Errorf("%s: bounds %v..%v, want %v..%v", name, s, e, want[0], want[1])
		}
	}
	// A VTODO with only DUE (a DATE, floating) is bounded around its day.
	s, e := objs["abcd4"].Bounds()
	due := utc("20060104T000000Z")
	if s.After(due.Add(-time.Second)) || e.Before(due) || s.IsZero() || e.IsZero() {
		t.Errorf("abcd4 bounds %v..%v do not hold DUE %v", s, e, due)
	}
}
