package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/store"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Two nodes starting at once on an empty database: the advisory lock
// lets one migrate while the other waits and then finds the schema
// current, so both open and each migration ran once.
func TestMigrateConcurrently(t *testing.T) {
	dsn := freshDB(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), dsn, Options{})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctxFor(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, maxV int
	if err := conn.QueryRow(ctxFor(t), `SELECT count(*), max(version) FROM mailyard_schema`).Scan(&rows, &maxV); err != nil {
		t.Fatal(err)
	}
	if rows != SchemaVersion() || maxV != SchemaVersion() {
		t.Fatalf("schema rows %d, max version %d; want %d of each (each migration once)", rows, maxV, SchemaVersion())
	}
}

// A database migrated by a newer release is refused with a clear error,
// and left as it is.
func TestSchemaTooNew(t *testing.T) {
	dsn := freshDB(t)
	s := openTest(t, dsn, Options{})
	newer := SchemaVersion() + 1
	if _, err := s.pool.Exec(ctxFor(t), `INSERT INTO mailyard_schema (version) VALUES ($1)`, newer); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(context.Background(), dsn, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open on a version %d schema: %v, want ErrSchemaTooNew", newer, err)
	}
	if want := fmt.Sprintf("database at version %d, binary at %d", newer, SchemaVersion()); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

// twoNodes opens two Stores on a fresh database, creates account on
// the first and waits until the second listens to the change feed.
func twoNodes(t *testing.T, account string) (context.Context, *Store, *Store) {
	t.Helper()
	dsn := freshDB(t)
	ctx := ctxFor(t)
	a := openTest(t, dsn, Options{})
	b := openTest(t, dsn, Options{})
	if _, err := a.CreateAccount(ctx, account, store.Quota{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.feed.listening:
	case <-time.After(10 * time.Second):
		t.Fatal("node B never started listening")
	}
	return ctx, a, b
}

// waitChange returns the next change on sub, or fails after d.
func waitChange(t *testing.T, sub store.Subscription, d time.Duration) store.Change {
	t.Helper()
	select {
	case c, ok := <-sub.C():
		if !ok {
			t.Fatal("subscription closed")
		}
		return c
	case <-time.After(d):
		t.Fatalf("no change within %v", d)
	}
	return store.Change{}
}

// A subscriber on node B sees a delivery made on node A within a
// second; after B's LISTEN connection is killed, what A commits
// meanwhile still reaches it, in order, once B has reconnected.
func TestFeedAcrossNodes(t *testing.T) {
	ctx, a, b := twoNodes(t, "u")
	sub, err := b.Subscribe(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	deliver := func(body string) store.Delivered {
		t.Helper()
		d, err := a.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return d[0]
	}
	start := time.Now()
	d1 := deliver("one")
	c := waitChange(t, sub, time.Second)
	t.Logf("delivery on A seen on B after %v", time.Since(start))
	if c.Kind != store.ChangeMessagesAdded || c.Mailbox != "INBOX" || len(c.UIDs) != 1 || c.UIDs[0] != d1.UID {
		t.Fatalf("change on B: %+v, want UID %d added to INBOX", c, d1.UID)
	}

	// Kill B's listening connection, and commit on A while it is away.
	pid := b.feed.listenPID.Load()
	var killed bool
	if err := a.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d): %v %v", pid, killed, err)
	}
	d2 := deliver("two")
	d3 := deliver("three")
	for _, want := range []uint32{d2.UID, d3.UID} {
		c := waitChange(t, sub, 10*time.Second)
		if c.Kind != store.ChangeMessagesAdded || c.UIDs[0] != want {
			t.Fatalf("after reconnect: %+v, want UID %d added", c, want)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.feed.listenPID.Load() == pid {
		if time.Now().After(deadline) {
			t.Fatal("B's listener did not reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And it listens again: a new delivery arrives promptly.
	d4 := deliver("four")
	if c := waitChange(t, sub, 5*time.Second); c.UIDs[0] != d4.UID {
		t.Fatalf("after reconnect: %+v, want UID %d", c, d4.UID)
	}
	// Both nodes see the same mailbox state.
	ma, _ := a.Mailbox(ctx, "u", "INBOX")
	mb, _ := b.Mailbox(ctx, "u", "INBOX")
	if ma != mb || ma.HighestModSeq == 0 {
		t.Fatalf("nodes disagree: A %+v, B %+v", ma, mb)
	}
}

// Two nodes claiming one queue at once never hand out one recipient
// twice (FOR UPDATE SKIP LOCKED), and together hand out all of them.
func TestQueueClaimTwoNodes(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	nodes := []*Store{openTest(t, dsn, Options{}), openTest(t, dsn, Options{})}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	const msgs, per = 50, 4
	for m := range msgs {
		var rs []queue.Recipient
		for i := range per {
			rs = append(rs, queue.Recipient{Msg: fmt.Sprintf("m%03d", m), Index: i, Address: fmt.Sprintf("r%d@remote.test", i),
				Size: 10, Created: now, Next: now.Add(-time.Duration(m) * time.Second)})
		}
		if err := nodes[m%2].EnqueueRecipients(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[queue.RecipientKey]string{}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("node%d-worker%d", w%2, w)
			for {
				rs, err := nodes[w%2].ClaimRecipients(ctx, owner, now, now.Add(time.Hour), 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(rs) == 0 {
					return
				}
				mu.Lock()
				for _, r := range rs {
					if prev, dup := claimed[r.Key()]; dup {
						t.Errorf("recipient %v claimed by %s and %s", r.Key(), prev, owner)
					}
					claimed[r.Key()] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != msgs*per {
		t.Fatalf("%d recipients claimed, want %d", len(claimed), msgs*per)
	}
}

// A body of several chunks reads whole even when its message is
// expunged (and the blob freed) after OpenBody; the sweep a grace
// period later deletes it.
func TestLargeBodyReadsAfterExpunge(t *testing.T) {
	s := openTest(t, freshDB(t), Options{})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), (3*chunkSize+1000)/16)
	m, err := s.Append(ctx, "u", "INBOX", bytes.NewReader(body), store.AppendOptions{Flags: []string{store.FlagDeleted}})
	if err != nil {
		t.Fatal(err)
	}
	var chunks int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM blob_chunks`).Scan(&chunks); err != nil || chunks != 4 {
		t.Fatalf("body stored in %d chunks (%v), want 4", chunks, err)
	}
	rc, err := s.OpenBody(ctx, "u", "INBOX", m.UID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 10)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, "u", "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(head, rest...); !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes after expunge, want the %d stored", len(got), len(body))
	}
	// The freed body is loose until the sweep a grace period later.
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Check with a loose body: %v %+v", err, p)
	}
	if err := s.blobs.sweep(ctx, s.pool, time.Now().Add(-time.Hour).UnixNano()); err != nil {
		t.Fatal(err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM blob_chunks`).Scan(&chunks); err != nil || chunks != 4 {
		t.Fatalf("%d chunks left after an early sweep (%v), want 4", chunks, err)
	}
	if err := s.blobs.sweep(ctx, s.pool, time.Now().Add(blobGrace).UnixNano()); err != nil {
		t.Fatal(err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM blob_chunks`).Scan(&chunks); err != nil || chunks != 0 {
		t.Fatalf("%d chunks left after expunge and sweep (%v), want 0", chunks, err)
	}
}

// countTracer counts the statements a pool sends (n) and the round
// trips they take (trips): a batch is one round trip.
type countTracer struct{ n, trips atomic.Int64 }

func (c *countTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	c.trips.Add(1)
	return ctx
}

func (c *countTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *countTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.trips.Add(1)
	return ctx
}

func (c *countTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.n.Add(1)
}

func (c *countTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// The statements and round trips of the hot operations are a small
// constant: they do not grow with the number of recipients or messages
// (bench/README.md lists them).
func TestRoundTrips(t *testing.T) {
	tr := &countTracer{}
	s := openTest(t, freshDB(t), Options{Tracer: tr})
	ctx := ctxFor(t)
	var accts []store.Recipient
	for i := range 10 {
		id := fmt.Sprintf("u%d", i)
		if _, err := s.CreateAccount(ctx, id, store.Quota{MaxBytes: 1 << 30}); err != nil {
			t.Fatal(err)
		}
		accts = append(accts, store.Recipient{Account: id})
	}
	// cost is what one operation sent: statements and round trips.
	type cost struct{ stmts, trips int64 }
	count := func(fn func() error) cost {
		t.Helper()
		n, r := tr.n.Load(), tr.trips.Load()
		if err := fn(); err != nil {
			t.Fatal(err)
		}
		return cost{tr.n.Load() - n, tr.trips.Load() - r}
	}
	deliverTo := func(n int) cost {
		return count(func() error {
			_, err := s.Deliver(ctx, store.Delivery{Recipients: accts[:n]}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
			return err
		})
	}
	d1, d10 := deliverTo(1), deliverTo(10)
	appendN := count(func() error {
		_, err := s.Append(ctx, "u0", "INBOX", strings.NewReader("Subject: a\r\n\r\nbody\r\n"), store.AppendOptions{Flags: []string{store.FlagSeen}})
		return err
	})
	for range 17 {
		if _, err := s.Append(ctx, "u0", "INBOX", strings.NewReader("x"), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	list20 := count(func() error {
		msgs, err := s.ListMessages(ctx, "u0", "INBOX", store.UIDSet{{Start: 1, Stop: 20}})
		if err == nil && len(msgs) != 20 {
			err = fmt.Errorf("listed %d messages, want 20", len(msgs))
		}
		return err
	})
	flags20 := count(func() error {
		res, err := s.StoreFlags(ctx, "u0", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 1, Stop: 20}}, Op: store.FlagsAdd, Flags: []string{store.FlagFlagged}})
		if err == nil && len(res.Updated) != 20 {
			err = fmt.Errorf("updated %d messages, want 20", len(res.Updated))
		}
		return err
	})
	body := count(func() error {
		rc, err := s.OpenBody(ctx, "u0", "INBOX", 1)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		return err
	})
	// The indexer writes the entries after the commits (textindexer.go).
	if _, err := s.IndexPendingText(ctx); err != nil {
		t.Fatal(err)
	}
	search := count(func() error {
		hits, err := s.SearchText(ctx, "u0", "INBOX", []store.TextTerm{{Field: store.TextBody, Value: "body"}}, nil)
		if err == nil && len(hits) != 3 {
			err = fmt.Errorf("SearchText found %d messages, want 3", len(hits))
		}
		return err
	})
	openMsg := count(func() error {
		m, rc, err := s.OpenMessage(ctx, "u0", "INBOX", 3)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if err == nil && (m.UID != 3 || len(m.Flags) != 2) {
			err = fmt.Errorf("OpenMessage gave UID %d with flags %v, want 3 with \\Seen and \\Flagged", m.UID, m.Flags)
		}
		return err
	})
	changes := count(func() error {
		cs, err := s.Changes(ctx, "u0", "INBOX", 0)
		if err == nil && len(cs.Changed) != 20 {
			err = fmt.Errorf("Changes listed %d messages, want 20", len(cs.Changed))
		}
		return err
	})
	status := count(func() error {
		st, err := s.Status(ctx, "u0", "INBOX")
		if err == nil && (st.Messages != 20 || st.Unseen != 19) {
			err = fmt.Errorf("Status says %d messages, %d unseen, want 20 and 19", st.Messages, st.Unseen)
		}
		return err
	})
	copy3 := count(func() error {
		pairs, err := s.Copy(ctx, "u0", "INBOX", "Archive", store.UIDSet{{Start: 1, Stop: 3}})
		if err == nil && len(pairs) != 3 {
			err = fmt.Errorf("copied %d messages, want 3", len(pairs))
		}
		return err
	})
	if _, err := s.StoreFlags(ctx, "u0", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 1, Stop: 20}}, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	// Mailbox after this Store's own write: from memory once the feed
	// listens (mailboxmemo.go).
	select {
	case <-s.feed.listening:
	case <-time.After(10 * time.Second):
		t.Fatal("the store never started listening")
	}
	if _, err := s.Append(ctx, "u0", "INBOX", strings.NewReader("x"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	mailboxCached := count(func() error {
		mb, err := s.Mailbox(ctx, "u0", "INBOX")
		if err == nil && mb.UIDNext != 22 {
			err = fmt.Errorf("Mailbox says UIDNEXT %d, want 22", mb.UIDNext)
		}
		return err
	})
	expunge20 := count(func() error {
		gone, err := s.Expunge(ctx, "u0", "INBOX", nil)
		if err == nil && len(gone) != 20 {
			err = fmt.Errorf("expunged %d messages, want 20", len(gone))
		}
		return err
	})
	// The bodies of UIDs 4 to 20 are freed; those copied (1 to 3) and
	// the one other accounts share (2) are not.
	var loose int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM blobs WHERE loose_since IS NOT NULL`).Scan(&loose); err != nil || loose != 17 {
		t.Errorf("%d bodies loose after the expunge (%v), want 17", loose, err)
	}
	// A directory lookup: the first read of a key goes to the database,
	// the next is answered by the record cache (once the feed listens;
	// nothing writes records here, so nothing invalidates it).
	getRecord := func() error {
		_, err := s.GetRecord(ctx, "addr", "nobody@example.test")
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("GetRecord of a missing key: %v", err)
	}
	recordCold, recordCached := count(getRecord), count(getRecord)
	t.Logf("statements/round trips: Deliver 1 rcpt %v, 10 rcpts %v; Append %v; ListMessages(20) %v; StoreFlags(20) %v; OpenBody (one chunk) %v; OpenMessage %v; SearchText %v; Changes %v; Status %v; Copy(3) %v; Mailbox after a write %v; Expunge(20) %v; GetRecord %v, cached %v",
		d1, d10, appendN, list20, flags20, body, openMsg, search, changes, status, copy3, mailboxCached, expunge20, recordCold, recordCached)
	if d1 != d10 {
		t.Errorf("Deliver to 10 recipients took %v, to 1 %v: it must not grow with recipients", d10, d1)
	}
	// BEGIN and COMMIT included. Deliver and Append: the body's upload,
	// then BEGIN with the reads that lock the accounts and mailboxes
	// (so that they see their latest counters), then the writes, the
	// feed and COMMIT (writePipelined).
	for name, c := range map[string][2]cost{
		"Deliver":         {d10, {7, 3}},
		"Append":          {appendN, {7, 3}},
		"StoreFlags(20)":  {flags20, {7, 2}},
		"ListMessages":    {list20, {1, 1}},
		"OpenBody":        {body, {1, 1}},
		"SearchText":      {search, {1, 1}},
		"OpenMessage":     {openMsg, {1, 1}},
		"Changes":         {changes, {1, 1}},
		"Status":          {status, {1, 1}},
		"Copy(3)":         {copy3, {8, 2}},
		"Mailbox cached":  {mailboxCached, {0, 0}},
		"Expunge(20)":     {expunge20, {10, 2}},
		"GetRecord":       {recordCold, {1, 1}},
		"GetRecord again": {recordCached, {0, 0}},
	} {
		if got, want := c[0], c[1]; got.stmts > want.stmts || got.trips > want.trips {
			t.Errorf("%s took %d statements in %d round trips, want at most %d in %d", name, got.stmts, got.trips, want.stmts, want.trips)
		}
	}
}

// Two nodes writing one account and one record at once: UIDs stay
// unique and dense, usage and counters agree (Check), and a read,
// modify and write of a record loses no update.
func TestConcurrentNodes(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	nodes := []*Store{openTest(t, dsn, Options{}), openTest(t, dsn, Options{})}
	for _, id := range []string{"u", "v"} {
		if _, err := nodes[0].CreateAccount(ctx, id, store.Quota{}); err != nil {
			t.Fatal(err)
		}
	}
	const each = 15
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := nodes[w%2]
			for i := range each {
				rcpts := []store.Recipient{{Account: "u"}, {Account: "v"}}
				if w%2 == 1 {
					rcpts[0], rcpts[1] = rcpts[1], rcpts[0] // opposite lock order asked for
				}
				if _, err := s.Deliver(ctx, store.Delivery{Recipients: rcpts}, strings.NewReader(fmt.Sprint(w, i))); err != nil {
					t.Error(err)
					return
				}
				err := s.UpdateRecords(ctx, func(tx store.RecordTx) error {
					r, err := tx.Get("test", "counter")
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
					n := 0
					if err == nil {
						fmt.Sscan(string(r.Value), &n)
					}
					return tx.Put("test", "counter", []byte(fmt.Sprint(n+1)), r.Version)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, id := range []string{"u", "v"} {
		msgs, err := nodes[1].ListMessages(ctx, id, "INBOX", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 4*each {
			t.Fatalf("%s has %d messages, want %d", id, len(msgs), 4*each)
		}
		for i, m := range msgs {
			if m.UID != uint32(i+1) {
				t.Fatalf("%s: message %d has UID %d, want %d", id, i, m.UID, i+1)
			}
		}
	}
	r, err := nodes[0].GetRecord(ctx, "test", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Value) != fmt.Sprint(4*each) || r.Version != 4*each {
		t.Fatalf("counter %s at version %d, want %d", r.Value, r.Version, 4*each)
	}
	p, err := nodes[1].Check(ctx)
	if err != nil || len(p) != 0 {
		t.Fatalf("Check: %v %+v", err, p)
	}
}

// A node that finds changes pruned from the feed before it read them
// tells its subscribers with ChangeOverflow (they resynchronise from
// their MODSEQ), then goes on with what is left.
func TestFeedPrunedGivesOverflow(t *testing.T) {
	ctx, a, b := twoNodes(t, "u")
	sub, err := b.Subscribe(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// While B's feed is held, A commits three changes and the first one
	// is pruned.
	b.feed.mu.Lock()
	var uids []uint32
	for i := range 3 {
		m, err := a.Append(ctx, "u", "INBOX", strings.NewReader(fmt.Sprint(i)), store.AppendOptions{})
		if err != nil {
			b.feed.mu.Unlock()
			t.Fatal(err)
		}
		uids = append(uids, m.UID)
	}
	_, err = a.pool.Exec(ctx, `DELETE FROM feed WHERE account = 'u' AND seq = (SELECT min(seq) FROM feed WHERE account = 'u' AND change->>'Kind' = $1)`,
		fmt.Sprint(int(store.ChangeMessagesAdded)))
	b.feed.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if c := waitChange(t, sub, 10*time.Second); c.Kind != store.ChangeOverflow {
		t.Fatalf("first change %+v, want ChangeOverflow", c)
	}
	for _, want := range uids[1:] {
		if c := waitChange(t, sub, 10*time.Second); c.Kind != store.ChangeMessagesAdded || c.UIDs[0] != want {
			t.Fatalf("change %+v, want UID %d added", c, want)
		}
	}
}

// TestRecordCreateRace: read-modify-write transactions on two nodes
// that find a key missing and then Put it without a version
// precondition (-1) never overwrite what another node created meanwhile:
// every increment of every fresh key counts.
func TestRecordCreateRace(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	nodes := []*Store{openTest(t, dsn, Options{}), openTest(t, dsn, Options{})}
	const workers, keys = 6, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s := nodes[w%2]
			for k := range keys {
				err := s.UpdateRecords(ctx, func(tx store.RecordTx) error {
					key := fmt.Sprint("k", k)
					r, err := tx.Get("test", key)
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
					n := 0
					if err == nil {
						fmt.Sscan(string(r.Value), &n)
					}
					if err := tx.Put("test", key, []byte(fmt.Sprint(n+1)), -1); err != nil {
						return err
					}
					// A second write of one's own new row is no race.
					return tx.Put("test", key, []byte(fmt.Sprint(n+1)), -1)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for k := range keys {
		r, err := nodes[0].GetRecord(ctx, "test", fmt.Sprint("k", k))
		if err != nil || string(r.Value) != fmt.Sprint(workers) {
			t.Fatalf("key k%d: %q (%v), want %d increments", k, r.Value, err, workers)
		}
	}
}
