package postgres

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// The method set imap.ListChangeCounter asks for.
var _ interface {
	ListChangeCount(account string) uint64
} = (*Store)(nil)

// The method set imap.MessageOpener asks for.
var _ interface {
	OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (store.Message, io.ReadCloser, error)
} = (*Store)(nil)

// settled waits until s's change count of account holds still for a
// moment (the moves of CreateAccount and of the first LISTEN are past)
// and returns it.
func settled(t *testing.T, s *Store, account string) uint64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := s.ChangeCount(account, "INBOX")
		time.Sleep(50 * time.Millisecond)
		if s.ChangeCount(account, "INBOX") == n {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatal("the change count never settled")
		}
	}
}

// Node B answers Mailbox from memory after its own writes and after a
// read, with no statement, and what it answers is the database's row;
// a write on node A is seen by B's next Mailbox once A's notification
// arrived (B's change count moved), though B had the row in memory.
func TestMailboxMemoTwoNodes(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	tr := &countTracer{}
	a := openTest(t, dsn, Options{})
	b := openTest(t, dsn, Options{Tracer: tr})
	if _, err := a.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateMailbox(ctx, "u", "Copies", ""); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b} {
		select {
		case <-s.feed.listening:
		case <-time.After(10 * time.Second):
			t.Fatal("a node never started listening")
		}
	}
	settled(t, b, "u")
	// mailboxFrom reads name on B and says how many statements it sent.
	mailboxFrom := func(name string) (store.Mailbox, int64) {
		t.Helper()
		n := tr.n.Load()
		mb, err := b.Mailbox(ctx, "u", name)
		if err != nil {
			t.Fatal(err)
		}
		return mb, tr.n.Load() - n
	}
	// inDB is the mailbox's row in the database, past every memory.
	inDB := func(name string) store.Mailbox {
		t.Helper()
		mb, err := a.mailboxRow(ctx, nil, "u", name)
		if err != nil {
			t.Fatal(err)
		}
		return mb
	}
	// fromMemory checks that B answers name from memory, with the row
	// the database has.
	fromMemory := func(what, name string) {
		t.Helper()
		mb, stmts := mailboxFrom(name)
		if stmts != 0 {
			t.Errorf("%s: Mailbox(%s) on B sent %d statements, want none", what, name, stmts)
		}
		if want := inDB(name); mb != want {
			t.Errorf("%s: Mailbox(%s) on B = %+v, the database has %+v", what, name, mb, want)
		}
	}

	if _, stmts := mailboxFrom("INBOX"); stmts != 1 {
		t.Fatalf("the first Mailbox on B sent %d statements, want 1", stmts)
	}
	fromMemory("a second read", "INBOX")

	// B's own writes leave the row they wrote.
	var uids []uint32
	for i := range 3 {
		m, err := b.Append(ctx, "u", "INBOX", strings.NewReader("Subject: x\r\n\r\nx\r\n"), store.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, m.UID)
		if i == 0 {
			fromMemory("Append on B", "INBOX")
		}
	}
	if _, err := b.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: uids[0], Stop: uids[0]}},
		Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	fromMemory("StoreFlags on B", "INBOX")
	if _, err := b.Expunge(ctx, "u", "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	fromMemory("Expunge on B", "INBOX")
	if _, err := b.Copy(ctx, "u", "INBOX", "Copies", store.UIDSet{{Start: uids[1], Stop: uids[1]}}); err != nil {
		t.Fatal(err)
	}
	fromMemory("Copy on B (source)", "INBOX")
	fromMemory("Copy on B (destination)", "Copies")
	if _, err := b.Move(ctx, "u", "INBOX", "Copies", store.UIDSet{{Start: uids[2], Stop: uids[2]}}); err != nil {
		t.Fatal(err)
	}
	fromMemory("Move on B (source)", "INBOX")
	fromMemory("Move on B (destination)", "Copies")
	if _, err := b.Move(ctx, "u", "Copies", "Copies", nil); err != nil {
		t.Fatal(err)
	}
	fromMemory("Move on B within one mailbox", "Copies")

	// A write on A: B's memory of INBOX is not used once A's
	// notification moved B's count, and B reads A's row.
	nb := b.ChangeCount("u", "INBOX")
	m, err := a.Append(ctx, "u", "INBOX", strings.NewReader("Subject: from A\r\n\r\nx\r\n"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitCount(t, b, "u", nb, "Append on A")
	mb, stmts := mailboxFrom("INBOX")
	if mb.UIDNext != m.UID+1 || mb.HighestModSeq != m.ModSeq {
		t.Fatalf("after A's Append of UID %d (MODSEQ %d), B's Mailbox says UIDNEXT %d, HIGHESTMODSEQ %d", m.UID, m.ModSeq, mb.UIDNext, mb.HighestModSeq)
	}
	if stmts != 1 {
		t.Errorf("the Mailbox on B after A's write sent %d statements, want 1", stmts)
	}
	fromMemory("a read on B after A's write", "INBOX")

	// Listener down: B's memory is not used; A's writes are seen all
	// the same (the first Mailbox after the kill may still come from
	// memory until B's listener noticed, as before the kill).
	pid := b.feed.listenPID.Load()
	var killed bool
	if err := a.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d): %v %v", pid, killed, err)
	}
	m, err = a.Append(ctx, "u", "INBOX", strings.NewReader("Subject: from A\r\n\r\nx\r\n"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if mb, _ := mailboxFrom("INBOX"); mb.UIDNext == m.UID+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B never saw A's Append after its listener was killed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// While the listener is away nothing is remembered or answered from
// memory; a write whose account another write was counted for between
// its reads and its commit leaves no row (it may not be the latest).
func TestMailboxMemoRules(t *testing.T) {
	var c changeCounts
	mb := store.Mailbox{ID: 1, Name: "INBOX", UIDNext: 5, HighestModSeq: 9}
	written := func() writtenBox {
		n, on := c.snapshot("u")
		return writtenBox{account: "u", mb: mb, n: n, on: on}
	}
	// Not listening: neither a write nor a read is remembered.
	c.committed([]string{"u"}, nil, []writtenBox{written()})
	c.rememberRead("u", c.count("u"), mb)
	if _, ok := c.mailbox("u", "INBOX"); ok {
		t.Fatal("a row was remembered while not listening")
	}
	c.setOn(true)
	c.committed([]string{"u"}, nil, []writtenBox{written()})
	if got, ok := c.mailbox("u", "INBOX"); !ok || got != mb {
		t.Fatalf("the written row was not remembered: %+v %v", got, ok)
	}
	// Another account's change leaves it; the account's own drops it.
	c.bump("v")
	if _, ok := c.mailbox("u", "INBOX"); !ok {
		t.Fatal("another account's change dropped the row")
	}
	c.bump("u")
	if _, ok := c.mailbox("u", "INBOX"); ok {
		t.Fatal("a change of the account left the row in use")
	}
	// A change counted between the write's reads and its commit: the
	// row is not remembered.
	w := written()
	c.bump("u")
	c.committed([]string{"u"}, nil, []writtenBox{w})
	if _, ok := c.mailbox("u", "INBOX"); ok {
		t.Fatal("a write's row was remembered though another change was counted since its reads")
	}
	// A read is remembered only if nothing was counted since its number.
	n := c.count("u")
	c.bump("u")
	c.rememberRead("u", n, mb)
	if _, ok := c.mailbox("u", "INBOX"); ok {
		t.Fatal("a read was remembered though a change was counted during it")
	}
	c.rememberRead("u", c.count("u"), mb)
	if _, ok := c.mailbox("u", "INBOX"); !ok {
		t.Fatal("a read was not remembered")
	}
	// Losing the listener: the memory is not used, and list numbers
	// change on every call.
	c.setOn(false)
	if _, ok := c.mailbox("u", "INBOX"); ok {
		t.Fatal("a row was answered from memory while not listening")
	}
	if l1, l2 := c.listCount("u"), c.listCount("u"); l1 == l2 {
		t.Fatal("two list counts while not listening were the same")
	}
}

// ListChangeCount moves with every change of the account's mailbox list
// or subscriptions, on the writing node before the call returns and on
// the other once the notification arrived; a message written leaves it
// alone (on the other node: checked once that node's ChangeCount moved
// for the message, which the same notification stream carries later
// than any list notification of an earlier write).
func TestListChangeCountTwoNodes(t *testing.T) {
	ctx, a, b := twoNodes(t, "u")
	settled(t, b, "u")
	nb, na := b.ListChangeCount("u"), a.ListChangeCount("u")
	if b.ListChangeCount("u") != nb {
		t.Fatal("B's list count moved with nothing changed")
	}
	n := b.ChangeCount("u", "INBOX")
	if _, err := a.Append(ctx, "u", "INBOX", strings.NewReader("x"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if a.ListChangeCount("u") != na {
		t.Fatal("a message written on A moved A's list count")
	}
	waitCount(t, b, "u", n, "Append on A")
	if b.ListChangeCount("u") != nb {
		t.Fatal("a message written on A moved B's list count")
	}
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"CreateMailbox", func() error { _, err := a.CreateMailbox(ctx, "u", "Lists/one", ""); return err }},
		{"RenameMailbox", func() error { return a.RenameMailbox(ctx, "u", "Lists/one", "Lists/two") }},
		{"SetSubscribed", func() error { return a.SetSubscribed(ctx, "u", "Lists/two", true) }},
		{"DeleteMailbox", func() error { return a.DeleteMailbox(ctx, "u", "Lists/two") }},
		{"ImportMailbox", func() error {
			_, err := a.ImportMailbox(ctx, "u", store.Mailbox{Name: "Archive", SpecialUse: store.SpecialArchive, UIDValidity: 1})
			return err
		}},
	} {
		na, nb := a.ListChangeCount("u"), b.ListChangeCount("u")
		if err := op.do(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if a.ListChangeCount("u") == na {
			t.Errorf("%s on A did not move A's list count", op.name)
		}
		deadline := time.Now().Add(10 * time.Second)
		for b.ListChangeCount("u") == nb {
			if time.Now().After(deadline) {
				t.Fatalf("%s on A: B's list count still %d after 10 s", op.name, nb)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
