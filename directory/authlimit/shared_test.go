package authlimit

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/testclock"
)

// memShared is Shared in memory, for the tests of this package
// (limitstore is tested on the real stores).
type memShared struct {
	mu sync.Mutex
	m  map[string]memEntry
}

type memEntry struct {
	v []byte
	e time.Time
}

func newMemShared() *memShared { return &memShared{m: map[string]memEntry{}} }

func (s *memShared) GetShared(_ context.Context, key string, now time.Time) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; ok && now.Before(e.e) {
		return e.v, nil
	}
	return nil, nil
}

func (s *memShared) UpdateShared(_ context.Context, key string, now time.Time, fn func([]byte) ([]byte, time.Time, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur []byte
	if e, ok := s.m[key]; ok && now.Before(e.e) {
		cur = e.v
	}
	next, exp, err := fn(cur)
	if err != nil {
		return err
	}
	if next == nil {
		delete(s.m, key)
	} else {
		s.m[key] = memEntry{next, exp}
	}
	return nil
}

func (s *memShared) SweepShared(_ context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, e := range s.m {
		if !now.Before(e.e) {
			delete(s.m, k)
			n++
		}
	}
	return n, nil
}

func (s *memShared) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// TestSharedAcrossNodes: a pair's failures on node A count on node B
// and block there; the user who logged in on A is Trusted on B; a
// login's stranger budget is one for both nodes; SweepShared removes
// what expired and nothing else.
func TestSharedAcrossNodes(t *testing.T) {
	clk := testclock.New(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	sh := newMemShared()
	fast := Backoff{BaseDelay: time.Second, MaxDelay: time.Second, BlockAfter: 4}
	pol := Policy{Now: clk.Now, Shared: sh, Pair: fast, Client: Backoff{BaseDelay: time.Second, MaxDelay: time.Second, BlockAfter: 50}, StrangerChecks: 3}
	nodes := []*Limiter{New(pol), New(pol)}
	ctx := context.Background()
	guesser := netip.MustParseAddr("198.51.100.7")
	fail := func(n int, ip netip.Addr, login string) error {
		a, err := nodes[n].Begin(ctx, ip, login)
		if err != nil {
			return err
		}
		clk.Add(a.Failed())
		return nil
	}

	// Four failures alternating between the nodes block the pair on both.
	for i := range 4 {
		if err := fail(i%2, guesser, "bob@example.com"); err != nil {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	for n := range nodes {
		_, err := nodes[n].Begin(ctx, guesser, "bob@example.com")
		if re, ok := errors.AsType[*RefusedError](err); !ok || re.Reason != ReasonPairBlocked {
			t.Fatalf("node %d after 4 failures spread over both: %v, want login-blocked-for-client", n, err)
		}
	}

	// The user logs in on node A; on node B they are Trusted.
	usual := netip.MustParseAddr("192.0.2.10")
	a, err := nodes[0].Begin(ctx, usual, "carol@example.com")
	if err != nil || a.Class() != Fresh {
		t.Fatalf("first login: %v class %v", err, a.Class())
	}
	a.Succeeded()
	a, err = nodes[1].Begin(ctx, usual, "carol@example.com")
	if err != nil || a.Class() != Trusted {
		t.Fatalf("on the other node: %v, class %v, want Trusted", err, a)
	}
	a.Succeeded()

	// Strangers (addresses with a failure) share one budget of 3.
	strangers := func() uint64 { return nodes[0].Stats().Checks[Stranger] + nodes[1].Stats().Checks[Stranger] }
	fresh := func() uint64 { return nodes[0].Stats().Checks[Fresh] + nodes[1].Stats().Checks[Fresh] }
	s0, f0 := strangers(), fresh()
	var checks int
	for i := range 12 {
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 4)})
		a, err := nodes[i%2].Begin(ctx, ip, "carol@example.com")
		if err != nil {
			if !errors.Is(err, ErrRefused) {
				t.Fatal(err)
			}
			continue
		}
		checks++
		clk.Add(a.Failed())
	}
	if got := strangers() - s0; got != 3 || checks != 3+4 {
		t.Fatalf("stranger checks over both nodes %d, want the budget 3 (checks %d, want 7)", got, checks)
	}
	if got := fresh() - f0; got != 4 {
		t.Fatalf("fresh checks %d, want 4 (one per new address)", got)
	}
	a, err = nodes[1].Begin(ctx, usual, "carol@example.com")
	if err != nil || a.Class() != Trusted {
		t.Fatalf("the user during the attack: %v, want Trusted", err)
	}
	a.Succeeded()

	before := sh.len()
	if n, err := nodes[0].SweepShared(ctx); err != nil || n != 0 {
		t.Fatalf("sweep with nothing expired: %d, %v", n, err)
	}
	clk.Add(2 * time.Hour) // past Window and StrangerWindow, not TrustFor
	n, err := nodes[0].SweepShared(ctx)
	if err != nil || n == 0 || sh.len() != before-n || sh.len() == 0 {
		t.Fatalf("sweep after 2h: deleted %d of %d (%v), %d left; the trust must stay", n, before, err, sh.len())
	}
	a, err = nodes[0].Begin(ctx, usual, "carol@example.com")
	if err != nil || a.Class() != Trusted {
		t.Fatalf("after the sweep: %v, want Trusted", err)
	}
	a.Abandon()
}
