package geo_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
)

// BenchmarkReplicationLag measures the time from a change on site a
// (a new user and its per-entry notice, Node.Changed) to its visibility
// on b and c, one change at a time; it reports p50 and p99.
func BenchmarkReplicationLag(b *testing.B) {
	sites := newSites(b, "a", "b", "c")
	a := sites["a"]
	for _, s := range sites {
		s.start()
	}
	lags := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		addr := fmt.Sprintf("lag%06d@a.example", i)
		if _, err := a.d.CreateUser(context.Background(), directory.User{Address: addr, DisplayName: "Lag"}, ""); err != nil {
			b.Fatal(err)
		}
		if err := a.node.Changed(context.Background(), addr); err != nil {
			b.Fatal(err)
		}
		for {
			if locatedAt(sites["b"].node, addr, "a") == nil && locatedAt(sites["c"].node, addr, "a") == nil {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		lags = append(lags, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
}
