package calendar

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConcurrentUse shares one parsed object, whose VTIMEZONE computes
// its transitions lazily, between goroutines in several floating zones.
func TestConcurrentUse(t *testing.T) {
	o, err := Parse(typicalEvent, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Go(func() {
			obj := o
			if i%2 == 1 {
				obj = o.InZone(ny)
			}
			// Each goroutine asks for a different year, so the zone's
			// transition table grows while others read it.
			from := time.Date(2024+i, 3, 1, 0, 0, 0, 0, time.UTC)
			to := from.AddDate(0, 1, 0)
			ok, err := obj.Match(vcal(CompFilter{Name: "VEVENT", Start: from, End: to}), 10000)
			if err != nil || !ok {
				errs <- fmt.Errorf("Match in %d: %v %v", from.Year(), ok, err)
				return
			}
			if _, err := obj.Busy(from, to, 10000); err != nil {
				errs <- err
				return
			}
			if _, err := obj.Expand(from, to, 10000); err != nil {
				errs <- err
				return
			}
			obj.Bounds()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}
}
