package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strconv"
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
