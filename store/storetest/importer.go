package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// testImporter checks the optional store.Importer: mailboxes and
// messages keep the UIDVALIDITY, UIDs, MODSEQs, flags and dates given,
// a repeated import is refused without writing, and the store goes on
// from the imported high-water marks. Backends without it skip.
func testImporter(t *testing.T, open Opener) {
	s := open(t)
	imp, ok := s.(store.Importer)
	if !ok {
		t.Skip("the backend does not implement store.Importer")
	}
	ctx := context.Background()
	newAccount(t, s, "imp", store.Quota{})
	if _, err := imp.ImportMailbox(ctx, "nobody", store.Mailbox{Name: "INBOX", UIDValidity: 7}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ImportMailbox for a missing account: %v", err)
	}
	if _, err := imp.ImportMailbox(ctx, "imp", store.Mailbox{Name: "INBOX"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("ImportMailbox with UIDVALIDITY 0: %v", err)
	}
	// The default INBOX never gave out a UID: it takes the imported
	// UIDVALIDITY.
	want := store.Mailbox{Name: "INBOX", UIDValidity: 1234, UIDNext: 10, HighestModSeq: 50}
	mb, err := imp.ImportMailbox(ctx, "imp", want)
	if err != nil {
		t.Fatal(err)
	}
	if mb.UIDValidity != 1234 || mb.UIDNext != 10 || mb.HighestModSeq != 50 || mb.Name != "INBOX" {
		t.Fatalf("imported INBOX: %+v", mb)
	}
	arch, err := imp.ImportMailbox(ctx, "imp", store.Mailbox{Name: "Old/2020", SpecialUse: store.SpecialArchive, UIDValidity: 999, UIDNext: 4, HighestModSeq: 9})
	if err != nil {
		t.Fatal(err)
	}
	if arch.UIDValidity != 999 || arch.SpecialUse != store.SpecialArchive || arch.UIDNext != 4 {
		t.Fatalf("imported Old/2020: %+v", arch)
	}

	date := time.Date(2021, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3*3600))
	body := "Subject: imported\r\n\r\nbody\r\n"
	m := store.Message{UID: 3, ModSeq: 20, Flags: []string{"$Label1", `\Seen`}, InternalDate: date, Size: int64(len(body))}
	if err := imp.ImportMessage(ctx, "imp", "INBOX", m, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	// Again: refused, nothing written (a resumed copy skips it).
	if err := imp.ImportMessage(ctx, "imp", "INBOX", m, strings.NewReader(body)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second import of UID 3: %v, want ErrExists", err)
	}
	if err := imp.ImportMessage(ctx, "imp", "INBOX", store.Message{UID: 5, ModSeq: 21, InternalDate: date, Size: 99}, strings.NewReader(body)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("import with a wrong size: %v, want ErrInvalid", err)
	}
	if err := imp.ImportMessage(ctx, "imp", "INBOX", store.Message{UID: 0, ModSeq: 21, InternalDate: date}, strings.NewReader(body)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("import of UID 0: %v, want ErrInvalid", err)
	}
	if err := imp.ImportMessage(ctx, "imp", "Nope", m, strings.NewReader(body)); !errors.Is(err, store.ErrNoMailbox) {
		t.Fatalf("import into a missing mailbox: %v, want ErrNoMailbox", err)
	}
	u, _, err := s.Usage(ctx, "imp")
	if err != nil || u.Messages != 1 || u.Bytes != int64(len(body)) {
		t.Fatalf("usage after one import: %+v, %v", u, err)
	}
	got, err := s.ListMessages(ctx, "imp", "INBOX", nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("ListMessages: %v, %+v", err, got)
	}
	g := got[0]
	if g.UID != 3 || g.ModSeq != 20 || !slices.Equal(g.Flags, []string{"$Label1", `\Seen`}) || !g.InternalDate.Equal(date) || g.Size != int64(len(body)) {
		t.Fatalf("imported message reads back as %+v", g)
	}
	if _, off := g.InternalDate.Zone(); off != 3*3600 {
		t.Fatalf("INTERNALDATE zone offset %d, want %d", off, 3*3600)
	}
	eq(t, readBody(t, s, "imp", "INBOX", 3), body, "imported body")

	// A UID above UIDNEXT raises it, a MODSEQ above HIGHESTMODSEQ too.
	if err := imp.ImportMessage(ctx, "imp", "INBOX", store.Message{UID: 12, ModSeq: 60, InternalDate: date}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if mb, err = s.Mailbox(ctx, "imp", "INBOX"); err != nil || mb.UIDNext != 13 || mb.HighestModSeq != 60 || mb.UIDValidity != 1234 {
		t.Fatalf("INBOX after importing UID 12: %+v, %v", mb, err)
	}
	// Importing the mailbox again with its old values lowers nothing.
	if mb, err = imp.ImportMailbox(ctx, "imp", want); err != nil || mb.UIDNext != 13 || mb.HighestModSeq != 60 {
		t.Fatalf("INBOX imported again: %+v, %v", mb, err)
	}
	// The store goes on from there.
	app, err := s.Append(ctx, "imp", "INBOX", strings.NewReader(body), store.AppendOptions{})
	if err != nil || app.UID != 13 || app.ModSeq <= 60 {
		t.Fatalf("Append after import: %+v, %v", app, err)
	}
	// A mailbox that gave out UIDs keeps its UIDVALIDITY.
	if _, err := imp.ImportMailbox(ctx, "imp", store.Mailbox{Name: "INBOX", UIDValidity: 4321}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("ImportMailbox changing a used INBOX's UIDVALIDITY: %v, want ErrExists", err)
	}
	// An expunged UID is never imported again.
	if _, err := s.StoreFlags(ctx, "imp", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 3, Stop: 3}}, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, "imp", "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	if err := imp.ImportMessage(ctx, "imp", "INBOX", m, strings.NewReader(body)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("import of an expunged UID: %v, want ErrExists", err)
	}
	// Mailboxes created later get UIDVALIDITYs above every imported one.
	if _, err := imp.ImportMailbox(ctx, "imp", store.Mailbox{Name: "Far", UIDValidity: 4_000_000_000}); err != nil {
		t.Fatal(err)
	}
	n, err := s.CreateMailbox(ctx, "imp", "New", store.SpecialNone)
	if err != nil {
		t.Fatal(err)
	}
	if n.UIDValidity <= 4_000_000_000 {
		t.Fatalf("mailbox created after import has UIDVALIDITY %d, not above the imported 4000000000", n.UIDValidity)
	}
	noProblems(t, s)
}

// testImportSyncToken checks Importer.ImportSyncToken: the collection
// takes the token, a client holding it sees no change, older tokens are
// invalid, the token never goes back, and later changes count on from
// it.
func testImportSyncToken(t *testing.T, open Opener) {
	s := open(t)
	imp, ok := s.(store.Importer)
	if !ok {
		t.Skip("the backend does not implement store.Importer")
	}
	ctx := context.Background()
	newAccount(t, s, "tok", store.Quota{})
	c, err := s.Collection(ctx, "tok", store.KindCalendar, "calendar")
	if err != nil {
		t.Fatal(err)
	}
	ev := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:e1\r\nDTSTART:20260101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	o, err := s.PutObject(ctx, c.ID, store.Object{Name: "e1.ics", UID: "e1", Data: []byte(ev), Component: "VEVENT"}, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := imp.ImportSyncToken(ctx, c.ID, 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("ImportSyncToken 0: %v, want ErrInvalid", err)
	}
	if err := imp.ImportSyncToken(ctx, 1<<40, 5); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ImportSyncToken of a missing collection: %v, want ErrNotFound", err)
	}
	if err := imp.ImportSyncToken(ctx, c.ID, 77); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Collection(ctx, "tok", store.KindCalendar, "calendar"); err != nil || got.SyncToken != 77 {
		t.Fatalf("collection after ImportSyncToken 77: %+v, %v", got, err)
	}
	ch, tok, err := s.ChangesSince(ctx, c.ID, 77)
	if err != nil || len(ch) != 0 || tok != 77 {
		t.Fatalf("ChangesSince(77) after the import: %v %d %v, want nothing at 77", ch, tok, err)
	}
	if _, _, err := s.ChangesSince(ctx, c.ID, 2); !errors.Is(err, store.ErrSyncTokenInvalid) {
		t.Fatalf("ChangesSince of a token before the import: %v, want ErrSyncTokenInvalid", err)
	}
	if err := imp.ImportSyncToken(ctx, c.ID, 76); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("ImportSyncToken going back: %v, want ErrInvalid", err)
	}
	if got, err := s.GetObject(ctx, c.ID, "e1.ics"); err != nil || got.ETag != o.ETag {
		t.Fatalf("object after the import: %+v %v, ETag %q", got, err, o.ETag)
	}
	if err := s.DeleteObject(ctx, c.ID, "e1.ics", ""); err != nil {
		t.Fatal(err)
	}
	ch, tok, err = s.ChangesSince(ctx, c.ID, 77)
	if err != nil || tok != 78 || len(ch) != 1 || ch[0].Name != "e1.ics" || !ch[0].Deleted {
		t.Fatalf("ChangesSince(77) after a delete: %v %d %v, want e1.ics deleted at 78", ch, tok, err)
	}
}
