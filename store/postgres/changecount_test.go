package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// The method set imap.ChangeCounter asks for (the store imports no
// protocol package, not even in tests).
var _ interface {
	ChangeCount(account, mailbox string) uint64
} = (*Store)(nil)

// While the listener is away every call gets a new number (nothing
// cached by them is used); listening, the number holds until a change.
func TestChangeCountsOff(t *testing.T) {
	var c changeCounts
	if a, b := c.count("u"), c.count("u"); a == b {
		t.Fatalf("two counts while not listening were both %d", a)
	}
	c.setOn(true)
	n := c.count("u")
	if c.count("u") != n {
		t.Fatal("the count moved with no change")
	}
	c.bump("v")
	if c.count("u") != n {
		t.Fatal("a change of another account moved the count")
	}
	c.bump("u")
	if c.count("u") == n {
		t.Fatal("a change of the account did not move its count")
	}
	n = c.count("u")
	c.setOn(false)
	if c.count("u") == n {
		t.Fatal("losing the listener did not move the count")
	}
}

// waitCount waits until s's count of account differs from n, and fails
// after 10 s.
func waitCount(t *testing.T, s *Store, account string, n uint64, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.ChangeCount(account, "INBOX") == n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: node B's change count still %d after 10 s", what, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Two Stores on one database: each one's writes move its own count
// before the writing call returns, and the other's once the
// notification arrived, before the other's subscribers hear of it; a
// subscription, which writes no feed row, moves both too. Another
// account's write leaves the count alone.
func TestChangeCountTwoNodes(t *testing.T) {
	ctx, a, b := twoNodes(t, "u")
	if _, err := a.CreateAccount(ctx, "other", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	deliver := func(s *Store, account string) {
		t.Helper()
		if _, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: account}}}, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	// B's number holds while nothing of u changes (once the listener
	// settled: CreateAccount's and the first LISTEN's moves are past).
	nb := settled(t, b, "u")

	// A delivery on A: A's count moved when Deliver returned; B's has
	// moved by the time B's subscriber gets the change.
	na := a.ChangeCount("u", "INBOX")
	deliver(a, "u")
	if a.ChangeCount("u", "INBOX") == na {
		t.Fatal("A's count did not move with A's own delivery")
	}
	waitChange(t, sub, 10*time.Second)
	if b.ChangeCount("u", "INBOX") == nb {
		t.Fatal("B's subscriber heard of A's delivery before B's count moved")
	}

	// Another account's delivery leaves u's count alone (on B, which
	// has heard of everything of u so far: A may still get its own
	// notification of its delivery to u, which moves A's count).
	subOther, err := b.Subscribe(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	defer subOther.Close()
	nb = b.ChangeCount("u", "INBOX")
	deliver(a, "other")
	waitChange(t, subOther, 10*time.Second)
	if b.ChangeCount("u", "INBOX") != nb {
		t.Fatal("a delivery to another account moved u's count")
	}

	// A write on B moves B's count at once, and A's.
	na, nb = a.ChangeCount("u", "INBOX"), b.ChangeCount("u", "INBOX")
	if _, err := b.Append(ctx, "u", "INBOX", strings.NewReader("x"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if b.ChangeCount("u", "INBOX") == nb {
		t.Fatal("B's count did not move with B's own Append")
	}
	waitCount(t, a, "u", na, "Append on B")

	// A subscription: no feed row, but both counts move.
	na, nb = a.ChangeCount("u", "INBOX"), b.ChangeCount("u", "INBOX")
	if err := a.SetSubscribed(ctx, "u", "Lists/new", true); err != nil {
		t.Fatal(err)
	}
	if a.ChangeCount("u", "INBOX") == na {
		t.Fatal("A's count did not move with A's own subscription")
	}
	waitCount(t, b, "u", nb, "subscription on A")
}

// ImportTombstones raises a mailbox's UIDNEXT and HIGHESTMODSEQ (what
// STATUS answers) without a feed row: both nodes' counts move all the
// same, or IMAP would answer STATUS from before the import.
func TestChangeCountImportTombstones(t *testing.T) {
	ctx, a, b := twoNodes(t, "u")
	settle := func(s *Store) uint64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			n := s.ChangeCount("u", "INBOX")
			time.Sleep(50 * time.Millisecond)
			if s.ChangeCount("u", "INBOX") == n {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatal("the change count of u never settled")
			}
		}
	}
	na, nb := settle(a), settle(b)
	before, err := a.Status(ctx, "u", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ImportTombstones(ctx, "u", "INBOX", []store.Tombstone{{UID: 40, ModSeq: 90}}); err != nil {
		t.Fatal(err)
	}
	after, err := a.Status(ctx, "u", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if after.UIDNext == before.UIDNext {
		t.Fatalf("the import left UIDNEXT at %d", after.UIDNext)
	}
	if a.ChangeCount("u", "INBOX") == na {
		t.Fatal("A's count did not move with A's own tombstone import")
	}
	waitCount(t, b, "u", nb, "tombstone import on A")
}
