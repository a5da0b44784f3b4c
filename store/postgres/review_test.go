package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	dsn := freshDB(t)
	ctx := ctxFor(t)
	a := openTest(t, dsn, Options{})
	b := openTest(t, dsn, Options{})
	const id = "first last"
	if _, err := a.CreateAccount(ctx, id, store.Quota{}); err != nil {
		t.Fatal(err)
	}
	<-b.feed.listening
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
