package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/internal/pgtest"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/postgres"
	"github.com/mailyard/mailyard/store/sqlite"
)

// A client that synced before the copy resumes after it with nothing
// to do: a CalDAV client asking for the changes since a token it got
// before some edits and deletions (RFC 6578 §3.2) gets exactly those
// edits and deletions, and from the last token nothing; an IMAP client
// resynchronising with QRESYNC (RFC 7162 §3.2.5) from a MODSEQ before
// some expunges gets them as VANISHED (EARLIER), with the same
// UIDVALIDITY and a HIGHESTMODSEQ that did not go backwards. One change
// made after the copy is then reported alone, and a UID expunged before
// the copy is never given out again.
func TestStoreCopyKeepsSyncState(t *testing.T) {
	dsn := pgtest.FreshDB(t)
	d := newDataDir(t)
	ctx := context.Background()
	src, err := sqlite.Open(ctx, d, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const acct = "acct-sync"
	_, err = src.CreateAccount(ctx, acct, store.Quota{})
	must(err)

	// Mail: six messages; a client syncs (old state); then two expunges
	// and a flag change; the client's last state is taken after them.
	for i := range 6 {
		_, err := src.Append(ctx, acct, "INBOX", strings.NewReader(fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i)), store.AppendOptions{})
		must(err)
	}
	oldBox, err := src.Mailbox(ctx, acct, "INBOX")
	must(err)
	del := func(s store.Store, uids ...uint32) {
		t.Helper()
		var set store.UIDSet
		for _, u := range uids {
			set = append(set, store.UIDRange{Start: u, Stop: u})
		}
		_, err := s.StoreFlags(ctx, acct, "INBOX", store.StoreFlagsRequest{UIDs: set, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}})
		must(err)
		_, err = s.Expunge(ctx, acct, "INBOX", set)
		must(err)
	}
	del(src, 2, 4)
	_, err = src.StoreFlags(ctx, acct, "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 1, Stop: 1}}, Op: store.FlagsAdd, Flags: []string{store.FlagSeen}})
	must(err)
	box, err := src.Mailbox(ctx, acct, "INBOX")
	must(err)
	wantOld, err := src.Changes(ctx, acct, "INBOX", oldBox.HighestModSeq)
	must(err)
	if !slices.Equal(wantOld.Vanished, []uint32{2, 4}) {
		t.Fatalf("source: vanished since %d: %v", oldBox.HighestModSeq, wantOld.Vanished)
	}

	// Calendar: three events; a client syncs (old token); then an
	// edit, a deletion and a new event; the last token after them.
	cal, err := src.Collection(ctx, acct, store.KindCalendar, "calendar")
	must(err)
	event := func(uid, summary string) store.Object {
		return store.Object{Name: uid + ".ics", UID: uid, ContentType: "text/calendar", Component: "VEVENT",
			Data: []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:" + uid + "\r\nDTSTAMP:20200101T000000Z\r\nDTSTART:20200102T100000Z\r\nSUMMARY:" + summary + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")}
	}
	for _, uid := range []string{"a", "b", "c"} {
		_, err := src.PutObject(ctx, cal.ID, event(uid, "first"), store.PutOptions{})
		must(err)
	}
	_, oldToken, err := src.ChangesSince(ctx, cal.ID, 0)
	must(err)
	_, err = src.PutObject(ctx, cal.ID, event("a", "edited"), store.PutOptions{})
	must(err)
	must(src.DeleteObject(ctx, cal.ID, "b.ics", ""))
	_, err = src.PutObject(ctx, cal.ID, event("d", "new"), store.PutOptions{})
	must(err)
	wantLog, token, err := src.ChangesSince(ctx, cal.ID, oldToken)
	must(err)
	if len(wantLog) != 3 {
		t.Fatalf("source: changes since %d: %v", oldToken, wantLog)
	}
	src.Close()

	// The copy, killed on its first message and run again.
	copyOnce := func(left int) error {
		t.Helper()
		s, err := sqlite.Open(ctx, d, sqlite.Options{MustExist: true})
		must(err)
		defer s.Close()
		dst, err := postgres.Open(ctx, dsn, postgres.Options{})
		must(err)
		defer dst.Close()
		var target copyTarget = dst
		if left >= 0 {
			target = &dyingTarget{copyTarget: dst, left: left}
		}
		c := &copier{src: s, dst: target, out: io.Discard}
		if err := c.run(ctx); err != nil {
			return err
		}
		return c.verify(ctx)
	}
	if err := copyOnce(0); !errors.Is(err, errKilled) {
		t.Fatalf("first run: %v, want it killed", err)
	}
	must(copyOnce(-1))
	must(copyOnce(-1)) // a run over a complete copy changes nothing

	dst, err := postgres.Open(ctx, dsn, postgres.Options{MustExist: true})
	must(err)
	defer dst.Close()

	// IMAP: same UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ; QRESYNC from the
	// old MODSEQ gets the expunges and the flag change; from the last,
	// nothing.
	dbox, err := dst.Mailbox(ctx, acct, "INBOX")
	must(err)
	if dbox.UIDValidity != box.UIDValidity || dbox.UIDNext != box.UIDNext || dbox.HighestModSeq != box.HighestModSeq {
		t.Fatalf("target INBOX %+v, source %+v", dbox, box)
	}
	gotOld, err := dst.Changes(ctx, acct, "INBOX", oldBox.HighestModSeq)
	must(err)
	if !slices.Equal(gotOld.Vanished, wantOld.Vanished) || !slices.EqualFunc(gotOld.Changed, wantOld.Changed, sameMessage) {
		t.Fatalf("target: changes since %d: %+v, source %+v", oldBox.HighestModSeq, gotOld, wantOld)
	}
	if cs, err := dst.Changes(ctx, acct, "INBOX", box.HighestModSeq); err != nil || len(cs.Changed)+len(cs.Vanished) != 0 {
		t.Fatalf("target: changes since the last MODSEQ %d: %+v (%v), want none", box.HighestModSeq, cs, err)
	}

	// DAV: same token; the old token gets the three changes, the last
	// none.
	dcal, err := dst.Collection(ctx, acct, store.KindCalendar, "calendar")
	must(err)
	gotLog, dtoken, err := dst.ChangesSince(ctx, dcal.ID, oldToken)
	if err != nil || dtoken != token || !slices.Equal(gotLog, wantLog) {
		t.Fatalf("target: changes since the old token %d: %v at %d (%v); source %v at %d", oldToken, gotLog, dtoken, err, wantLog, token)
	}
	if ch, tok, err := dst.ChangesSince(ctx, dcal.ID, token); err != nil || len(ch) != 0 || tok != token {
		t.Fatalf("target: changes since the last token %d: %v at %d (%v), want none", token, ch, tok, err)
	}

	// One change after the copy, of each kind, is reported alone.
	_, err = dst.PutObject(ctx, dcal.ID, event("c", "after the copy"), store.PutOptions{})
	must(err)
	if ch, tok, err := dst.ChangesSince(ctx, dcal.ID, token); err != nil || !slices.Equal(ch, []store.ObjectChange{{Name: "c.ics"}}) || tok != token+1 {
		t.Fatalf("target: changes since %d after one edit: %v at %d (%v)", token, ch, tok, err)
	}
	del(dst, 5)
	if cs, err := dst.Changes(ctx, acct, "INBOX", box.HighestModSeq); err != nil || len(cs.Changed) != 0 || !slices.Equal(cs.Vanished, []uint32{5}) {
		t.Fatalf("target: changes since %d after one expunge: %+v (%v)", box.HighestModSeq, cs, err)
	}
	if b, _ := dst.Mailbox(ctx, acct, "INBOX"); b.HighestModSeq <= box.HighestModSeq {
		t.Fatalf("target HIGHESTMODSEQ %d after an expunge, was %d", b.HighestModSeq, box.HighestModSeq)
	}
	// UID 2, expunged in the source, is taken for good.
	if err := dst.ImportMessage(ctx, acct, "INBOX", store.Message{UID: 2, ModSeq: 1}, strings.NewReader("Subject: x\r\n\r\n")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("import of UID 2, expunged before the copy: %v, want ErrExists", err)
	}
}
