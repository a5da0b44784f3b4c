package main

import (
	"context"
	"testing"
	"time"
)

// TestRunOpsTimesExchanges: an operation's latency is the sum of the
// exchanges it reported (lap), not the time it took checking; without
// any exchange it is the operation's wall time. With one worker the
// phase's elapsed time is the sum of the latencies.
func TestRunOpsTimesExchanges(t *testing.T) {
	r := runOps(context.Background(), "x", 3, 1, 0, false, func(ctx context.Context, i int) error {
		lap(ctx, 2*time.Millisecond)
		lap(ctx, 3*time.Millisecond)
		time.Sleep(20 * time.Millisecond) // the client's checking
		return nil
	})
	if len(r.lat) != 3 {
		t.Fatalf("%d latencies, want 3", len(r.lat))
	}
	for _, d := range r.lat {
		if d != 5*time.Millisecond {
			t.Fatalf("latency %v, want the exchanges' 5ms", d)
		}
	}
	if r.elapsed != 15*time.Millisecond {
		t.Fatalf("elapsed %v, want 15ms", r.elapsed)
	}
	r = runOps(context.Background(), "y", 1, 1, 0, false, func(context.Context, int) error {
		time.Sleep(5 * time.Millisecond)
		return nil
	})
	if len(r.lat) != 1 || r.lat[0] < 5*time.Millisecond {
		t.Fatalf("latency without exchanges %v, want its wall time (>= 5ms)", r.lat)
	}
}
