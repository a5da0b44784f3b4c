package queue

import (
	"testing"
	"time"
)

// The back-off doubles from RetryMin up to RetryMax.
func TestQueueBackoff(t *testing.T) {
	q := &Queue{opts: Options{RetryMin: 5 * time.Minute, RetryMax: time.Hour}}
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := q.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

// The memory of hosts without STARTTLS is bounded in size and time.
func TestPlainHostsBounded(t *testing.T) {
	p := newPlainHosts(3, time.Hour)
	t0 := time.Unix(1_000_000, 0)
	p.add("a:25", t0)
	p.add("b:25", t0.Add(time.Minute))
	p.add("c:25", t0.Add(2*time.Minute))
	p.add("d:25", t0.Add(3*time.Minute)) // full: a, closest to expiry, goes
	if p.len() != 3 || p.known("a:25", t0.Add(3*time.Minute)) || !p.known("d:25", t0.Add(3*time.Minute)) {
		t.Fatalf("after eviction: len %d", p.len())
	}
	later := t0.Add(time.Hour + 90*time.Second) // b expired, c and d not
	if p.known("b:25", later) || !p.known("c:25", later) {
		t.Fatal("expiry not applied")
	}
	if p.len() != 2 {
		t.Fatalf("expired entry kept: len %d", p.len())
	}
	much := t0.Add(3 * time.Hour) // everything expired: swept when full
	p.add("e:25", much)
	p.add("f:25", much)
	p.add("g:25", much)
	if p.len() != 3 || !p.known("e:25", much) || !p.known("g:25", much) {
		t.Fatalf("sweep: len %d", p.len())
	}
}
