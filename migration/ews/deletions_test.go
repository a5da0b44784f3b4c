package ews_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/textproto"
	"slices"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// byMessageID is a target mailbox's messages by Message-ID.
func byMessageID(t *testing.T, st *sqlite.Store, account, mailbox string) map[string]store.Message {
	t.Helper()
	ctx := t.Context()
	msgs, err := st.ListMessages(ctx, account, mailbox, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Message{}
	for _, m := range msgs {
		body, err := st.OpenBody(ctx, account, mailbox, m.UID)
		if err != nil {
			t.Fatal(err)
		}
		h, err := textproto.NewReader(bufio.NewReader(body)).ReadMIMEHeader()
		body.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[h.Get("Message-Id")] = m
	}
	return out
}

// TestMigrateSourceDeletions: with SourceDeletions, a later pass removes
// the copies of messages deleted in Exchange that are as the migration
// left them (unread, read or flagged by the migration, and deleted on
// the source right after a read-state change), and keeps a copy the user
// flagged and one the user moved; the pass after that removes nothing
// more. Without it (the default), a deletion in Exchange leaves the copy.
func TestMigrateSourceDeletions(t *testing.T) {
	srv := newTestServer(t, ewstest.Options{})
	ctx := t.Context()
	base := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	ids := map[string]ews.ItemID{}
	for i, name := range []string{"plain", "read", "flagged", "read-then-deleted", "user-flagged", "user-moved", "stays"} {
		raw := fmt.Sprintf("From: anna@example.test\r\nTo: bob@example.org\r\nSubject: %s\r\nMessage-ID: <%s@example.test>\r\nDate: Mon, 5 Jan 2026 08:00:00 +0000\r\n\r\nbody %d\r\n", name, name, i)
		id, err := srv.ews.AddMessage(owner, "inbox", []byte(raw), name == "read", name == "flagged", base.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		ids["<"+name+"@example.test>"] = ews.ItemID{ID: id}
	}
	st, users, account := newTarget(t)
	client := srv.client(t, nil)
	migrator := func(deletions bool) *ews.Migrator {
		m, err := ews.NewMigrator(ews.MigratorOptions{Store: st, Directory: users, Client: client, PageSize: 3, SourceDeletions: deletions})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := migrator(true)
	pass := func(what string) ews.Result {
		t.Helper()
		res, err := m.Sync(context.Background(), testJob)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return res
	}
	if res := pass("first pass"); res.Messages != 7 || res.Deleted != 0 {
		t.Fatalf("first pass: %+v", res)
	}
	inbox := byMessageID(t, st, account, store.Inbox)
	if len(inbox) != 7 || !slices.Equal(inbox["<flagged@example.test>"].Flags, []string{store.FlagFlagged}) {
		t.Fatalf("after the first pass: %+v", inbox)
	}

	// The user's changes in Mailyard: a flag, and a move to a mailbox
	// of their own.
	one := func(id string) store.UIDSet { uid := inbox[id].UID; return store.UIDSet{{Start: uid, Stop: uid}} }
	if _, err := st.StoreFlags(ctx, account, store.Inbox, store.StoreFlagsRequest{UIDs: one("<user-flagged@example.test>"), Op: store.FlagsAdd, Flags: []string{store.FlagFlagged}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateMailbox(ctx, account, "Keep", store.SpecialNone); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Move(ctx, account, store.Inbox, "Keep", one("<user-moved@example.test>")); err != nil {
		t.Fatal(err)
	}

	// Deletions in Exchange: every message but the last; one is marked
	// read just before (the copy gets \Seen, then goes).
	mb := client.Mailbox(owner)
	e := &migrateEnv{srv: srv}
	e.setRead(t, ids["<read-then-deleted@example.test>"], true)
	for id, item := range ids {
		if id != "<stays@example.test>" && id != "<read-then-deleted@example.test>" {
			if err := mb.DeleteItem(ctx, item); err != nil {
				t.Fatal(err)
			}
		}
	}
	// DeleteItem moves them to Deleted Items: their copies go, and the
	// items new in Deleted Items are copied to Trash.
	if res := pass("pass after the first deletions"); res.Deleted != 3 || res.Messages != 5 {
		t.Errorf("pass after the first deletions: %d deleted, %d copied, want 3 and 5", res.Deleted, res.Messages)
	}
	if err := mb.DeleteItem(ctx, ids["<read-then-deleted@example.test>"]); err != nil {
		t.Fatal(err)
	}
	if res := pass("pass after the read one's deletion"); res.Deleted != 1 || res.Messages != 1 {
		t.Errorf("pass after the read one's deletion: %d deleted, %d copied, want 1 and 1", res.Deleted, res.Messages)
	}
	inbox = byMessageID(t, st, account, store.Inbox)
	if got := sortedKeys(inbox); !slices.Equal(got, []string{"<stays@example.test>", "<user-flagged@example.test>"}) {
		t.Errorf("INBOX after the deletions: %v, want the copy the user flagged and the one still in Exchange", got)
	}
	if !slices.Equal(inbox["<user-flagged@example.test>"].Flags, []string{store.FlagFlagged}) {
		t.Errorf("the user's flagged copy: %v", inbox["<user-flagged@example.test>"].Flags)
	}
	if got := sortedKeys(byMessageID(t, st, account, "Keep")); !slices.Equal(got, []string{"<user-moved@example.test>"}) {
		t.Errorf("Keep: %v, want the copy the user moved", got)
	}
	trash := sortedKeys(byMessageID(t, st, account, "Trash"))
	if want := []string{"<flagged@example.test>", "<plain@example.test>", "<read-then-deleted@example.test>", "<read@example.test>",
		"<user-flagged@example.test>", "<user-moved@example.test>"}; !slices.Equal(trash, want) {
		t.Errorf("Trash: %v, want %v", trash, want)
	}
	if res := pass("a pass with nothing new"); res.Deleted != 0 || res.Messages != 0 {
		t.Errorf("a pass with nothing new: %d deleted, %d copied", res.Deleted, res.Messages)
	}

	// Emptying Deleted Items in Exchange (hard deletions) empties Trash:
	// its copies are as the migration made them.
	e.client = client
	for _, id := range e.itemIDs(t, ews.FolderRef{Distinguished: "deleteditems"}) {
		e.soap(t, `<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="`+id.ID+`"/></m:ItemIds></m:DeleteItem>`)
	}
	if res := pass("a pass after emptying Deleted Items"); res.Deleted != 6 || res.Messages != 0 {
		t.Errorf("a pass after emptying Deleted Items: %d deleted, %d copied, want 6 and 0", res.Deleted, res.Messages)
	}
	if trash := byMessageID(t, st, account, "Trash"); len(trash) != 0 {
		t.Errorf("Trash after Deleted Items was emptied: %v", sortedKeys(trash))
	}

	// Without SourceDeletions the copy stays.
	m = migrator(false)
	if err := mb.DeleteItem(ctx, ids["<stays@example.test>"]); err != nil {
		t.Fatal(err)
	}
	if res := pass("a pass without SourceDeletions"); res.Deleted != 0 || res.Messages != 1 {
		t.Errorf("a pass without SourceDeletions: %d deleted, %d copied, want 0 and 1 (into Trash)", res.Deleted, res.Messages)
	}
	if _, ok := byMessageID(t, st, account, store.Inbox)["<stays@example.test>"]; !ok {
		t.Error("without SourceDeletions, a message deleted in Exchange was removed from its copy's mailbox")
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
