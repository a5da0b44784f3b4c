package lease_test

import (
	"errors"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/pgtest"
	"github.com/mailyard/mailyard/internal/testclock"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/lease"
	"github.com/mailyard/mailyard/store/memstore"
	"github.com/mailyard/mailyard/store/postgres"
)

const ns = "test.lease"

func put(t *testing.T, rs store.Records, key string, h lease.Holder) {
	t.Helper()
	if err := rs.UpdateRecords(t.Context(), func(tx store.RecordTx) error { return store.PutJSON(tx, ns, key, h, -1) }); err != nil {
		t.Fatal(err)
	}
}

// TestAcquire: one holder at a time; Release frees the lease at once and
// leaves no record; a dead process of this host is taken over at once, a
// holder on another host only when its lease expires.
func TestAcquire(t *testing.T) {
	ctx := t.Context()
	st := memstore.New(memstore.Options{})
	clk := testclock.New(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	o := lease.Options{Records: st, Namespace: ns, Key: "k", TTL: time.Minute, Now: clk.Now}

	l, err := lease.Acquire(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lease.Acquire(ctx, o)
	held, ok := errors.AsType[*lease.HeldError](err)
	if !ok || !errors.Is(err, lease.ErrHeld) || held.Holder.Token != l.Holder().Token || held.Holder.PID != os.Getpid() {
		t.Fatalf("second Acquire: %v, want ErrHeld naming the first holder", err)
	}
	other := o
	other.Key = "k2"
	l2, err := lease.Acquire(ctx, other)
	if err != nil {
		t.Fatalf("another key: %v", err)
	}
	l2.Release()
	l.Release()
	l.Release() // a second Release does nothing
	if _, err := st.GetRecord(ctx, ns, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record left after Release: %v", err)
	}
	l, err = lease.Acquire(ctx, o)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	l.Release()

	host, _ := os.Hostname()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	put(t, st, "k", lease.Holder{Token: "x", Host: host, PID: dead.Process.Pid, Since: clk.Now(), Expires: clk.Now().Add(time.Hour)})
	l, err = lease.Acquire(ctx, o)
	if err != nil {
		t.Fatalf("lease of a dead process of this host not taken over: %v", err)
	}
	l.Release()

	put(t, st, "k", lease.Holder{Token: "y", Host: host + ".other", PID: 1, Since: clk.Now(), Expires: clk.Now().Add(time.Minute)})
	if _, err := lease.Acquire(ctx, o); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("live lease of another host: %v, want ErrHeld", err)
	}
	clk.Add(time.Minute)
	l, err = lease.Acquire(ctx, o)
	if err != nil {
		t.Fatalf("expired lease not taken over: %v", err)
	}
	l.Release()
}

// TestLost: a holder whose lease another took over (it stalled past the
// expiry) sees Lost at its next renewal and does not delete the new
// holder's lease on Release.
func TestLost(t *testing.T) {
	st := memstore.New(memstore.Options{})
	o := lease.Options{Records: st, Namespace: ns, Key: "k", TTL: 200 * time.Millisecond}
	l, err := lease.Acquire(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
		t.Fatal("lost before anyone took it")
	case <-time.After(300 * time.Millisecond):
		// Renewed at least once: still held.
	}
	if _, err := lease.Acquire(t.Context(), o); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("renewed lease: %v, want ErrHeld", err)
	}
	put(t, st, "k", lease.Holder{Token: "other", Host: "elsewhere", PID: 1, Since: time.Now(), Expires: time.Now().Add(time.Hour)})
	select {
	case <-l.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("Lost not closed after a takeover")
	}
	l.Release()
	r, err := st.GetRecord(t.Context(), ns, "k")
	if err != nil {
		t.Fatalf("the new holder's lease was deleted: %v", err)
	}
	var h lease.Holder
	if err := store.DecodeJSON(r, &h); err != nil || h.Token != "other" {
		t.Fatalf("lease after Release: %+v %v", h, err)
	}
}

// TestNodes: two stores on one PostgreSQL database stand for two nodes.
// Workers on both compete for one lease: never two holders at once, and
// both nodes get it. A node that dies without releasing (its store
// closed, so no renewal) loses the lease when it expires, and the other
// node takes it then, not before.
func TestNodes(t *testing.T) {
	dsn := pgtest.FreshDB(t)
	ctx := t.Context()
	open := func() *postgres.Store {
		st, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	a := open()
	b := open()
	t.Cleanup(func() { b.Close() })

	var holders atomic.Int32
	var overlap atomic.Bool
	var got [2]atomic.Int32
	var wg sync.WaitGroup
	for i, st := range []*postgres.Store{a, b, a, b} {
		wg.Go(func() {
			for range 15 {
				l, err := lease.Acquire(ctx, lease.Options{Records: st, Namespace: ns, Key: "sync", TTL: time.Minute})
				if errors.Is(err, lease.ErrHeld) {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if holders.Add(1) > 1 {
					overlap.Store(true)
				}
				got[i%2].Add(1)
				time.Sleep(2 * time.Millisecond)
				holders.Add(-1)
				l.Release()
			}
		})
	}
	wg.Wait()
	if overlap.Load() || got[0].Load() == 0 || got[1].Load() == 0 {
		t.Fatalf("two holders at once: %v; held by node a %d times, node b %d times", overlap.Load(), got[0].Load(), got[1].Load())
	}

	const ttl = 2 * time.Second
	la, err := lease.Acquire(ctx, lease.Options{Records: a, Namespace: ns, Key: "sync", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	taken := la.Holder().Since
	a.Close() // node a dies: no renewal, no release
	select {
	case <-la.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("a node whose store is gone did not see its lease lost after the expiry")
	}
	var lb *lease.Lease
	deadline := time.Now().Add(30 * time.Second)
	for {
		lb, err = lease.Acquire(ctx, lease.Options{Records: b, Namespace: ns, Key: "sync", TTL: ttl})
		if err == nil {
			break
		}
		if !errors.Is(err, lease.ErrHeld) || time.Now().After(deadline) {
			t.Fatalf("node b taking the dead node's lease: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer lb.Release()
	if since := lb.Holder().Since.Sub(taken); since < ttl {
		t.Fatalf("node b took the lease %s after node a, before its TTL %s", since, ttl)
	}
	la.Release() // the dead node's late Release must not free b's lease
	if _, err := lease.Acquire(ctx, lease.Options{Records: b, Namespace: ns, Key: "sync", TTL: ttl}); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("after the dead node's Release, node b's lease: %v, want ErrHeld", err)
	}
}
