package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

// sqlTracer keeps the text of every statement a pool sends, batched or
// not.
type sqlTracer struct {
	mu  sync.Mutex
	sql []string
}

func (c *sqlTracer) add(sql string) {
	c.mu.Lock()
	c.sql = append(c.sql, sql)
	c.mu.Unlock()
}

func (c *sqlTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.add(d.SQL)
	return ctx
}

func (c *sqlTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *sqlTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (c *sqlTracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.add(d.SQL)
}

func (c *sqlTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// subscribe subscribes to account on s until the test ends.
func subscribe(ctx context.Context, t *testing.T, s *Store, account string) store.Subscription {
	t.Helper()
	sub, err := s.Subscribe(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// The writes to mail send no NOTIFY from their transactions: PostgreSQL
// would commit them one at a time across the whole cluster, each
// through its WAL flush (notifier.go). Node B still hears of each of
// them, and of a subscription (no feed row), list change first.
func TestWritesNotifyAfterCommit(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	tr := &sqlTracer{}
	a := openTest(t, dsn, Options{Tracer: tr})
	b := openTest(t, dsn, Options{})
	if _, err := a.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.feed.listening:
	case <-time.After(10 * time.Second):
		t.Fatal("node B never started listening")
	}
	sub := subscribe(ctx, t, b, "u")
	tr.mu.Lock()
	tr.sql = nil
	tr.mu.Unlock()

	want := []store.ChangeKind{store.ChangeMessagesAdded}
	if _, err := a.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	m, err := a.Append(ctx, "u", "INBOX", strings.NewReader("Subject: y\r\n\r\ny\r\n"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, store.ChangeMessagesAdded)
	if _, err := a.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: m.UID, Stop: m.UID}}, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	want = append(want, store.ChangeFlags)
	if _, err := a.CreateMailbox(ctx, "u", "Copies", ""); err != nil {
		t.Fatal(err)
	}
	want = append(want, store.ChangeMailboxCreated)
	if _, err := a.Copy(ctx, "u", "INBOX", "Copies", store.UIDSet{{Start: 1, Stop: 1}}); err != nil {
		t.Fatal(err)
	}
	want = append(want, store.ChangeMessagesAdded)
	if _, err := a.Expunge(ctx, "u", "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	want = append(want, store.ChangeExpunged)
	for i, k := range want {
		if c := waitChange(t, sub, 5*time.Second); c.Kind != k {
			t.Fatalf("change %d on B: %+v, want kind %v", i, c, k)
		}
	}
	// The subscriber may have read rows whose notifications are still
	// on their way: let B's count settle first.
	nb := settled(t, b, "u")
	lb := b.ListChangeCount("u")
	if err := a.SetSubscribed(ctx, "u", "Copies", true); err != nil {
		t.Fatal(err)
	}
	waitCount(t, b, "u", nb, "subscription on A")
	if b.ListChangeCount("u") == lb {
		t.Fatal("B's count of u moved before its list count")
	}

	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.sql) == 0 {
		t.Fatal("the tracer saw no statement")
	}
	for _, q := range tr.sql {
		if l := strings.ToLower(q); strings.Contains(l, "notify") && !strings.Contains(l, "mailyard_records") {
			t.Errorf("a write's transaction notifies: %s", q)
		}
	}
}

// The notifier's connection, killed, is replaced: the next write on A
// still reaches B's subscriber promptly, and B's count moves.
func TestNotifierReconnects(t *testing.T) {
	ctx, a, b := twoNodes(t, "u")
	sub := subscribe(ctx, t, b, "u")
	append1 := func() uint32 {
		t.Helper()
		m, err := a.Append(ctx, "u", "INBOX", strings.NewReader("x"), store.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m.UID
	}
	uid := append1()
	if c := waitChange(t, sub, 5*time.Second); c.UIDs[0] != uid {
		t.Fatalf("change on B %+v, want UID %d", c, uid)
	}
	pid := a.notes.pid.Load()
	if pid == 0 {
		t.Fatal("A's notifier has no connection after a write")
	}
	var killed bool
	if err := b.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d): %v %v", pid, killed, err)
	}
	nb := b.ChangeCount("u", "INBOX")
	// Within reconcile's first check: the notifier sent it, not the
	// reconciling.
	uid = append1()
	if c := waitChange(t, sub, reconcileEvery/2); c.UIDs[0] != uid {
		t.Fatalf("change on B after the notifier's connection was killed: %+v, want UID %d", c, uid)
	}
	if b.ChangeCount("u", "INBOX") == nb {
		t.Fatal("B's subscriber heard of the Append before B's count moved")
	}
	if a.notes.pid.Load() == pid {
		t.Fatal("A's notifier still names the killed connection")
	}
}

// A node that died between a commit and its notification left a feed
// row no node was told of: B's feed finds it by reconciling, moves its
// count and wakes its subscriber, within two checks.
func TestFeedReconcilesLostNotification(t *testing.T) {
	ctx, a, b := twoNodes(t, "u")
	sub := subscribe(ctx, t, b, "u")
	// Once B's count settled, commit a change as a writer would, with
	// no notification.
	nb := settled(t, b, "u")
	lost := store.Change{Kind: store.ChangeMessagesAdded, Account: "u", Mailbox: "INBOX", UIDs: []uint32{7}}
	doc, err := json.Marshal(lost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.pool.Exec(ctx, `WITH u AS (UPDATE accounts SET feed_seq = feed_seq + 1 WHERE id = 'u' RETURNING feed_seq)
		INSERT INTO feed (account, seq, at, change) SELECT 'u', feed_seq, $1, $2 FROM u`, time.Now().UnixNano(), doc); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := waitChange(t, sub, 2*reconcileEvery+5*time.Second)
	t.Logf("lost notification made up for after %v", time.Since(start))
	if c.Kind != lost.Kind || len(c.UIDs) != 1 || c.UIDs[0] != 7 {
		t.Fatalf("change on B %+v, want %+v", c, lost)
	}
	if b.ChangeCount("u", "INBOX") == nb {
		t.Fatal("B's subscriber heard of the change before B's count moved")
	}
}
