package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/store"
)

// blocker is a transaction on its own connection that holds row locks
// so that a test can line other transactions up behind it and then let
// them go at once.
type blocker struct {
	t    *testing.T
	conn *pgx.Conn
	tx   pgx.Tx
}

func newBlocker(t *testing.T, ctx context.Context, dsn string) *blocker {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &blocker{t: t, conn: conn, tx: tx}
}

// lock runs a locking statement inside the blocker's transaction.
func (b *blocker) lock(ctx context.Context, sql string, args ...any) {
	b.t.Helper()
	if _, err := b.tx.Exec(ctx, sql, args...); err != nil {
		b.t.Fatal(err)
	}
}

// waitFor returns once n other backends of this database wait for a
// lock.
func (b *blocker) waitFor(ctx context.Context, n int) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var k int
		// The activity view is a snapshot per transaction: drop it.
		if _, err := b.tx.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
			b.t.Fatal(err)
		}
		err := b.tx.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&k)
		if err != nil {
			b.t.Fatal(err)
		}
		if k >= n {
			return
		}
		if time.Now().After(deadline) {
			rows, _ := b.tx.Query(ctx, `SELECT state || ' ' || coalesce(wait_event_type, '') || ' ' || left(query, 80) FROM pg_stat_activity WHERE datname = current_database()`)
			qs, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			b.t.Fatalf("%d backends wait for a lock, want %d: %q", k, n, qs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// release ends the blocker's transaction, letting the waiters go.
func (b *blocker) release() {
	b.t.Helper()
	if err := b.tx.Rollback(context.Background()); err != nil {
		b.t.Fatal(err)
	}
}

// noDeadlock fails the test if err is PostgreSQL's deadlock error.
func noDeadlock(t *testing.T, what string, err error) {
	t.Helper()
	if pgCode(err) == codeDeadlock || (err != nil && strings.Contains(err.Error(), "deadlock")) {
		t.Fatalf("%s: %v", what, err)
	}
}

// An account ID may contain spaces (store.ValidAccountID); the NOTIFY
// payload "account seq" must still wake that account's subscribers on
// another node, not an account named after its first word.
func TestFeedAccountWithSpace(t *testing.T) {
	const id = "first last"
	ctx, a, b := twoNodes(t, id)
	sub, err := b.Subscribe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	m, err := a.Append(ctx, id, "INBOX", strings.NewReader("x"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := waitChange(t, sub, 10*time.Second); c.Kind != store.ChangeMessagesAdded || c.UIDs[0] != m.UID {
		t.Fatalf("change %+v, want UID %d added", c, m.UID)
	}
}

// Two nodes settling the last two recipients of one message at the same
// moment: one of them must report the message emptied, or its body is
// never removed. Both settles are lined up behind a third transaction's
// row locks, so that they run truly at once.
func TestSettleLastRecipientsConcurrently(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	nodes := []*Store{openTest(t, dsn, Options{}), openTest(t, dsn, Options{})}
	now := time.Now().UTC().Round(0)
	rs := []queue.Recipient{
		{Msg: "m", Index: 0, Address: "a@remote.test", Size: 10, Created: now, Next: now},
		{Msg: "m", Index: 1, Address: "b@remote.test", Size: 10, Created: now, Next: now},
	}
	if err := nodes[0].EnqueueRecipients(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for i, s := range nodes {
		got, err := s.ClaimRecipients(ctx, fmt.Sprint("node", i), now, now.Add(time.Minute), 1)
		if err != nil || len(got) != 1 || got[0].Index != i {
			t.Fatalf("node %d claimed %+v, %v", i, got, err)
		}
	}
	blk := newBlocker(t, ctx, dsn)
	blk.lock(ctx, `SELECT 1 FROM queue_recipients WHERE msg = 'm' FOR UPDATE`)
	emptied := make([][]string, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range nodes {
		wg.Go(func() {
			emptied[i], errs[i] = s.SettleRecipients(ctx, fmt.Sprint("node", i), []queue.Outcome{{RecipientKey: queue.RecipientKey{Msg: "m", Index: i}, Done: true}})
		})
	}
	blk.waitFor(ctx, 2)
	blk.release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	if all := slices.Concat(emptied...); !slices.Equal(all, []string{"m"}) {
		t.Fatalf("emptied reported %q by node 0 and %q by node 1, want \"m\" once", emptied[0], emptied[1])
	}
}

// DeleteAccount and a write to one of the account's collections at
// once must not deadlock: both have to take the account's row before the
// collection's.
func TestDeleteAccountWhileCollectionWrite(t *testing.T) {
	card := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x\r\nFN:X\r\nEND:VCARD\r\n"
	for name, write := range map[string]func(ctx context.Context, s *Store, c store.Collection) error{
		"PutObject": func(ctx context.Context, s *Store, c store.Collection) error {
			_, err := s.PutObject(ctx, c.ID, store.Object{Name: "x.vcf", UID: "x", Data: []byte(card)}, store.PutOptions{})
			return err
		},
		"DeleteCollection": func(ctx context.Context, s *Store, c store.Collection) error {
			return s.DeleteCollection(ctx, c.Account, c.Kind, c.Name)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dsn := freshDB(t)
			ctx := ctxFor(t)
			s := openTest(t, dsn, Options{})
			if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
				t.Fatal(err)
			}
			c, err := s.Collection(ctx, "u", store.KindAddressBook, "contacts")
			if err != nil {
				t.Fatal(err)
			}
			blk := newBlocker(t, ctx, dsn)
			blk.lock(ctx, `SELECT 1 FROM accounts WHERE id = 'u' FOR UPDATE`)
			var wg sync.WaitGroup
			var delErr, writeErr error
			wg.Go(func() { delErr = s.DeleteAccount(ctx, "u") })
			blk.waitFor(ctx, 1)
			wg.Go(func() { writeErr = write(ctx, s, c) })
			blk.waitFor(ctx, 2)
			blk.release()
			wg.Wait()
			noDeadlock(t, "DeleteAccount", delErr)
			noDeadlock(t, name, writeErr)
			if delErr != nil {
				t.Fatalf("DeleteAccount: %v", delErr)
			}
			if writeErr != nil && !errors.Is(writeErr, store.ErrNotFound) {
				t.Fatalf("%s: %v", name, writeErr)
			}
		})
	}
}

// sharedBodies delivers two bodies to accounts "a" and "b" and returns
// their blob IDs, the lower first. In a's mailbox "Box" the message with
// the higher blob ID has the lower UID.
func sharedBodies(t *testing.T, ctx context.Context, s *Store) (lo, hi int64) {
	t.Helper()
	for _, id := range []string{"a", "b"} {
		if _, err := s.CreateAccount(ctx, id, store.Quota{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateMailbox(ctx, "a", "Box", ""); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"one", "two"} {
		if _, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "a"}, {Account: "b"}}}, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := s.ListMessages(ctx, "a", "INBOX", nil)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("a's INBOX: %+v %v", msgs, err)
	}
	lo, _ = parseI(msgs[0].BlobID)
	hi, _ = parseI(msgs[1].BlobID)
	// Box gets them in the other order: UID 1 names the higher blob.
	for _, uid := range []uint32{2, 1} {
		if _, err := s.Copy(ctx, "a", "INBOX", "Box", store.UIDSet{{Start: uid, Stop: uid}}); err != nil {
			t.Fatal(err)
		}
	}
	return lo, hi
}

// A Copy in one account and an Expunge in another that drops references
// to the same two bodies must not deadlock on the bodies' rows, whatever
// the order of the copied messages' UIDs.
func TestCopyWhileOtherAccountExpungesSharedBodies(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	s := openTest(t, dsn, Options{})
	lo, _ := sharedBodies(t, ctx, s)
	if _, err := s.StoreFlags(ctx, "b", "INBOX", store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	blk := newBlocker(t, ctx, dsn)
	blk.lock(ctx, `SELECT 1 FROM blobs WHERE id = $1 FOR UPDATE`, lo)
	var wg sync.WaitGroup
	var expErr, copyErr error
	wg.Go(func() { _, expErr = s.Expunge(ctx, "b", "INBOX", nil) })
	blk.waitFor(ctx, 1)
	wg.Go(func() { _, copyErr = s.Copy(ctx, "a", "Box", "INBOX", nil) })
	blk.waitFor(ctx, 2)
	blk.release()
	wg.Wait()
	noDeadlock(t, "Expunge", expErr)
	noDeadlock(t, "Copy", copyErr)
	if expErr != nil || copyErr != nil {
		t.Fatalf("Expunge: %v; Copy: %v", expErr, copyErr)
	}
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Check: %v %+v", err, p)
	}
}

// Two accounts moving messages whose bodies they share, at once, must
// not deadlock: a move frees no body, so it need not lock any for
// deletion.
func TestMovesSharingBodies(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	s := openTest(t, dsn, Options{})
	lo, _ := sharedBodies(t, ctx, s)
	if _, err := s.CreateMailbox(ctx, "b", "Box", ""); err != nil {
		t.Fatal(err)
	}
	blk := newBlocker(t, ctx, dsn)
	blk.lock(ctx, `SELECT 1 FROM blobs WHERE id = $1 FOR UPDATE`, lo)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, acct := range []string{"a", "b"} {
		wg.Go(func() { _, errs[i] = s.Move(ctx, acct, "INBOX", "Box", nil) })
	}
	blk.waitFor(ctx, 2)
	blk.release()
	wg.Wait()
	for i, err := range errs {
		noDeadlock(t, fmt.Sprint("Move ", i), err)
		if err != nil {
			t.Fatalf("Move %d: %v", i, err)
		}
	}
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Check: %v %+v", err, p)
	}
}

// Two nodes appending, delivering and copying into one account at once
// never take it over its message quota: the quota check and the usage
// update happen under the account's row lock.
func TestQuotaTwoNodes(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	nodes := []*Store{openTest(t, dsn, Options{}), openTest(t, dsn, Options{})}
	const limit = 12
	if _, err := nodes[0].CreateAccount(ctx, "u", store.Quota{MaxMessages: limit}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].Append(ctx, "u", "INBOX", strings.NewReader("seed"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var added, refused int
	for w := range 6 {
		s := nodes[w%2]
		wg.Go(func() {
			for i := range 8 {
				var err error
				n := 1
				switch (w + i) % 3 {
				case 0:
					_, err = s.Append(ctx, "u", "INBOX", strings.NewReader(fmt.Sprint(w, i)), store.AppendOptions{})
				case 1:
					_, err = s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, strings.NewReader(fmt.Sprint(w, i)))
				default:
					var pairs []store.UIDPair
					pairs, err = s.Copy(ctx, "u", "INBOX", "Archive", store.UIDSet{{Start: 1, Stop: 1}})
					n = len(pairs)
				}
				var qe *store.QuotaError
				mu.Lock()
				switch {
				case err == nil:
					added += n
				case errors.As(err, &qe):
					refused++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	u, _, err := nodes[1].Usage(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("added %d, refused %d, usage %+v", added, refused, u)
	if u.Messages != limit || added != limit-1 {
		t.Fatalf("usage %d messages after %d added, want %d (quota)", u.Messages, added, limit)
	}
	if p, err := nodes[0].Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Check: %v %+v", err, p)
	}
}

// Appends, copies and moves on two nodes at once keep each mailbox's
// UIDs unique and ascending with UIDNEXT above them, MODSEQs at most
// HIGHESTMODSEQ, and the counters right (Check).
func TestConcurrentAppendCopyMove(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	nodes := []*Store{openTest(t, dsn, Options{}), openTest(t, dsn, Options{})}
	if _, err := nodes[0].CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		s := nodes[w%2]
		wg.Go(func() {
			for i := range 10 {
				var err error
				switch w {
				case 0, 1:
					_, err = s.Append(ctx, "u", "INBOX", strings.NewReader(fmt.Sprint(w, i)), store.AppendOptions{})
				case 2:
					_, err = s.Copy(ctx, "u", "INBOX", "Archive", nil)
				default:
					_, err = s.Move(ctx, "u", "Archive", "Trash", store.UIDSet{{Start: uint32(i + 1), Stop: 0}})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	boxes, err := nodes[1].ListMailboxes(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	for _, mb := range boxes {
		msgs, err := nodes[1].ListMessages(ctx, "u", mb.Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			if i > 0 && m.UID <= msgs[i-1].UID || m.UID >= mb.UIDNext || m.ModSeq > mb.HighestModSeq {
				t.Fatalf("%s: message %+v out of order or above counters %+v", mb.Name, m, mb)
			}
		}
	}
	if p, err := nodes[0].Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Check: %v %+v", err, p)
	}
}

// pattern is a reader of n bytes of a repeating, position-dependent
// pattern, so that a chunk put back in the wrong place shows.
type pattern struct{ off, n int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		x := p.off + int64(i)
		b[i] = byte(x ^ x>>8 ^ x>>16)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// Bodies of sizes around the chunk size read back byte for byte.
func TestChunkBoundaries(t *testing.T) {
	s := openTest(t, freshDB(t), Options{})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 2 * chunkSize, 3*chunkSize + 7} {
		m, err := s.Append(ctx, "u", "INBOX", &pattern{n: n}, store.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Size != n {
			t.Fatalf("size %d stored as %d", n, m.Size)
		}
		rc, err := s.OpenBody(ctx, "u", "INBOX", m.UID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		want, _ := io.ReadAll(&pattern{n: n})
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("body of %d bytes read back as %d bytes (equal %v), %v", n, len(got), bytes.Equal(got, want), err)
		}
	}
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Check: %v %+v", err, p)
	}
}

// peakHeap samples the heap while fn runs and returns how far it grew
// above where it started.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	<-stopped
	if peak.Load() < base {
		return 0
	}
	return peak.Load() - base
}

// A 50 MiB body is written and read a chunk at a time: the heap grows by
// a few chunks, not by the body.
func TestLargeBodyMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50 MiB")
	}
	s := openTest(t, freshDB(t), Options{})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	const size = 50 << 20
	// A few chunks, and the text the full-text index keeps of the
	// message (store/internal/textdoc: at most 1 MiB per column, and
	// the copies lower-casing makes): far below the body.
	const bound = 24 << 20
	var m store.Message
	var err error
	up := peakHeap(func() { m, err = s.Append(ctx, "u", "INBOX", &pattern{n: size}, store.AppendOptions{}) })
	if err != nil {
		t.Fatal(err)
	}
	var same bool
	down := peakHeap(func() {
		var rc io.ReadCloser
		if rc, err = s.OpenBody(ctx, "u", "INBOX", m.UID); err != nil {
			return
		}
		defer rc.Close()
		same, err = readerEqual(rc, &pattern{n: size})
	})
	if err != nil || !same {
		t.Fatalf("read back: equal %v, %v", same, err)
	}
	t.Logf("50 MiB body: heap grew %d KiB writing, %d KiB reading", up>>10, down>>10)
	if up > bound || down > bound {
		t.Fatalf("heap grew %d bytes writing and %d reading a %d-byte body, want at most %d", up, down, size, bound)
	}
}

// readerEqual compares two readers a buffer at a time.
func readerEqual(a, b io.Reader) (bool, error) {
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, _ := io.ReadFull(b, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return true, nil
		}
		if ea != nil {
			return false, ea
		}
	}
}

// cancelAfter is a body reader that cancels its Append after n bytes and
// then keeps supplying data, as a client whose connection is dropped.
type cancelAfter struct {
	pattern
	at     int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(b []byte) (int, error) {
	if c.off >= c.at {
		c.cancel()
	}
	return c.pattern.Read(b)
}

// An Append cancelled in the middle of its body leaves nothing behind,
// and a body reader that is closed early or whose context ends gives
// its connection back.
func TestCancelMidStream(t *testing.T) {
	s := openTest(t, freshDB(t), Options{PoolSize: 2})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	_, err := s.Append(cctx, "u", "INBOX", &cancelAfter{pattern: pattern{n: 5 * chunkSize}, at: 2 * chunkSize, cancel: cancel}, store.AppendOptions{})
	if err == nil {
		t.Fatal("cancelled Append succeeded")
	}
	if u, _, err := s.Usage(ctx, "u"); err != nil || u.Messages != 0 {
		t.Fatalf("usage after cancelled Append: %+v %v", u, err)
	}
	var blobs int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM blobs) + (SELECT count(*) FROM blob_chunks)`).Scan(&blobs); err != nil || blobs != 0 {
		t.Fatalf("%d blob rows left by a cancelled Append (%v)", blobs, err)
	}
	m, err := s.Append(ctx, "u", "INBOX", &pattern{n: 3 * chunkSize}, store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	idle := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for s.pool.Stat().AcquiredConns() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d connections still held", what, s.pool.Stat().AcquiredConns())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Closed after a few bytes.
	rc, err := s.OpenBody(ctx, "u", "INBOX", m.UID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	idle("closed reader")
	// Its context cancelled in the middle: the next chunk fails.
	rctx, rcancel := context.WithCancel(ctx)
	rc, err = s.OpenBody(rctx, "u", "INBOX", m.UID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, chunkSize+10)); err != nil {
		t.Fatal(err)
	}
	rcancel()
	if _, err := io.ReadAll(rc); err == nil {
		t.Fatal("reading on after the context ended succeeded")
	}
	rc.Close()
	idle("cancelled reader")
}

// A node whose lease ran out while it delivered, and which then settles,
// must leave alone the recipient another node has claimed since: neither
// its Done nor its retry state lands, and the new owner's settle does.
func TestSettleAfterLeaseTakenOver(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	a, b := openTest(t, dsn, Options{}), openTest(t, dsn, Options{})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := a.EnqueueRecipients(ctx, []queue.Recipient{{Msg: "m", Address: "x@remote.test", Size: 1, Created: t0, Next: t0}}); err != nil {
		t.Fatal(err)
	}
	if got, err := a.ClaimRecipients(ctx, "A", t0, t0.Add(time.Minute), 0); err != nil || len(got) != 1 {
		t.Fatalf("A claimed %+v, %v", got, err)
	}
	late := t0.Add(2 * time.Minute)
	if got, err := b.ClaimRecipients(ctx, "B", late, late.Add(time.Minute), 0); err != nil || len(got) != 1 {
		t.Fatalf("B claimed %+v, %v", got, err)
	}
	key := queue.RecipientKey{Msg: "m"}
	for _, o := range []queue.Outcome{{RecipientKey: key, Done: true}, {RecipientKey: key, Next: late.Add(time.Hour), Attempts: 7, LastError: "stale"}} {
		if emptied, err := a.SettleRecipients(ctx, "A", []queue.Outcome{o}); err != nil || len(emptied) != 0 {
			t.Fatalf("A's stale settle: emptied %v, %v", emptied, err)
		}
	}
	rs, err := b.MessageRecipients(ctx, "m")
	if err != nil || len(rs) != 1 || rs[0].LeaseOwner != "B" || !rs[0].LeaseUntil.Equal(late.Add(time.Minute)) || rs[0].Attempts != 0 || rs[0].LastError != "" {
		t.Fatalf("after A's stale settle: %+v, %v", rs, err)
	}
	if emptied, err := b.SettleRecipients(ctx, "B", []queue.Outcome{{RecipientKey: key, Done: true}}); err != nil || !slices.Equal(emptied, []string{"m"}) {
		t.Fatalf("B's settle: emptied %v, %v", emptied, err)
	}
}

// stallingReader gives n bytes of pattern and then waits for go before
// its end, as an APPEND client that stalls in the middle of its literal.
type stallingReader struct {
	pattern
	stalled chan struct{}
	resume  chan struct{}
}

func (r *stallingReader) Read(b []byte) (int, error) {
	if r.off >= r.n {
		if r.stalled != nil {
			close(r.stalled)
			r.stalled = nil
			<-r.resume
		}
		return 0, io.EOF
	}
	return r.pattern.Read(b)
}

// Clients that stall while sending a body (APPEND) or reading one
// (FETCH) hold no pool connection meanwhile, so a node with as many of
// them as its pool has connections still delivers; then the stalled
// ones complete.
func TestStalledClientsHoldNoConnection(t *testing.T) {
	const pool = 2
	s := openTest(t, freshDB(t), Options{PoolSize: pool})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	const size = 2*chunkSize + 100
	m, err := s.Append(ctx, "u", "INBOX", &pattern{n: size}, store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var readers []io.ReadCloser
	for range pool {
		rc, err := s.OpenBody(ctx, "u", "INBOX", m.UID)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, chunkSize+10)); err != nil {
			t.Fatal(err)
		}
		readers = append(readers, rc)
	}
	resume := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	var once sync.Once
	goOn := func() { once.Do(func() { close(resume) }) }
	defer goOn()
	// The stalled clients give up after a while, as a server's read
	// timeout would make them.
	actx, acancel := context.WithTimeout(ctx, 30*time.Second)
	defer acancel()
	appendErrs := make([]error, pool)
	for i := range pool {
		r := &stallingReader{pattern: pattern{n: size}, stalled: make(chan struct{}), resume: resume}
		stalled := r.stalled
		wg.Go(func() { _, appendErrs[i] = s.Append(actx, "u", "INBOX", r, store.AppendOptions{}) })
		select {
		case <-stalled:
		case <-actx.Done():
			t.Fatalf("Append %d never started to read its body: the pool is held by %d open readers", i, pool)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.Deliver(dctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, strings.NewReader("x")); err != nil {
		t.Fatalf("Deliver with %d stalled uploads and %d stalled readers: %v", pool, pool, err)
	}
	goOn()
	wg.Wait()
	for i, err := range appendErrs {
		if err != nil {
			t.Fatalf("stalled Append %d: %v", i, err)
		}
	}
	want, _ := io.ReadAll(&pattern{n: size})
	for _, rc := range readers {
		rest, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(rest, want[chunkSize+10:]) {
			t.Fatalf("stalled reader read on %d bytes (%v), want the %d left", len(rest), err, size-chunkSize-10)
		}
	}
	if u, _, err := s.Usage(ctx, "u"); err != nil || u.Messages != 2+pool {
		t.Fatalf("usage %+v (%v), want %d messages", u, err, 2+pool)
	}
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Check: %v %+v", err, p)
	}
}

// A refused Append leaves no body behind, and the sweep removes bodies
// left loose (a node killed mid-upload) once the grace period is over,
// but not those claimed meanwhile.
func TestLooseBodiesSwept(t *testing.T) {
	s := openTest(t, freshDB(t), Options{})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{MaxMessages: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "u", "INBOX", &pattern{n: 2*chunkSize + 1}, store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	var qe *store.QuotaError
	if _, err := s.Append(ctx, "u", "INBOX", &pattern{n: 2*chunkSize + 1}, store.AppendOptions{}); !errors.As(err, &qe) {
		t.Fatalf("Append over quota: %v", err)
	}
	count := func() (n int) {
		t.Helper()
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM blobs`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("%d bodies after a refused Append, want 1", n)
	}
	// An upload whose node died before it was claimed.
	id, _, err := s.blobs.upload(ctx, s.pool, &pattern{n: chunkSize + 1}, s.now)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Check with an upload in progress: %v %+v", err, p)
	}
	if err := s.blobs.sweep(ctx, s.pool, time.Now().Add(blobGrace).UnixNano()); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM blobs WHERE id = $1`, id).Scan(&left); err != nil || left != 0 || count() != 1 {
		t.Fatalf("after the sweep: abandoned upload %d rows (%v), %d bodies in all, want 0 and 1", left, err, count())
	}
}
