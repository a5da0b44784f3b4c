package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/mailyard/mailyard/store"
)

func testAccounts(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	a, err := s.CreateAccount(ctx, "alice", store.Quota{MaxBytes: 1000, MaxMessages: 10})
	ok(t, err, "CreateAccount")
	eq(t, a.ID, "alice", "account ID")
	eq(t, a.Quota, store.Quota{MaxBytes: 1000, MaxMessages: 10}, "quota")
	if a.Created.IsZero() {
		t.Fatal("Created is zero")
	}
	_, err = s.CreateAccount(ctx, "alice", store.Quota{})
	isErr(t, err, store.ErrExists, "second CreateAccount")
	_, err = s.CreateAccount(ctx, "", store.Quota{})
	isErr(t, err, store.ErrInvalid, "CreateAccount with empty ID")

	got, err := s.Account(ctx, "alice")
	ok(t, err, "Account")
	eq(t, got.ID, "alice", "Account ID")
	eq(t, got.Quota, a.Quota, "Account quota")
	if !got.Created.Equal(a.Created) {
		t.Fatalf("Created %v, want %v", got.Created, a.Created)
	}
	_, err = s.Account(ctx, "nobody")
	isErr(t, err, store.ErrNotFound, "Account(nobody)")

	// Default mailboxes with special use, all subscribed (store.Accounts).
	boxes, err := s.ListMailboxes(ctx, "alice")
	ok(t, err, "ListMailboxes")
	want := map[string]store.SpecialUse{
		"INBOX": store.SpecialNone, "Sent": store.SpecialSent, "Drafts": store.SpecialDrafts,
		"Trash": store.SpecialTrash, "Junk": store.SpecialJunk, "Archive": store.SpecialArchive,
	}
	eq(t, len(boxes), len(want), "number of default mailboxes")
	for i, b := range boxes {
		use, found := want[b.Name]
		if !found {
			t.Fatalf("unexpected default mailbox %q", b.Name)
		}
		eq(t, b.SpecialUse, use, "special use of %s", b.Name)
		eq(t, b.Subscribed, true, "%s subscribed", b.Name)
		eq(t, b.UIDNext, uint32(1), "UIDNEXT of new %s", b.Name)
		eq(t, b.HighestModSeq, uint64(1), "HIGHESTMODSEQ of new %s", b.Name)
		if b.UIDValidity == 0 {
			t.Fatalf("%s has UIDVALIDITY 0", b.Name)
		}
		if i > 0 && boxes[i-1].Name >= b.Name {
			t.Fatalf("ListMailboxes not sorted by name: %q before %q", boxes[i-1].Name, b.Name)
		}
	}
	// Default collections.
	cal, err := s.Collection(ctx, "alice", store.KindCalendar, "calendar")
	ok(t, err, "default calendar")
	eq(t, cal.Kind, store.KindCalendar, "calendar kind")
	ab, err := s.Collection(ctx, "alice", store.KindAddressBook, "contacts")
	ok(t, err, "default address book")
	eq(t, ab.Kind, store.KindAddressBook, "address book kind")

	// Paging through accounts.
	for i := range 5 {
		newAccount(t, s, fmt.Sprintf("user%d", i), store.Quota{})
	}
	var all []string
	after := ""
	for {
		page, err := s.ListAccounts(ctx, after, 2)
		ok(t, err, "ListAccounts(%q)", after)
		if len(page) > 2 {
			t.Fatalf("ListAccounts returned %d > limit 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			all = append(all, p.ID)
		}
		after = page[len(page)-1].ID
	}
	eqSlice(t, all, []string{"alice", "user0", "user1", "user2", "user3", "user4"}, "all accounts by paging")

	// Quota and usage.
	ok(t, s.SetQuota(ctx, "alice", store.Quota{MaxBytes: 5}), "SetQuota")
	u, q, err := s.Usage(ctx, "alice")
	ok(t, err, "Usage")
	eq(t, q, store.Quota{MaxBytes: 5}, "quota after SetQuota")
	eq(t, u, store.Usage{}, "usage of empty account")
	isErr(t, s.SetQuota(ctx, "nobody", store.Quota{}), store.ErrNotFound, "SetQuota(nobody)")
	_, _, err = s.Usage(ctx, "nobody")
	isErr(t, err, store.ErrNotFound, "Usage(nobody)")
}

func testDeleteAccount(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "a", store.Quota{})
	newAccount(t, s, "b", store.Quota{})
	appendMsg(t, s, "a", "INBOX", "hello")
	// b shares the blob of a's message through a delivery to both.
	ds, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "a"}, {Account: "b"}}}, bytes.NewReader([]byte("shared")))
	ok(t, err, "Deliver")
	ok(t, s.DeleteAccount(ctx, "a"), "DeleteAccount")
	_, err = s.Account(ctx, "a")
	isErr(t, err, store.ErrNotFound, "Account after delete")
	_, err = s.ListMailboxes(ctx, "a")
	isErr(t, err, store.ErrNotFound, "ListMailboxes after delete")
	_, err = s.Collection(ctx, "a", store.KindCalendar, "calendar")
	isErr(t, err, store.ErrNotFound, "calendar after delete")
	isErr(t, s.DeleteAccount(ctx, "a"), store.ErrNotFound, "second DeleteAccount")
	// The shared body survives for b.
	eq(t, readBody(t, s, "b", "INBOX", ds[1].UID), "shared", "b's copy after a was deleted")
	noProblems(t, s)
	// The ID can be used again, from scratch.
	newAccount(t, s, "a", store.Quota{})
	eq(t, len(listUIDs(t, s, "a", "INBOX")), 0, "messages in re-created account")
	u, _, err := s.Usage(ctx, "a")
	ok(t, err, "Usage")
	eq(t, u, store.Usage{}, "usage of re-created account")
}

func testMailboxes(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	m, err := s.CreateMailbox(ctx, "u", "Projects/2024/Q1", store.SpecialNone)
	ok(t, err, "CreateMailbox with missing parents")
	eq(t, m.Name, "Projects/2024/Q1", "name")
	eq(t, m.UIDNext, uint32(1), "UIDNEXT")
	eq(t, m.HighestModSeq, uint64(1), "HIGHESTMODSEQ")
	// RFC 9051 §6.3.4: parents are created.
	mailbox(t, s, "u", "Projects")
	mailbox(t, s, "u", "Projects/2024")
	got := mailbox(t, s, "u", "Projects/2024/Q1")
	eq(t, got.UIDValidity, m.UIDValidity, "UIDVALIDITY read back")
	eq(t, got.ID, m.ID, "ID read back")

	_, err = s.CreateMailbox(ctx, "u", "Projects/2024/Q1", store.SpecialNone)
	isErr(t, err, store.ErrExists, "CreateMailbox of existing")
	_, err = s.CreateMailbox(ctx, "u", "Projects", store.SpecialNone)
	isErr(t, err, store.ErrExists, "CreateMailbox of implicitly created parent")
	for _, bad := range []string{"", "/x", "x/", "a//b", string(bytes.Repeat([]byte("n"), 1025)), "bad\x00name", "bad\nname"} {
		_, err = s.CreateMailbox(ctx, "u", bad, store.SpecialNone)
		isErr(t, err, store.ErrInvalid, "CreateMailbox(%q)", bad)
	}
	_, err = s.CreateMailbox(ctx, "nobody", "x", store.SpecialNone)
	isErr(t, err, store.ErrNotFound, "CreateMailbox for unknown account")
	_, err = s.Mailbox(ctx, "u", "Nope")
	isErr(t, err, store.ErrNoMailbox, "Mailbox(Nope)")
	// A missing account is not a missing mailbox (IMAP answers them
	// differently).
	_, err = s.Mailbox(ctx, "nobody", store.Inbox)
	isErr(t, err, store.ErrNotFound, "Mailbox of unknown account")
	if errors.Is(err, store.ErrNoMailbox) {
		t.Fatalf("Mailbox of unknown account: %v, want ErrNotFound without ErrNoMailbox", err)
	}

	all, err := s.CreateMailbox(ctx, "u", "All Mail", store.SpecialAll)
	ok(t, err, "CreateMailbox with special use")
	eq(t, all.SpecialUse, store.SpecialAll, "special use")
	eq(t, mailbox(t, s, "u", "All Mail").SpecialUse, store.SpecialAll, "special use read back")

	// UIDVALIDITY differs between mailboxes created in the same second.
	x, err := s.CreateMailbox(ctx, "u", "x", store.SpecialNone)
	ok(t, err, "create x")
	y, err := s.CreateMailbox(ctx, "u", "y", store.SpecialNone)
	ok(t, err, "create y")
	if x.UIDValidity == y.UIDValidity {
		t.Fatalf("two mailboxes share UIDVALIDITY %d", x.UIDValidity)
	}
	names := mailboxNames(t, s, "u")
	want := []string{"All Mail", "Archive", "Drafts", "INBOX", "Junk", "Projects", "Projects/2024", "Projects/2024/Q1", "Sent", "Trash", "x", "y"}
	eqSlice(t, names, want, "ListMailboxes")
}

func testInboxRules(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	inbox := mailbox(t, s, "u", "INBOX")
	for _, n := range []string{"inbox", "Inbox", "iNbOx"} {
		m, err := s.Mailbox(ctx, "u", n)
		ok(t, err, "Mailbox(%q)", n)
		eq(t, m.Name, "INBOX", "canonical name for %q", n)
		eq(t, m.ID, inbox.ID, "same mailbox for %q", n)
	}
	_, err := s.CreateMailbox(ctx, "u", "inbox", store.SpecialNone)
	isErr(t, err, store.ErrExists, "CreateMailbox(inbox)")
	isErr(t, s.DeleteMailbox(ctx, "u", "Inbox"), store.ErrInvalid, "DeleteMailbox(Inbox)")
	isErr(t, s.RenameMailbox(ctx, "u", "inbox", "Old"), store.ErrInvalid, "RenameMailbox(inbox)")
	if err := s.RenameMailbox(ctx, "u", "Sent", "INBOX"); err == nil {
		t.Fatal("renaming onto INBOX succeeded")
	}
	// Children of INBOX are canonicalised too.
	c, err := s.CreateMailbox(ctx, "u", "inbox/Lists", store.SpecialNone)
	ok(t, err, "CreateMailbox(inbox/Lists)")
	eq(t, c.Name, "INBOX/Lists", "canonical child name")
	m := appendMsg(t, s, "u", "inbox", "x")
	eqSlice(t, listUIDs(t, s, "u", "INBOX"), []uint32{m.UID}, "append via lower-case inbox")
	eq(t, mailbox(t, s, "u", "Inbox/Lists").Name, "INBOX/Lists", "child via lower-case INBOX")
	// Only the INBOX segment is case-insensitive.
	_, err = s.Mailbox(ctx, "u", "INBOX/lists")
	isErr(t, err, store.ErrNotFound, "INBOX/lists in the wrong case")
}

func testRenameMailbox(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	for _, n := range []string{"a", "a/x", "a/x/y", "ab"} {
		_, err := s.CreateMailbox(ctx, "u", n, store.SpecialNone)
		ok(t, err, "create %s", n)
	}
	before := map[string]store.Mailbox{}
	for _, n := range []string{"a", "a/x", "a/x/y", "ab"} {
		before[n] = mailbox(t, s, "u", n)
	}
	m1 := appendMsg(t, s, "u", "a/x", "child message", `\Seen`)
	m0 := appendMsg(t, s, "u", "a", "parent message")
	ok(t, s.RenameMailbox(ctx, "u", "a", "b/c"), "RenameMailbox a -> b/c")
	want := []string{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash", "ab", "b", "b/c", "b/c/x", "b/c/x/y"}
	eqSlice(t, mailboxNames(t, s, "u"), want, "mailboxes after rename (children follow, parent created, 'ab' untouched)")
	for old, nw := range map[string]string{"a": "b/c", "a/x": "b/c/x", "a/x/y": "b/c/x/y", "ab": "ab"} {
		got := mailbox(t, s, "u", nw)
		eq(t, got.UIDValidity, before[old].UIDValidity, "UIDVALIDITY of %s after rename from %s", nw, old)
		eq(t, got.ID, before[old].ID, "ID of %s", nw)
	}
	eq(t, readBody(t, s, "u", "b/c/x", m1.UID), "child message", "child's message after rename")
	eq(t, readBody(t, s, "u", "b/c", m0.UID), "parent message", "parent's message after rename")
	msgs, err := s.ListMessages(ctx, "u", "b/c/x", nil)
	ok(t, err, "ListMessages")
	eqSlice(t, msgs[0].Flags, []string{store.FlagSeen}, "flags after rename")
	_, err = s.Mailbox(ctx, "u", "a/x")
	isErr(t, err, store.ErrNotFound, "old child name")

	isErr(t, s.RenameMailbox(ctx, "u", "nope", "z"), store.ErrNoMailbox, "rename missing")
	isErr(t, s.RenameMailbox(ctx, "u", "ab", "b/c"), store.ErrExists, "rename onto existing")
	_, err = s.CreateMailbox(ctx, "u", "q", store.SpecialNone)
	ok(t, err, "create q")
	_, err = s.CreateMailbox(ctx, "u", "z/x", store.SpecialNone)
	ok(t, err, "create z/x")
	// b/c has a child x, so renaming b/c to z would need z/x: taken.
	isErr(t, s.RenameMailbox(ctx, "u", "b/c", "z"), store.ErrExists, "rename whose child collides")
	eq(t, mailbox(t, s, "u", "b/c/x").UIDValidity, before["a/x"].UIDValidity, "failed rename changed nothing")
	isErr(t, s.RenameMailbox(ctx, "u", "b/c", "b/c/inner"), store.ErrInvalid, "rename below itself")
	isErr(t, s.RenameMailbox(ctx, "u", "b/c", "bad//name"), store.ErrInvalid, "rename to invalid name")
	// A special-use mailbox keeps its attribute.
	ok(t, s.RenameMailbox(ctx, "u", "Sent", "Sent Items"), "rename Sent")
	eq(t, mailbox(t, s, "u", "Sent Items").SpecialUse, store.SpecialSent, "special use after rename")
	noProblems(t, s)
}

func testDeleteMailbox(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	_, err := s.CreateMailbox(ctx, "u", "p/c", store.SpecialNone)
	ok(t, err, "create p/c")
	old := mailbox(t, s, "u", "p")
	appendMsg(t, s, "u", "p", "12345")
	appendMsg(t, s, "u", "p", "678")
	appendMsg(t, s, "u", "p/c", "child")
	ok(t, s.DeleteMailbox(ctx, "u", "p"), "DeleteMailbox(p)")
	_, err = s.Mailbox(ctx, "u", "p")
	isErr(t, err, store.ErrNotFound, "deleted mailbox")
	eqSlice(t, listUIDs(t, s, "u", "p/c"), []uint32{1}, "child survives with its message")
	u, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	eq(t, u, store.Usage{Bytes: 5, Messages: 1}, "usage after deleting a mailbox")
	isErr(t, s.DeleteMailbox(ctx, "u", "p"), store.ErrNoMailbox, "delete twice")
	isErr(t, s.DeleteMailbox(ctx, "u", "INBOX"), store.ErrInvalid, "delete INBOX")
	// Re-creating the name gives a new UIDVALIDITY (RFC 9051 §2.3.1.1).
	nw, err := s.CreateMailbox(ctx, "u", "p", store.SpecialNone)
	ok(t, err, "re-create p")
	if nw.UIDValidity == old.UIDValidity {
		t.Fatalf("re-created mailbox kept UIDVALIDITY %d", old.UIDValidity)
	}
	eq(t, len(listUIDs(t, s, "u", "p")), 0, "re-created mailbox is empty")
	noProblems(t, s)
}

func testSubscriptions(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	m, err := s.CreateMailbox(ctx, "u", "news", store.SpecialNone)
	ok(t, err, "create")
	eq(t, m.Subscribed, false, "new mailbox subscribed")
	ok(t, s.SetSubscribed(ctx, "u", "news", true), "subscribe")
	eq(t, mailbox(t, s, "u", "news").Subscribed, true, "after subscribe")
	ok(t, s.SetSubscribed(ctx, "u", "INBOX", false), "unsubscribe INBOX")
	eq(t, mailbox(t, s, "u", "INBOX").Subscribed, false, "INBOX after unsubscribe")
	ok(t, s.SetSubscribed(ctx, "u", "news", false), "unsubscribe")
	eq(t, mailbox(t, s, "u", "news").Subscribed, false, "after unsubscribe")
	ok(t, s.SetSubscribed(ctx, "u", "news", false), "unsubscribe twice (RFC 9051 §6.3.8: OK)")
	ok(t, s.SetSubscribed(ctx, "u", "news", true), "subscribe")
	ok(t, s.SetSubscribed(ctx, "u", "news", true), "subscribe twice")
	ok(t, s.RenameMailbox(ctx, "u", "news", "old-news"), "rename")
	eq(t, mailbox(t, s, "u", "old-news").Subscribed, true, "subscription follows rename")
	subs := func(what string, want ...string) {
		t.Helper()
		got, err := s.Subscriptions(ctx, "u")
		ok(t, err, "Subscriptions")
		eqSlice(t, got, want, "subscriptions %s", what)
	}
	subs("after rename", "Archive", "Drafts", "Junk", "Sent", "Trash", "old-news")

	// The list holds names, independent of mailboxes (RFC 9051 §6.3.7,
	// RFC 3501 §6.3.6).
	ok(t, s.SetSubscribed(ctx, "u", "later/box", true), "subscribe a name without a mailbox")
	ok(t, s.DeleteMailbox(ctx, "u", "old-news"), "delete a subscribed mailbox")
	subs("after delete", "Archive", "Drafts", "Junk", "Sent", "Trash", "later/box", "old-news")
	nw, err := s.CreateMailbox(ctx, "u", "old-news", store.SpecialNone)
	ok(t, err, "re-create")
	eq(t, nw.Subscribed, true, "re-created mailbox is still subscribed")
	_, err = s.CreateMailbox(ctx, "u", "later/box", store.SpecialNone)
	ok(t, err, "create the subscribed name")
	eq(t, mailbox(t, s, "u", "later/box").Subscribed, true, "mailbox created after SUBSCRIBE")
	eq(t, mailbox(t, s, "u", "later").Subscribed, false, "its parent")
	ok(t, s.DeleteMailbox(ctx, "u", "later/box"), "delete")
	ok(t, s.SetSubscribed(ctx, "u", "later/box", false), "unsubscribe a name without a mailbox")
	ok(t, s.SetSubscribed(ctx, "u", "inbox", true), "subscribe inbox in any case")
	subs("INBOX canonical", "Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash", "old-news")

	// RENAME moves the subscriptions of the mailboxes it renames, children
	// included; a subscribed name below the old one without a mailbox
	// stays, and the old name is no longer subscribed.
	for _, n := range []string{"p/a", "p/b"} {
		_, err := s.CreateMailbox(ctx, "u", n, store.SpecialNone)
		ok(t, err, "create %s", n)
	}
	ok(t, s.SetSubscribed(ctx, "u", "p", true), "subscribe p")
	ok(t, s.SetSubscribed(ctx, "u", "p/a", true), "subscribe p/a")
	ok(t, s.SetSubscribed(ctx, "u", "p/gone", true), "subscribe p/gone")
	ok(t, s.RenameMailbox(ctx, "u", "p", "q"), "rename p")
	subs("after renaming a tree", "Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash", "old-news", "p/gone", "q", "q/a")
	eq(t, mailbox(t, s, "u", "q/b").Subscribed, false, "unsubscribed child stays unsubscribed")

	isErr(t, s.SetSubscribed(ctx, "u", "", true), store.ErrInvalid, "subscribe empty name")
	isErr(t, s.SetSubscribed(ctx, "nobody", "x", true), store.ErrNotFound, "subscribe for a missing account")
	_, err = s.Subscriptions(ctx, "nobody")
	isErr(t, err, store.ErrNotFound, "Subscriptions of a missing account")
	ok(t, s.DeleteAccount(ctx, "u"), "delete account")
	newAccount(t, s, "u", store.Quota{})
	subs("of a new account with the old ID", "Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash")
}

func testCheckHealthy(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	noProblems(t, s)
	newAccount(t, s, "u", store.Quota{})
	newAccount(t, s, "v", store.Quota{})
	for i := range 5 {
		appendMsg(t, s, "u", "INBOX", fmt.Sprintf("m%d", i), store.FlagDeleted)
	}
	_, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}, {Account: "v"}}}, bytes.NewReader([]byte("both")))
	ok(t, err, "Deliver")
	_, err = s.Copy(ctx, "u", "INBOX", "Archive", nil)
	ok(t, err, "Copy")
	_, err = s.Expunge(ctx, "u", "INBOX", nil)
	ok(t, err, "Expunge")
	_, err = s.Move(ctx, "u", "Archive", "Trash", uids(1, 2))
	ok(t, err, "Move")
	ok(t, s.DeleteMailbox(ctx, "u", "Trash"), "DeleteMailbox")
	noProblems(t, s)
}

func testClosed(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	ok(t, s.Close(), "Close")
	_, err := s.Append(ctx, "u", "INBOX", bytes.NewReader([]byte("x")), store.AppendOptions{})
	isErr(t, err, store.ErrClosed, "Append after Close")
	_, err = s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, bytes.NewReader([]byte("x")))
	isErr(t, err, store.ErrClosed, "Deliver after Close")
	_, err = s.ListMailboxes(ctx, "u")
	isErr(t, err, store.ErrClosed, "ListMailboxes after Close")
	_, err = s.Subscribe(ctx, "u")
	isErr(t, err, store.ErrClosed, "Subscribe after Close")
	err = s.UpdateRecords(ctx, func(tx store.RecordTx) error { return nil })
	isErr(t, err, store.ErrClosed, "UpdateRecords after Close")
	if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}
