package main

import (
	"testing"
	"time"
)

// The generated data is the oracle every server's answer is checked
// against; these pin it to hand-computed instances.
func TestEventOverlaps(t *testing.T) {
	d := func(m time.Month, day, h int) time.Time { return time.Date(2026, m, day, h, 0, 0, 0, time.UTC) }
	weekly3 := event{start: d(1, 5, 9), dur: time.Hour, count: 3}  // Jan 5, 12, 19
	forever := event{start: d(1, 5, 9), dur: time.Hour, count: -1} // every Monday
	single := event{start: d(1, 5, 9), dur: time.Hour}
	for _, tc := range []struct {
		name     string
		e        event
		from, to time.Time
		want     bool
	}{
		{"third instance", weekly3, d(1, 19, 0), d(1, 20, 0), true},
		{"after COUNT", weekly3, d(1, 26, 0), d(1, 27, 0), false},
		{"between instances", weekly3, d(1, 6, 0), d(1, 12, 0), false},
		{"end is exclusive", weekly3, d(1, 12, 10), d(1, 12, 11), false},
		{"start is exclusive", weekly3, d(1, 12, 8), d(1, 12, 9), false},
		{"unbounded, a year on", forever, d(12, 28, 0), d(12, 29, 0), true},
		{"unbounded, on a Tuesday", forever, d(12, 29, 0), d(12, 30, 0), false},
		{"single, inside", single, d(1, 5, 9).Add(30 * time.Minute), d(1, 5, 11), true},
		{"single, next week", single, d(1, 12, 0), d(1, 13, 0), false},
	} {
		if got := tc.e.overlaps(tc.from, tc.to); got != tc.want {
			t.Errorf("%s: overlaps = %v, want %v", tc.name, got, tc.want)
		}
	}
	set := map[int64]bool{}
	weekly3.busyHours(d(1, 10, 0), d(2, 1, 0), set)
	if len(set) != 2 || !set[d(1, 12, 9).Unix()] || !set[d(1, 19, 9).Unix()] {
		t.Errorf("busy hours Jan 10-31: %v, want Jan 12 and 19 at 09:00", set)
	}
}

func TestGenEventRecurringShare(t *testing.T) {
	rec, unbounded := 0, 0
	for i := range 10000 {
		e := genEvent("ev", i, 10000, 1000)
		if e.count != 0 {
			rec++
		}
		if e.count < 0 {
			unbounded++
		}
	}
	if rec != 1000 || unbounded != 200 {
		t.Fatalf("%d recurring (want 1000), %d unbounded (want 200)", rec, unbounded)
	}
}

func TestCheckBusy(t *testing.T) {
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	want := map[int64]bool{from.Add(9 * time.Hour).Unix(): true, from.Add(10 * time.Hour).Unix(): true, from.Add(33 * time.Hour).Unix(): true}
	ics := "BEGIN:VCALENDAR\r\nBEGIN:VFREEBUSY\r\nFREEBUSY;FBTYPE=BUSY:20260302T090000Z/PT2H,\r\n 20260303T090000Z/20260303T100000Z\r\nEND:VFREEBUSY\r\nEND:VCALENDAR\r\n"
	if err := checkBusy("a", ics, want); err != nil {
		t.Fatal(err)
	}
	delete(want, from.Add(33*time.Hour).Unix())
	if err := checkBusy("a", ics, want); err == nil {
		t.Fatal("an extra busy hour went unnoticed")
	}
	want[from.Add(50*time.Hour).Unix()] = true
	want[from.Add(33*time.Hour).Unix()] = true
	if err := checkBusy("a", ics, want); err == nil {
		t.Fatal("a missing busy hour went unnoticed")
	}
}
