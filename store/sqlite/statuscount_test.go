package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// bruteStatus counts a mailbox's messages the slow way, from its listing.
func bruteStatus(t *testing.T, s *Store, account, name string) store.MailboxStatus {
	t.Helper()
	ctx := context.Background()
	// The row itself, not Mailbox: that answers from the memo Status
	// keeps, which this is to check.
	mb, err := getMailbox(ctx, rpool{s}, account, name)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := s.ListMessages(ctx, account, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := store.MailboxStatus{Mailbox: mb}
	for _, m := range msgs {
		st.Messages++
		st.Size += m.Size
		if !slices.Contains(m.Flags, store.FlagSeen) {
			st.Unseen++
		}
		if slices.Contains(m.Flags, store.FlagDeleted) {
			st.Deleted++
		}
	}
	return st
}

// TestStatusCountsFollowWrites: after every write of a random sequence
// (deliver, append, flags, copy, move, expunge, delete and rename of a
// mailbox), Status of every mailbox is what counting its messages gives,
// at once (answered from what the writer published, or from the
// counted row), and Check finds no counter out of step.
func TestStatusCountsFollowWrites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	mustAccount(t, s, "a", store.Quota{})
	names := []string{store.Inbox, "Other", "Third"}
	for _, n := range names[1:] {
		if _, err := s.CreateMailbox(ctx, "a", n, store.SpecialNone); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(16, 6))
	msg := func(i int) string {
		return fmt.Sprintf("From: x@example.com\r\nSubject: m%d\r\n\r\n%s\r\n", i, strings.Repeat("b", r.IntN(300)))
	}
	someUIDs := func(name string) store.UIDSet {
		msgs, err := s.ListMessages(ctx, "a", name, nil)
		if err != nil || len(msgs) == 0 {
			return store.UIDSet{{Start: 1, Stop: 1}}
		}
		m := msgs[r.IntN(len(msgs))]
		return store.UIDSet{{Start: m.UID, Stop: m.UID + uint32(r.IntN(3))}}
	}
	flags := [][]string{{store.FlagSeen}, {store.FlagDeleted}, {store.FlagSeen, store.FlagDeleted}, {"$Junk"}}
	for i := range 300 {
		src, dst := names[r.IntN(len(names))], names[r.IntN(len(names))]
		var err error
		switch op := r.IntN(10); {
		case op < 3:
			_, err = s.Append(ctx, "a", src, strings.NewReader(msg(i)), store.AppendOptions{Flags: flags[r.IntN(len(flags))][:r.IntN(2)]})
		case op == 3:
			_, err = s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "a", Mailbox: src}}}, strings.NewReader(msg(i)))
		case op < 6:
			fop := []store.FlagOp{store.FlagsAdd, store.FlagsRemove, store.FlagsReplace}[r.IntN(3)]
			_, err = s.StoreFlags(ctx, "a", src, store.StoreFlagsRequest{UIDs: someUIDs(src), Op: fop, Flags: flags[r.IntN(len(flags))]})
		case op == 6 && src != dst:
			_, err = s.Copy(ctx, "a", src, dst, someUIDs(src))
		case op == 7 && src != dst:
			_, err = s.Move(ctx, "a", src, dst, someUIDs(src))
		case op == 8:
			_, err = s.Expunge(ctx, "a", src, nil)
		case op == 9 && src != store.Inbox && i%50 == 9:
			if err = s.DeleteMailbox(ctx, "a", src); err == nil {
				_, err = s.CreateMailbox(ctx, "a", src, store.SpecialNone)
			}
		case op == 9 && src != store.Inbox:
			if err = s.RenameMailbox(ctx, "a", src, src+"X"); err == nil {
				err = s.RenameMailbox(ctx, "a", src+"X", src)
			}
		}
		if err != nil && !strings.Contains(err.Error(), "no message") {
			t.Fatalf("step %d: %v", i, err)
		}
		for _, n := range names {
			got, err := s.Status(ctx, "a", n)
			if err != nil {
				t.Fatal(err)
			}
			if want := bruteStatus(t, s, "a", n); got != want {
				t.Fatalf("step %d: Status(%s) = %+v, counted %+v", i, n, got, want)
			}
		}
	}
	problems, err := s.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("Check: %s: %s", p.Kind, p.Detail)
	}
}

// TestListChangeCount: the number changes with the mailbox list and the
// subscriptions, not with messages.
func TestListChangeCount(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	mustAccount(t, s, "a", store.Quota{})
	step := func(name string, want bool, f func() error) {
		t.Helper()
		before := s.ListChangeCount("a")
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if changed := s.ListChangeCount("a") != before; changed != want {
			t.Errorf("%s: list number changed %v, want %v", name, changed, want)
		}
	}
	step("create", true, func() error { _, err := s.CreateMailbox(ctx, "a", "Other", store.SpecialNone); return err })
	step("append", false, func() error {
		_, err := s.Append(ctx, "a", store.Inbox, strings.NewReader("Subject: x\r\n\r\nx\r\n"), store.AppendOptions{})
		return err
	})
	step("copy", false, func() error { _, err := s.Copy(ctx, "a", store.Inbox, "Other", store.UIDSet{{Start: 1}}); return err })
	step("subscribe", true, func() error { return s.SetSubscribed(ctx, "a", "Other", false) })
	step("rename", true, func() error { return s.RenameMailbox(ctx, "a", "Other", "Renamed") })
	step("delete", true, func() error { return s.DeleteMailbox(ctx, "a", "Renamed") })
}

// undoMigrationV6 takes a version 6 database back to version 5, for
// tests of the migrations before it.
var undoMigrationV6 = []string{
	"DROP TRIGGER messages_count_insert", "DROP TRIGGER messages_count_delete", "DROP TRIGGER messages_count_update",
	"ALTER TABLE mailboxes DROP COLUMN n_messages", "ALTER TABLE mailboxes DROP COLUMN n_unseen",
	"ALTER TABLE mailboxes DROP COLUMN n_deleted", "ALTER TABLE mailboxes DROP COLUMN n_bytes",
	"PRAGMA user_version = 5",
}

// TestMailboxAfterWriteWithoutQuery: after a write to a mailbox, Mailbox
// answers what the writer committed (UIDNEXT, HIGHESTMODSEQ, the
// subscription) without a query of the read pool, as Status does; a
// mailbox the memo does not hold is read once and then remembered.
func TestMailboxAfterWriteWithoutQuery(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Without the background indexer, whose reads (its first look for
	// work right after Open, and its batch after the append) would
	// count among Mailbox's.
	s := openTest(t, dir, Options{noTextIndexer: true})
	mustAccount(t, s, "a", store.Quota{})
	if _, err := s.CreateMailbox(ctx, "a", "Other", store.SpecialNone); err != nil {
		t.Fatal(err)
	}
	// check: since is a moment before the memo Mailbox should answer
	// from was made. A memo older than statusMaxAge is read again by
	// design, which a busy machine can make happen between two lines:
	// one read more is then what is right.
	check := func(what, name string, since time.Time, wantReads uint64) store.Mailbox {
		t.Helper()
		r0 := s.reads.Load()
		mb, err := s.Mailbox(ctx, "a", name)
		if err != nil {
			t.Fatal(err)
		}
		got := s.reads.Load() - r0
		if expired := time.Since(since) >= statusMaxAge; got != wantReads && (!expired || wantReads != 0 || got != 1) {
			t.Errorf("%s: Mailbox ran %d read queries, want %d", what, got, wantReads)
		}
		row, err := getMailbox(ctx, rpool{s}, "a", name)
		if err != nil {
			t.Fatal(err)
		}
		if mb != row {
			t.Errorf("%s: Mailbox = %+v, the row is %+v", what, mb, row)
		}
		return mb
	}
	since := time.Now()
	m, err := s.Append(ctx, "a", "Other", strings.NewReader("Subject: x\r\n\r\nbody\r\n"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mb := check("after APPEND", "Other", since, 0); mb.UIDNext != m.UID+1 || mb.HighestModSeq != m.ModSeq {
		t.Errorf("after APPEND: UIDNEXT %d HIGHESTMODSEQ %d, the message has UID %d MODSEQ %d", mb.UIDNext, mb.HighestModSeq, m.UID, m.ModSeq)
	}
	since = time.Now()
	res, err := s.StoreFlags(ctx, "a", "Other", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: m.UID, Stop: m.UID}}, Op: store.FlagsAdd, Flags: []string{store.FlagSeen}})
	if err != nil {
		t.Fatal(err)
	}
	if mb := check("after STORE", "Other", since, 0); mb.HighestModSeq != res.Updated[0].ModSeq {
		t.Errorf("after STORE: HIGHESTMODSEQ %d, the message has MODSEQ %d", mb.HighestModSeq, res.Updated[0].ModSeq)
	}
	since = time.Now()
	if err := s.SetSubscribed(ctx, "a", "Other", true); err != nil {
		t.Fatal(err)
	}
	if mb := check("after SUBSCRIBE", "Other", since, 0); !mb.Subscribed {
		t.Error("after SUBSCRIBE: not subscribed")
	}
	// Opened afresh, the store knows no mailbox: read once, then known.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{noTextIndexer: true})
	since = time.Now()
	check("after reopening, first", "Other", since, 1)
	check("after reopening, again", "Other", since, 0)
	if _, err := s.Mailbox(ctx, "a", "Missing"); !errors.Is(err, store.ErrNoMailbox) {
		t.Errorf("missing mailbox: %v", err)
	}
	if _, err := s.Mailbox(ctx, "nobody", store.Inbox); !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNoMailbox) {
		t.Errorf("missing account: %v", err)
	}
}
