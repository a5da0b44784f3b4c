package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCanonicalComponent(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "",
		"VEVENT":                  "VEVENT",
		"vTodo":                   "VTODO",
		"x-wr-thing":              "X-WR-THING",
		strings.Repeat("v", 64):   strings.Repeat("V", 64),
		"VAVAILABILITY":           "VAVAILABILITY",
		"X-MICROSOFT-CDO-BUSY-1A": "X-MICROSOFT-CDO-BUSY-1A",
	} {
		if got, err := CanonicalComponent(in); err != nil || got != want {
			t.Errorf("CanonicalComponent(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{" VEVENT", "VEVENT,VTODO", "V_EVENT", "VÉVÉNEMENT", "VEVENT\r\n", strings.Repeat("v", 65)} {
		if got, err := CanonicalComponent(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("CanonicalComponent(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestIndexBounds(t *testing.T) {
	d := func(y int, mo time.Month, dd, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, dd, h, mi, s, ns, time.UTC)
	}
	zero := time.Time{}
	paris := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		what               string
		start, end         time.Time
		wantStart, wantEnd time.Time
	}{
		{"unbounded both", zero, zero, zero, zero},
		{"whole seconds kept", d(2026, 3, 1, 9, 0, 0, 0), d(2026, 3, 1, 10, 0, 0, 0), d(2026, 3, 1, 9, 0, 0, 0), d(2026, 3, 1, 10, 0, 0, 0)},
		{"start down, end up", d(2026, 3, 1, 9, 0, 0, 999), d(2026, 3, 1, 10, 0, 0, 1), d(2026, 3, 1, 9, 0, 0, 0), d(2026, 3, 1, 10, 0, 1, 0)},
		{"zone to UTC", time.Date(2026, 3, 1, 10, 0, 0, 0, paris), zero, d(2026, 3, 1, 9, 0, 0, 0), zero},
		{"zero length", d(2026, 3, 1, 9, 0, 0, 0), d(2026, 3, 1, 9, 0, 0, 0), d(2026, 3, 1, 9, 0, 0, 0), d(2026, 3, 1, 9, 0, 0, 0)},
		{"before year 1", d(-3, 1, 1, 0, 0, 0, 0), d(-2, 1, 1, 0, 0, 0, 0), zero, d(1, 1, 1, 0, 0, 1, 0)},
		{"first second of year 1", d(1, 1, 1, 0, 0, 0, 500), d(1, 1, 1, 0, 0, 0, 600), zero, d(1, 1, 1, 0, 0, 1, 0)},
		{"after 9999", d(10000, 1, 1, 0, 0, 0, 0), d(10001, 1, 1, 0, 0, 0, 0), d(9999, 12, 31, 23, 59, 59, 0), zero},
		{"end in the last second of 9999", d(9999, 12, 31, 23, 0, 0, 0), d(9999, 12, 31, 23, 59, 59, 1), d(9999, 12, 31, 23, 0, 0, 0), zero},
	} {
		s, e, err := IndexBounds(tc.start, tc.end)
		if err != nil || !s.Equal(tc.wantStart) || !e.Equal(tc.wantEnd) || s.IsZero() != tc.wantStart.IsZero() || e.IsZero() != tc.wantEnd.IsZero() {
			t.Errorf("%s: IndexBounds(%v, %v) = %v, %v, %v; want %v, %v", tc.what, tc.start, tc.end, s, e, err, tc.wantStart, tc.wantEnd)
			continue
		}
		if (!s.IsZero() && s.Location() != time.UTC) || (!e.IsZero() && e.Location() != time.UTC) {
			t.Errorf("%s: bounds %v, %v not in UTC", tc.what, s, e)
		}
		// Widened, never narrowed.
		if (!tc.start.IsZero() && !s.IsZero() && s.After(tc.start)) || (!tc.end.IsZero() && !e.IsZero() && e.Before(tc.end)) {
			t.Errorf("%s: bounds %v, %v narrower than %v, %v", tc.what, s, e, tc.start, tc.end)
		}
	}
	if _, _, err := IndexBounds(d(2026, 3, 1, 9, 0, 0, 1), d(2026, 3, 1, 9, 0, 0, 0)); !errors.Is(err, ErrInvalid) {
		t.Errorf("End before Start: %v, want ErrInvalid", err)
	}
}

func TestCanonicalQuery(t *testing.T) {
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for limit, want := range map[int]int{-5: MaxObjectQueryLimit, 0: MaxObjectQueryLimit, 1: 1, 999: 999,
		MaxObjectQueryLimit: MaxObjectQueryLimit, MaxObjectQueryLimit + 1: MaxObjectQueryLimit} {
		q, err := CanonicalQuery(ObjectQuery{Limit: limit, Component: "vevent"})
		if err != nil || q.Limit != want || q.Component != "VEVENT" {
			t.Errorf("CanonicalQuery(Limit %d) = %+v, %v; want Limit %d, VEVENT", limit, q, err, want)
		}
	}
	for what, q := range map[string]ObjectQuery{
		"To before From": {From: from, To: from.Add(-time.Second)},
		"empty range":    {From: from, To: from},
		"bad component":  {Component: "VEVENT VTODO"},
	} {
		if _, err := CanonicalQuery(q); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", what, err)
		}
	}
}

func TestOverlaps(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 3, 1, h, 0, 0, 0, time.UTC) }
	zero := time.Time{}
	o := Object{Start: at(10), End: at(12)}
	for _, tc := range []struct {
		from, to time.Time
		want     bool
	}{
		{at(8), at(10), false},  // touches the start
		{at(12), at(14), false}, // touches the end
		{at(8), at(11), true},
		{at(11), at(14), true},
		{at(10), at(12), true},
		{zero, at(10), false},
		{zero, at(11), true},
		{at(12), zero, false},
		{at(11), zero, true},
		{zero, zero, true},
	} {
		if got := o.Overlaps(tc.from, tc.to); got != tc.want {
			t.Errorf("[%v, %v) overlaps [%v, %v): %v, want %v", o.Start, o.End, tc.from, tc.to, got, tc.want)
		}
	}
	if !(Object{}).Overlaps(at(1), at(2)) || !(Object{Start: at(10)}).Overlaps(at(20), at(21)) || !(Object{End: at(10)}).Overlaps(at(1), at(2)) {
		t.Error("unbounded objects must overlap every range on their unbounded side")
	}
	if (Object{Start: at(10)}).Overlaps(at(1), at(2)) || (Object{End: at(10)}).Overlaps(at(20), at(21)) {
		t.Error("half-bounded objects overlap a range beyond their bound")
	}
}
