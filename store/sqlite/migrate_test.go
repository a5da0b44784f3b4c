package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// TestMigrateFromV1 opens a database written by schema version 1 (built
// here with that version's DDL and rows as it wrote them) and checks that
// its data survives the migration: subscribed flags become subscriptions,
// INTERNALDATE reads as before (UTC), and the migrated store works.
func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "mail.db")+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	date := time.Date(2007, 3, 24, 22, 0, 0, 0, time.UTC)
	for _, q := range []string{
		schemaV1,
		"PRAGMA user_version = 1",
		"INSERT INTO accounts (id, used_bytes, used_messages, created) VALUES ('u', 5, 1, 0)",
		`INSERT INTO mailboxes (id, account, name, subscribed, uidvalidity, uidnext, highest_modseq) VALUES
			(1, 'u', 'INBOX', 1, 100, 2, 2), (2, 'u', 'Old', 1, 101, 1, 1), (3, 'u', 'Plain', 0, 102, 1, 1)`,
		"INSERT INTO messages (mailbox, uid, modseq, flags, internal_date, size, blob_id) VALUES (1, 1, 2, '\\Seen', " +
			strconv.FormatInt(date.UnixNano(), 10) + ", 5, 'b1')",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, dir, Options{})
	var v int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("user_version %d (%v), want %d", v, err, schemaVersion)
	}
	subs, err := s.Subscriptions(ctx, "u")
	if err != nil || !slices.Equal(subs, []string{"INBOX", "Old"}) {
		t.Fatalf("subscriptions after migration %v (%v), want [INBOX Old]", subs, err)
	}
	mbs, err := s.ListMailboxes(ctx, "u")
	if err != nil || len(mbs) != 3 {
		t.Fatalf("mailboxes %v (%v)", mbs, err)
	}
	for i, want := range []store.Mailbox{
		{ID: 1, Name: "INBOX", Subscribed: true, UIDValidity: 100, UIDNext: 2, HighestModSeq: 2},
		{ID: 2, Name: "Old", Subscribed: true, UIDValidity: 101, UIDNext: 1, HighestModSeq: 1},
		{ID: 3, Name: "Plain", UIDValidity: 102, UIDNext: 1, HighestModSeq: 1},
	} {
		if mbs[i] != want {
			t.Fatalf("mailbox %d after migration %+v, want %+v", i, mbs[i], want)
		}
	}
	msgs, err := s.ListMessages(ctx, "u", "INBOX", nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages %v (%v)", msgs, err)
	}
	m := msgs[0]
	if m.UID != 1 || m.ModSeq != 2 || !slices.Equal(m.Flags, []string{store.FlagSeen}) || m.Size != 5 || m.BlobID != "b1" {
		t.Fatalf("message after migration %+v", m)
	}
	if !m.InternalDate.Equal(date) || m.InternalDate.Location() != time.UTC {
		t.Fatalf("old internal date %v, want %v in UTC (+0000)", m.InternalDate, date)
	}
	// Version 6 counted the messages that were there (STATUS counts).
	if st, err := s.Status(ctx, "u", "INBOX"); err != nil || st.Messages != 1 || st.Unseen != 0 || st.Deleted != 0 || st.Size != 5 {
		t.Fatalf("status after migration %+v (%v), want 1 message, 0 unseen, 5 bytes", st, err)
	}
	if !m.SaveDate.IsZero() {
		t.Fatalf("save date of a message from version 1 %v, want zero (unknown)", m.SaveDate)
	}

	// The migrated store works like a new one.
	if err := s.DeleteMailbox(ctx, "u", "Old"); err != nil {
		t.Fatal(err)
	}
	if subs, _ := s.Subscriptions(ctx, "u"); !slices.Equal(subs, []string{"INBOX", "Old"}) {
		t.Fatalf("subscriptions after DELETE %v, want Old kept", subs)
	}
	zoned := time.Date(2007, 3, 25, 0, 0, 0, 0, time.FixedZone("", 2*3600))
	a, err := s.Append(ctx, "u", "Plain", bytes.NewReader([]byte("hello")), store.AppendOptions{InternalDate: zoned})
	if err != nil {
		t.Fatal(err)
	}
	if _, off := a.InternalDate.Zone(); off != 2*3600 || !a.InternalDate.Equal(zoned) {
		t.Fatalf("appended internal date %v, want %v", a.InternalDate, zoned)
	}
	s.Close()

	// Opening again migrates nothing and keeps everything.
	s = openTest(t, dir, Options{})
	if subs, _ := s.Subscriptions(ctx, "u"); !slices.Equal(subs, []string{"INBOX", "Old"}) {
		t.Fatalf("subscriptions after reopen %v", subs)
	}
	msgs, err = s.ListMessages(ctx, "u", "Plain", nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages after reopen %v (%v)", msgs, err)
	}
	if _, off := msgs[0].InternalDate.Zone(); off != 2*3600 {
		t.Fatalf("zone after reopen %v", msgs[0].InternalDate)
	}
}

// TestMigrateFailureChangesNothing: a migration that fails leaves the
// database at its old version, readable by the old program.
func TestMigrateFailureChangesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "mail.db")+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		schemaV1,
		"PRAGMA user_version = 1",
		// A table in the way makes migration 2 fail half-way.
		"CREATE TABLE subscriptions (x INTEGER)",
		"INSERT INTO accounts (id, created) VALUES ('u', 0)",
		"INSERT INTO mailboxes (account, name, subscribed, uidvalidity) VALUES ('u', 'INBOX', 1, 1)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if s, err := Open(ctx, dir, Options{}); err == nil {
		s.Close()
		t.Fatal("Open succeeded despite a failing migration")
	}
	var v, sub int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != 1 {
		t.Fatalf("user_version %d (%v) after failed migration, want 1", v, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT subscribed FROM mailboxes WHERE name = 'INBOX'").Scan(&sub); err != nil || sub != 1 {
		t.Fatalf("v1 data after failed migration: %d (%v)", sub, err)
	}
}

// TestMigrateFromV2 opens a database of schema version 2, whose objects
// have no index of component and bounds, and checks that they come
// through unbounded (so every time-range query returns them, for the
// caller to filter), and that the next PUT of an object indexes it.
func TestMigrateFromV2(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rawDB(t, dir, schemaV1, migrationV2, "PRAGMA user_version = 2",
		"PRAGMA application_id = "+strconv.Itoa(applicationID),
		"INSERT INTO accounts (id, created) VALUES ('u', 0)",
		"INSERT INTO collections (id, account, kind, name, sync_token) VALUES (7, 'u', 'calendar', 'calendar', 3)",
		`INSERT INTO objects (collection, name, uid, etag, content_type, data, size, modified) VALUES
			(7, 'a.ics', 'a', 'ea', 'text/calendar', 'BEGIN:VCALENDAR a', 17, 0),
			(7, 'b.ics', 'b', 'eb', 'text/calendar', 'BEGIN:VCALENDAR b', 17, 0)`)
	s := openTest(t, dir, Options{})
	var v int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("user_version %d (%v), want %d", v, err, schemaVersion)
	}
	o, err := s.GetObject(ctx, 7, "a.ics")
	if err != nil || o.Component != "" || !o.Start.IsZero() || !o.End.IsZero() || o.ETag != "ea" {
		t.Fatalf("old object after migration %+v (%v), want no component and unbounded", o, err)
	}
	march := store.ObjectQuery{From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}
	names := func(q store.ObjectQuery) string {
		t.Helper()
		objs, err := s.QueryObjects(ctx, 7, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range objs {
			out = append(out, o.Name+"="+string(o.Data))
		}
		return strings.Join(out, ",")
	}
	if got := names(march); got != "a.ics=BEGIN:VCALENDAR a,b.ics=BEGIN:VCALENDAR b" {
		t.Fatalf("March after migration: %s, want both old objects with data", got)
	}
	_, err = s.PutObject(ctx, 7, store.Object{Name: "a.ics", UID: "a", Data: []byte("new"), Component: "VEVENT",
		Start: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)}, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(march); got != "b.ics=BEGIN:VCALENDAR b" {
		t.Fatalf("March after a PUT gave a.ics May bounds: %s, want b.ics only", got)
	}
	march.Component = "VEVENT"
	if got := names(march); got != "b.ics=BEGIN:VCALENDAR b" {
		t.Fatalf("March VEVENTs: %s, want b.ics (unknown component)", got)
	}
	march.Component = "VTODO"
	march.From, march.To = march.From.AddDate(0, 2, 0), march.To.AddDate(0, 2, 0)
	if got := names(march); got != "b.ics=BEGIN:VCALENDAR b" {
		t.Fatalf("May VTODOs: %s, want b.ics only (a.ics is a VEVENT now)", got)
	}
}
