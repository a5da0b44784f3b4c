package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

// commitTracer counts the COMMITs a pool sends, alone or in a batch,
// the statements that lock an account's row alone (a pipelined write's
// first read), those that lock a mailbox's, and the reads of feed rows.
type commitTracer struct{ commits, accountLocks, boxLocks, feedReads atomic.Int64 }

func (c *commitTracer) count(sql string) {
	switch sql {
	case "COMMIT":
		c.commits.Add(1)
	case accountLockSQL:
		c.accountLocks.Add(1)
	case lockedBoxSQL, lockedHeldSQL:
		c.boxLocks.Add(1)
	case feedReadSQL:
		c.feedReads.Add(1)
	}
}

func (c *commitTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.count(d.SQL)
	return ctx
}
func (c *commitTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *commitTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (c *commitTracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.count(d.SQL)
}
func (c *commitTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// queuedDeliveries is how many Deliver calls wait for a transaction of
// their group on s.
func queuedDeliveries(s *Store) int { return s.deliveries.queued() }

// Deliveries to one account that arrive while one of them waits for the
// account's row lock share the next transaction: n deliveries cost two
// commits, not n, every one gets its own UID, and one refused for its
// quota leaves the others of its group stored.
func TestDeliverGroupCommit(t *testing.T) {
	ctx := ctxFor(t)
	dsn := freshDB(t)
	tr := &commitTracer{}
	s := openTest(t, dsn, Options{Tracer: tr})
	const n = 12
	// One message is there already; the quota admits n-1 more, so the
	// last of the n deliveries is over it.
	if _, err := s.CreateAccount(ctx, "u", store.Quota{MaxMessages: n}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, strings.NewReader("Subject: 0\r\n\r\nfirst\r\n")); err != nil {
		t.Fatal(err)
	}
	b := newBlocker(t, ctx, dsn)
	b.lock(ctx, `SELECT 1 FROM accounts WHERE id = 'u' FOR UPDATE`)
	before := tr.commits.Load()
	type result struct {
		i   int
		uid uint32
		err error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	deliver := func(i int) {
		defer wg.Done()
		out, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}},
			strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)))
		r := result{i: i, err: err}
		if err == nil {
			r.uid = out[0].UID
		}
		results <- r
	}
	wg.Add(1)
	go deliver(1)
	b.waitFor(ctx, 1) // the first holds its group's turn, waiting for the lock
	for i := 2; i <= n; i++ {
		wg.Add(1)
		go deliver(i)
	}
	deadline := time.Now().Add(30 * time.Second)
	for queuedDeliveries(s) < n-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries queued behind the first, want %d", queuedDeliveries(s), n-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.release()
	wg.Wait()
	close(results)
	if c := tr.commits.Load() - before; c != 2 {
		t.Errorf("%d commits for %d deliveries queued behind one, want 2 (the first alone, then the rest together)", c, n)
	}
	var uids []uint32
	refused := 0
	for r := range results {
		var qe *store.QuotaError
		switch {
		case errors.As(r.err, &qe):
			refused++
		case r.err != nil:
			t.Errorf("delivery %d: %v", r.i, r.err)
		default:
			uids = append(uids, r.uid)
		}
	}
	if refused != 1 || len(uids) != n-1 {
		t.Fatalf("%d stored and %d refused for quota, want %d and 1", len(uids), refused, n-1)
	}
	slices.Sort(uids)
	for i, u := range uids {
		if u != uint32(i+2) {
			t.Fatalf("UIDs %v, want 2..%d once each", uids, n)
		}
	}
	msgs, err := s.ListMessages(ctx, "u", "INBOX", store.UIDSet{{Start: 1, Stop: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n {
		t.Fatalf("%d messages listed, want %d", len(msgs), n)
	}
	mb, err := s.Mailbox(ctx, "u", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if mb.UIDNext != uint32(n+1) || mb.HighestModSeq < uint64(n) {
		t.Fatalf("mailbox after the group: UIDNEXT %d, HIGHESTMODSEQ %d; want %d and at least %d", mb.UIDNext, mb.HighestModSeq, n+1, n)
	}
	if u, _, err := s.Usage(ctx, "u"); err != nil || u.Messages != int64(n) {
		t.Fatalf("usage %+v (%v), want %d messages", u, err, n)
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
}

// A caller whose context ends while it is queued leaves the queue with
// the context's error and stores nothing; the others are not held up.
func TestDeliverGroupCancelledWhileQueued(t *testing.T) {
	ctx := ctxFor(t)
	dsn := freshDB(t)
	s := openTest(t, dsn, Options{})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	b := newBlocker(t, ctx, dsn)
	b.lock(ctx, `SELECT 1 FROM accounts WHERE id = 'u' FOR UPDATE`)
	one := store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}
	first := make(chan error, 1)
	go func() {
		_, err := s.Deliver(ctx, one, strings.NewReader("Subject: 1\r\n\r\n1\r\n"))
		first <- err
	}()
	b.waitFor(ctx, 1)
	cctx, cancel := context.WithCancel(ctx)
	second := make(chan error, 1)
	go func() {
		_, err := s.Deliver(cctx, one, strings.NewReader("Subject: 2\r\n\r\n2\r\n"))
		second <- err
	}()
	for queuedDeliveries(s) < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled queued delivery: %v, want context.Canceled", err)
	}
	if q := queuedDeliveries(s); q != 0 {
		t.Fatalf("%d deliveries still queued after the cancelled one left", q)
	}
	b.release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	msgs, err := s.ListMessages(ctx, "u", "INBOX", store.UIDSet{{Start: 1, Stop: 0}})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%d messages (%v), want the first delivery's only", len(msgs), err)
	}
}
