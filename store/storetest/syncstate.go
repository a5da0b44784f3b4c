package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// fillSyncState makes an account whose INBOX has expunge tombstones
// (UIDs 2 and 4 of 5) and whose calendar's change log holds puts, an
// edit and a deletion. It returns the calendar.
func fillSyncState(t *testing.T, s store.Store, acct string) store.Collection {
	t.Helper()
	ctx := context.Background()
	newAccount(t, s, acct, store.Quota{})
	for i := range 5 {
		appendMsg(t, s, acct, "INBOX", fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i))
	}
	for _, uid := range []uint32{2, 4} {
		set := store.UIDSet{{Start: uid, Stop: uid}}
		if _, err := s.StoreFlags(ctx, acct, "INBOX", store.StoreFlagsRequest{UIDs: set, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Expunge(ctx, acct, "INBOX", set); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.Collection(ctx, acct, store.KindCalendar, "calendar")
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a", "b", "a", "c"} {
		ev := fmt.Sprintf("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:%s\r\nDTSTART:20260101T100000Z\r\nSUMMARY:%d\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", name, i)
		if _, err := s.PutObject(ctx, c.ID, store.Object{Name: name + ".ics", UID: name, Data: []byte(ev), Component: "VEVENT"}, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteObject(ctx, c.ID, "b.ics", ""); err != nil {
		t.Fatal(err)
	}
	return c
}

// testExporter checks the optional store.Exporter against what
// Changes and ChangesSince report: every tombstone with the MODSEQ of
// its expunge, and the change log entry by entry. Backends without it
// skip.
func testExporter(t *testing.T, open Opener) {
	s := open(t)
	exp, ok := s.(store.Exporter)
	if !ok {
		t.Skip("the backend does not implement store.Exporter")
	}
	ctx := context.Background()
	c := fillSyncState(t, s, "exp")
	ts, err := exp.Tombstones(ctx, "exp", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].UID != 2 || ts[1].UID != 4 || ts[0].ModSeq >= ts[1].ModSeq {
		t.Fatalf("tombstones: %+v, want UIDs 2 and 4, expunged in that order", ts)
	}
	for _, tb := range ts {
		// VANISHED since just before the expunge holds the UID; since
		// it, not.
		before, err := s.Changes(ctx, "exp", "INBOX", tb.ModSeq-1)
		if err != nil || !slices.Contains(before.Vanished, tb.UID) {
			t.Fatalf("vanished since %d: %v (%v), want UID %d", tb.ModSeq-1, before.Vanished, err, tb.UID)
		}
		at, err := s.Changes(ctx, "exp", "INBOX", tb.ModSeq)
		if err != nil || slices.Contains(at.Vanished, tb.UID) {
			t.Fatalf("vanished since %d: %v (%v), without UID %d", tb.ModSeq, at.Vanished, err, tb.UID)
		}
	}
	if _, err := exp.Tombstones(ctx, "exp", "Nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tombstones of a missing mailbox: %v, want ErrNoMailbox", err)
	}
	log, err := exp.ChangeLog(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Collection(ctx, "exp", store.KindCalendar, "calendar")
	if err != nil {
		t.Fatal(err)
	}
	if log.SyncToken != got.SyncToken || len(log.Changes) != 5 || log.Changes[4].Token != log.SyncToken ||
		log.Changes[4].Name != "b.ics" || !log.Changes[4].Deleted || log.Changes[2].Name != "a.ics" || log.Changes[2].Deleted {
		t.Fatalf("change log %+v, collection token %d", log, got.SyncToken)
	}
	for i := 1; i < len(log.Changes); i++ {
		if log.Changes[i].Token <= log.Changes[i-1].Token || log.Changes[0].Token <= log.Pruned {
			t.Fatalf("change log not ascending from %d: %+v", log.Pruned, log.Changes)
		}
	}
	if _, err := exp.ChangeLog(ctx, 1<<40); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("change log of a missing collection: %v, want ErrNotFound", err)
	}
}

// testImportSyncState checks Importer.ImportTombstones and
// ImportChangeLog: what one store exports another imports, after which
// both answer QRESYNC (VANISHED) and sync-collection (RFC 6578) alike
// for every MODSEQ and token, a repeated import changes nothing, bad
// imports are refused, and changes made afterwards are reported alone.
// Backends without both interfaces skip.
func testImportSyncState(t *testing.T, open Opener) {
	s := open(t)
	imp, ok := s.(store.Importer)
	exp, ok2 := s.(store.Exporter)
	if !ok || !ok2 {
		t.Skip("the backend does not implement store.Importer and store.Exporter")
	}
	ctx := context.Background()
	c := fillSyncState(t, s, "from")
	box, err := s.Mailbox(ctx, "from", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := exp.Tombstones(ctx, "from", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	log, err := exp.ChangeLog(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}

	// The mailbox: its messages imported as they are, then the
	// tombstones (twice: a resumed copy).
	newAccount(t, s, "to", store.Quota{})
	if _, err := imp.ImportMailbox(ctx, "to", box); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.ListMessages(ctx, "from", "INBOX", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := imp.ImportMessage(ctx, "to", "INBOX", m, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", m.UID-1))); err != nil {
			t.Fatal(err)
		}
	}
	if err := imp.ImportTombstones(ctx, "to", "INBOX", []store.Tombstone{{UID: 1, ModSeq: 3}}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("tombstone for UID 1, a message: %v, want ErrExists", err)
	}
	if err := imp.ImportTombstones(ctx, "to", "INBOX", []store.Tombstone{{UID: 7, ModSeq: 0}}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("tombstone with MODSEQ 0: %v, want ErrInvalid", err)
	}
	if err := imp.ImportTombstones(ctx, "to", "Nope", ts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tombstones for a missing mailbox: %v, want ErrNoMailbox", err)
	}
	for range 2 {
		if err := imp.ImportTombstones(ctx, "to", "INBOX", ts); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := exp.Tombstones(ctx, "to", "INBOX"); err != nil || !slices.Equal(got, ts) {
		t.Fatalf("imported tombstones %+v (%v), want %+v", got, err, ts)
	}
	for since := uint64(0); since <= box.HighestModSeq; since++ {
		want, _ := s.Changes(ctx, "from", "INBOX", since)
		got, err := s.Changes(ctx, "to", "INBOX", since)
		if err != nil || !slices.Equal(got.Vanished, want.Vanished) || len(got.Changed) != len(want.Changed) {
			t.Fatalf("changes since %d: %+v (%v), source %+v", since, got, err, want)
		}
	}
	if err := imp.ImportMessage(ctx, "to", "INBOX", store.Message{UID: 4, ModSeq: 2}, strings.NewReader("x")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("import of UID 4 after its tombstone: %v, want ErrExists", err)
	}
	// A tombstone past UIDNEXT and HIGHESTMODSEQ raises both.
	if err := imp.ImportTombstones(ctx, "to", "INBOX", []store.Tombstone{{UID: 9, ModSeq: 500}}); err != nil {
		t.Fatal(err)
	}
	if mb, err := s.Mailbox(ctx, "to", "INBOX"); err != nil || mb.UIDNext != 10 || mb.HighestModSeq != 500 {
		t.Fatalf("mailbox after a tombstone for UID 9 at MODSEQ 500: %+v (%v)", mb, err)
	}
	m := appendMsg(t, s, "to", "INBOX", "Subject: after\r\n\r\nx\r\n")
	if m.UID != 10 || m.ModSeq <= 500 {
		t.Fatalf("append after the import: UID %d MODSEQ %d, want 10 and above 500", m.UID, m.ModSeq)
	}

	// The collection: a new one gets the log (twice: a resumed copy).
	dc, err := s.CreateCollection(ctx, store.Collection{Account: "to", Kind: store.KindCalendar, Name: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	bad := log
	bad.Changes = slices.Clone(log.Changes)
	bad.Changes[1], bad.Changes[2] = bad.Changes[2], bad.Changes[1]
	if err := imp.ImportChangeLog(ctx, dc.ID, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("change log out of order: %v, want ErrInvalid", err)
	}
	if err := imp.ImportChangeLog(ctx, 1<<40, log); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("change log of a missing collection: %v, want ErrNotFound", err)
	}
	for range 2 {
		if err := imp.ImportChangeLog(ctx, dc.ID, log); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := exp.ChangeLog(ctx, dc.ID); err != nil || got.SyncToken != log.SyncToken || got.Pruned != log.Pruned || !slices.Equal(got.Changes, log.Changes) {
		t.Fatalf("imported change log %+v (%v), want %+v", got, err, log)
	}
	for tok := max(log.Pruned, 1); tok <= log.SyncToken; tok++ {
		want, wtok, _ := s.ChangesSince(ctx, c.ID, tok)
		got, gtok, err := s.ChangesSince(ctx, dc.ID, tok)
		if err != nil || gtok != wtok || !slices.Equal(got, want) {
			t.Fatalf("changes since %d: %v at %d (%v), source %v at %d", tok, got, gtok, err, want, wtok)
		}
	}
	lower := log
	lower.SyncToken, lower.Changes = log.SyncToken-1, nil
	lower.Pruned = min(lower.Pruned, lower.SyncToken)
	if err := imp.ImportChangeLog(ctx, dc.ID, lower); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("change log going back: %v, want ErrInvalid", err)
	}
	ev := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:z\r\nDTSTART:20260101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	if _, err := s.PutObject(ctx, dc.ID, store.Object{Name: "z.ics", UID: "z", Data: []byte(ev), Component: "VEVENT"}, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if ch, tok, err := s.ChangesSince(ctx, dc.ID, log.SyncToken); err != nil || tok != log.SyncToken+1 || !slices.Equal(ch, []store.ObjectChange{{Name: "z.ics"}}) {
		t.Fatalf("changes since the imported token after one put: %v at %d (%v)", ch, tok, err)
	}
	noProblems(t, s)
}
