package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// RunReopen checks that everything a store acknowledged survives closing
// and reopening it. open opens the store whose persistent state is in dir
// (a backend without a directory may use dir as a key); RunReopen closes
// every store it opens.
func RunReopen(t *testing.T, open func(t *testing.T, dir string) store.Store) {
	dir := t.TempDir()
	ctx := ctxT(t)
	s := open(t, dir)
	newAccount(t, s, "u", store.Quota{MaxBytes: 1 << 20, MaxMessages: 100})
	newAccount(t, s, "v", store.Quota{})
	_, err := s.CreateMailbox(ctx, "u", "Projects/Old", store.SpecialNone)
	ok(t, err, "create")
	ok(t, s.SetSubscribed(ctx, "u", "Projects/Old", true), "subscribe")
	for i := range 4 {
		appendMsg(t, s, "u", "Projects/Old", string(rune('a'+i))+" body", store.FlagSeen)
	}
	_, err = s.StoreFlags(ctx, "u", "Projects/Old", store.StoreFlagsRequest{UIDs: uids(2, 4), Op: store.FlagsAdd, Flags: []string{store.FlagDeleted, "$Keep"}})
	ok(t, err, "flags")
	_, err = s.Expunge(ctx, "u", "Projects/Old", uids(4))
	ok(t, err, "expunge the highest UID")
	ok(t, s.RenameMailbox(ctx, "u", "Projects", "Work"), "rename")
	ds, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}, {Account: "v"}}}, bytes.NewReader([]byte("delivered")))
	ok(t, err, "deliver")
	cal := mustCollection(t, s, "u", store.KindCalendar, "calendar")
	obj, err := s.PutObject(ctx, cal.ID, store.Object{Name: "e.ics", UID: "e", Data: []byte("EVENT"),
		Component: "VEVENT", Start: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}, store.PutOptions{})
	ok(t, err, "put object")
	_, tok, err := s.ChangesSince(ctx, cal.ID, 0)
	ok(t, err, "ChangesSince")
	err = s.UpdateRecords(ctx, func(tx store.RecordTx) error { return tx.Put("ns", "k", []byte("v"), 0) })
	ok(t, err, "record")

	beforeBoxes, err := s.ListMailboxes(ctx, "u")
	ok(t, err, "list")
	beforeMsgs, err := s.ListMessages(ctx, "u", "Work/Old", nil)
	ok(t, err, "list messages")
	beforeUsage, _, err := s.Usage(ctx, "u")
	ok(t, err, "usage")
	ok(t, s.Close(), "Close")

	s = open(t, dir)
	defer s.Close()
	afterBoxes, err := s.ListMailboxes(ctx, "u")
	ok(t, err, "list after reopen")
	if !slices.Equal(beforeBoxes, afterBoxes) {
		t.Fatalf("mailboxes changed across reopen:\n before %+v\n after  %+v", beforeBoxes, afterBoxes)
	}
	afterMsgs, err := s.ListMessages(ctx, "u", "Work/Old", nil)
	ok(t, err, "list messages after reopen")
	eq(t, len(afterMsgs), len(beforeMsgs), "message count after reopen")
	for i := range afterMsgs {
		a, b := afterMsgs[i], beforeMsgs[i]
		if a.UID != b.UID || a.ModSeq != b.ModSeq || !slices.Equal(a.Flags, b.Flags) || a.Size != b.Size || !a.InternalDate.Equal(b.InternalDate) || a.BlobID != b.BlobID {
			t.Fatalf("message changed across reopen:\n before %+v\n after  %+v", b, a)
		}
		eq(t, readBody(t, s, "u", "Work/Old", a.UID), string(rune('a'+int(a.UID)-1))+" body", "body of %d after reopen", a.UID)
	}
	eq(t, readBody(t, s, "v", "INBOX", ds[1].UID), "delivered", "delivered body after reopen")
	u, q, err := s.Usage(ctx, "u")
	ok(t, err, "usage after reopen")
	eq(t, u, beforeUsage, "usage after reopen")
	eq(t, q, store.Quota{MaxBytes: 1 << 20, MaxMessages: 100}, "quota after reopen")
	// UIDs are not reused after reopen, not even the expunged highest.
	eq(t, appendMsg(t, s, "u", "Work/Old", "new").UID, uint32(5), "UID after reopen")
	cs, err := s.Changes(ctx, "u", "Work/Old", 0)
	ok(t, err, "Changes after reopen")
	eqSlice(t, cs.Vanished, []uint32{4}, "expunge tombstones survive reopen")
	o, err := s.GetObject(ctx, cal.ID, "e.ics")
	ok(t, err, "object after reopen")
	eq(t, o.ETag, obj.ETag, "ETag after reopen")
	if o.Component != "VEVENT" || !o.Start.Equal(obj.Start) || !o.End.IsZero() {
		t.Fatalf("object index after reopen: %q [%v, %v), want VEVENT [%v, unbounded)", o.Component, o.Start, o.End, obj.Start)
	}
	found, err := s.QueryObjects(ctx, cal.ID, store.ObjectQuery{From: obj.Start.Add(time.Hour), Component: "VEVENT"})
	ok(t, err, "QueryObjects after reopen")
	eq(t, len(found), 1, "objects found by range after reopen")
	ch, tok2, err := s.ChangesSince(ctx, cal.ID, tok)
	ok(t, err, "sync token valid after reopen")
	eq(t, tok2, tok, "sync token after reopen")
	eq(t, len(ch), 0, "no changes since token")
	r, err := s.GetRecord(ctx, "ns", "k")
	ok(t, err, "record after reopen")
	eq(t, r.Version, int64(1), "record version")
	// A new mailbox after reopen still gets a fresh UIDVALIDITY.
	nb, err := s.CreateMailbox(ctx, "u", "Fresh", store.SpecialNone)
	ok(t, err, "create after reopen")
	for _, b := range afterBoxes {
		if b.UIDValidity == nb.UIDValidity {
			t.Fatalf("new mailbox reuses UIDVALIDITY %d of %s", nb.UIDValidity, b.Name)
		}
	}
	noProblems(t, s)
}
