package limitstore_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/directory/authlimit/limitstore"
	"github.com/mailyard/mailyard/internal/pgtest"
	"github.com/mailyard/mailyard/internal/testclock"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/memstore"
	"github.com/mailyard/mailyard/store/postgres"
)

// TestTwoNodesOnPostgres: two nodes (two stores on one PostgreSQL
// database, each with its limiter on limitstore). Guessers on both nodes
// at once, from addresses that already failed, get exactly the login's
// stranger budget between them; the user who logged in on node A is
// Trusted on node B throughout; a pair's failures spread over both
// nodes block it on both. Expired entries are swept from the database.
func TestTwoNodesOnPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.FreshDB(t)
	clk := testclock.New(time.Now())
	var nodes []*authlimit.Limiter
	var stores []*postgres.Store
	for range 2 {
		st, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
		fast := authlimit.Backoff{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, BlockAfter: 6}
		nodes = append(nodes, authlimit.New(authlimit.Policy{Now: clk.Now, Shared: limitstore.New(st),
			Pair: fast, Client: authlimit.Backoff{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, BlockAfter: 100},
			StrangerChecks: 5}))
	}
	const login = "alice@example.com"
	usual := netip.MustParseAddr("192.0.2.1")
	a, err := nodes[0].Begin(ctx, usual, login)
	if err != nil {
		t.Fatal(err)
	}
	a.Succeeded()

	// Eight guessing addresses, each failed once (their Fresh check).
	guessers := make([]netip.Addr, 8)
	for i := range guessers {
		guessers[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
		a, err := nodes[i%2].Begin(ctx, guessers[i], login)
		if err != nil || a.Class() != authlimit.Fresh {
			t.Fatalf("guesser %d first check: %v", i, err)
		}
		a.Failed()
	}
	// Then all of them at once on both nodes, while the user logs in.
	var checks, refused atomic.Int32
	var wg sync.WaitGroup
	for i, g := range guessers {
		for n := range nodes {
			wg.Go(func() {
				for range 10 {
					a, err := nodes[n].Begin(ctx, g, login)
					if errors.Is(err, authlimit.ErrRefused) {
						refused.Add(1)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					if a.Class() != authlimit.Stranger {
						t.Errorf("guesser %d: class %v, want stranger", i, a.Class())
					}
					checks.Add(1)
					a.Failed()
				}
			})
		}
	}
	for i := range 10 {
		a, err := nodes[i%2].Begin(ctx, usual, login)
		if err != nil || a.Class() != authlimit.Trusted {
			t.Fatalf("the user's login %d on node %d during the attack: %v, want Trusted", i, i%2, err)
		}
		a.Succeeded()
	}
	wg.Wait()
	if checks.Load() != 5 || refused.Load() == 0 {
		t.Fatalf("guessers on both nodes got %d checks (want the budget, 5), %d refusals", checks.Load(), refused.Load())
	}
	for n, l := range nodes {
		if e := l.Stats().SharedErrors; e != 0 {
			t.Fatalf("node %d: %d failed shared calls", n, e)
		}
	}

	// A pair's failures on both nodes block it on both.
	bob := netip.MustParseAddr("203.0.113.9")
	for i := range 6 {
		a, err := nodes[i%2].Begin(ctx, bob, "bob@example.com")
		if err != nil {
			t.Fatalf("failure %d: %v", i, err)
		}
		a.Failed()
		clk.Add(time.Millisecond)
	}
	for n, l := range nodes {
		_, err := l.Begin(ctx, bob, "bob@example.com")
		if re, ok := errors.AsType[*authlimit.RefusedError](err); !ok || re.Reason != authlimit.ReasonPairBlocked {
			t.Fatalf("node %d after 6 failures over both: %v, want login-blocked-for-client", n, err)
		}
	}

	count := func() int {
		recs, err := stores[1].ListRecords(ctx, limitstore.Namespace, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	before := count()
	clk.Add(2 * time.Hour) // past Window, the blocks and StrangerWindow; not TrustFor
	n, err := nodes[1].SweepShared(ctx)
	if err != nil || n == 0 || count() != before-n || count() != 1 {
		t.Fatalf("sweep: %d of %d deleted (%v), %d left; want only the user's trust", n, before, err, count())
	}
}

// TestEntries: an expired entry reads as absent and is replaced; fn's
// error writes nothing; a nil result deletes.
func TestEntries(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(memstore.Options{})
	s := limitstore.New(st)
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	set := func(v string, exp time.Time) {
		t.Helper()
		if err := s.UpdateShared(ctx, "k", now, func([]byte) ([]byte, time.Time, error) { return []byte(v), exp, nil }); err != nil {
			t.Fatal(err)
		}
	}
	set("a", now.Add(time.Minute))
	if v, err := s.GetShared(ctx, "k", now); err != nil || string(v) != "a" {
		t.Fatalf("get: %q %v", v, err)
	}
	if v, _ := s.GetShared(ctx, "k", now.Add(time.Minute)); v != nil {
		t.Fatalf("expired entry read as %q", v)
	}
	boom := errors.New("boom")
	err := s.UpdateShared(ctx, "k", now, func(cur []byte) ([]byte, time.Time, error) { return []byte("b"), now.Add(time.Hour), boom })
	if !errors.Is(err, boom) {
		t.Fatalf("fn's error: %v", err)
	}
	if v, _ := s.GetShared(ctx, "k", now); string(v) != "a" {
		t.Fatalf("after a failed update: %q", v)
	}
	later := now.Add(2 * time.Minute)
	err = s.UpdateShared(ctx, "k", later, func(cur []byte) ([]byte, time.Time, error) {
		if cur != nil {
			t.Errorf("fn got the expired value %q", cur)
		}
		return nil, time.Time{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetRecord(ctx, limitstore.Namespace, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("nil result did not delete: %v", err)
	}
}
