package calendar

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestZoneCacheSharesOnlyEqualDefinitions: a definition is parsed once
// and then reused; a different definition under the same TZID gets its
// own entry and its own offsets; the cache never holds more than its size.
func TestZoneCacheSharesOnlyEqualDefinitions(t *testing.T) {
	zones := NewZoneCache(2)
	lim := Limits{Zones: zones}
	start := func(data []byte) time.Time {
		t.Helper()
		o, err := Parse(data, lim)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := o.Bounds()
		return s
	}
	berlin := start(typicalEvent)
	if zones.Len() != 1 {
		t.Fatalf("%d entries after one object, want 1", zones.Len())
	}
	if again := start(typicalEvent); !again.Equal(berlin) || zones.Len() != 1 {
		t.Fatalf("second parse: start %v (want %v), %d entries", again, berlin, zones.Len())
	}
	// The same TZID with offsets an hour further east.
	shifted := strings.NewReplacer("TZOFFSETTO:+0100", "TZOFFSETTO:+0200", "TZOFFSETTO:+0200", "TZOFFSETTO:+0300",
		"TZOFFSETFROM:+0100", "TZOFFSETFROM:+0200", "TZOFFSETFROM:+0200", "TZOFFSETFROM:+0300").Replace(string(typicalEvent))
	if shifted == string(typicalEvent) {
		t.Fatal("the fixture has no offsets to shift")
	}
	if got := start([]byte(shifted)); !got.Equal(berlin.Add(-time.Hour)) {
		t.Fatalf("shifted zone starts %v, want %v", got, berlin.Add(-time.Hour))
	}
	if zones.Len() != 2 {
		t.Fatalf("%d entries, want 2", zones.Len())
	}
	third := strings.ReplaceAll(string(typicalEvent), "TZOFFSETTO:+0100", "TZOFFSETTO:+0130")
	start([]byte(third))
	if zones.Len() != 2 {
		t.Fatalf("%d entries in a cache of 2", zones.Len())
	}
}

// TestZoneCacheConcurrent: objects sharing one cache parse and expand
// concurrently with the answers of unshared parsing (run with -race).
func TestZoneCacheConcurrent(t *testing.T) {
	plain, err := Parse(typicalEvent, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	from, to := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	want, err := plain.Busy(from, to, 10000)
	if err != nil {
		t.Fatal(err)
	}
	zones := NewZoneCache(0)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			o, err := Parse(typicalEvent, Limits{Zones: zones})
			if err != nil {
				errs <- err.Error()
				return
			}
			// Different goroutines extend the shared zone from
			// different years first.
			if _, err := o.Busy(from.AddDate(3*(g%4), 0, 0), to, 10000); err != nil {
				errs <- err.Error()
				return
			}
			got, err := o.Busy(from, to, 10000)
			if err != nil {
				errs <- err.Error()
				return
			}
			if !slices.Equal(got, want) {
				errs <- "busy periods differ with a shared cache"
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
