package sqlite

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// TestChangeCount: the numbers change with every write that affects the
// mailbox (or, for "", the account) before the write returns, and stay
// put for reads and for other mailboxes and accounts.
func TestChangeCount(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	mustAccount(t, s, "a", store.Quota{})
	mustAccount(t, s, "b", store.Quota{})
	if _, err := s.CreateMailbox(ctx, "a", "Other", store.SpecialNone); err != nil {
		t.Fatal(err)
	}
	type snap struct{ inbox, other, all, b uint64 }
	now := func() snap {
		return snap{s.ChangeCount("a", store.Inbox), s.ChangeCount("a", "Other"), s.ChangeCount("a", ""), s.ChangeCount("b", "")}
	}
	step := func(name string, wantInbox, wantOther bool, f func() error) {
		t.Helper()
		before := now()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		after := now()
		if (after.inbox != before.inbox) != wantInbox || (after.other != before.other) != wantOther {
			t.Errorf("%s: INBOX %d -> %d, Other %d -> %d; want changed %v, %v",
				name, before.inbox, after.inbox, before.other, after.other, wantInbox, wantOther)
		}
		if (after.all != before.all) != (wantInbox || wantOther) {
			t.Errorf("%s: account number %d -> %d", name, before.all, after.all)
		}
		if after.b != before.b {
			t.Errorf("%s: another account's number changed", name)
		}
	}
	msg := "From: x@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
	var uid uint32
	step("append", true, false, func() error {
		m, err := s.Append(ctx, "a", store.Inbox, strings.NewReader(msg), store.AppendOptions{})
		uid = m.UID
		return err
	})
	step("reads", false, false, func() error {
		if _, err := s.Status(ctx, "a", store.Inbox); err != nil {
			return err
		}
		_, err := s.ListMessages(ctx, "a", store.Inbox, nil)
		return err
	})
	step("flags", true, false, func() error {
		_, err := s.StoreFlags(ctx, "a", store.Inbox, store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: uid, Stop: uid}},
			Op: store.FlagsAdd, Flags: []string{store.FlagSeen}})
		return err
	})
	step("copy", false, true, func() error {
		_, err := s.Copy(ctx, "a", store.Inbox, "Other", store.UIDSet{{Start: uid, Stop: uid}})
		return err
	})
	step("subscribe", false, true, func() error { return s.SetSubscribed(ctx, "a", "Other", false) })
	step("expunge", true, false, func() error {
		if _, err := s.StoreFlags(ctx, "a", store.Inbox, store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: uid, Stop: uid}},
			Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
			return err
		}
		gone, err := s.Expunge(ctx, "a", store.Inbox, nil)
		if err == nil && len(gone) != 1 {
			t.Errorf("expunged %v", gone)
		}
		return err
	})
	step("rename", false, true, func() error { return s.RenameMailbox(ctx, "a", "Other", "Renamed") })
	step("recreate", false, true, func() error {
		_, err := s.CreateMailbox(ctx, "a", "Other", store.SpecialNone)
		return err
	})
	step("delete", false, true, func() error { return s.DeleteMailbox(ctx, "a", "Other") })
}

// TestReadStatementsUnderFullPool: read transactions that hold every
// connection of the pool and run statements not prepared yet finish (a
// statement prepared in the caller would wait for a connection forever).
func TestReadStatementsUnderFullPool(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{ReadConns: 2})
	mustAccount(t, s, "a", store.Quota{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				name := store.Inbox
				if (i+j)%2 == 1 {
					name = "Missing"
				}
				_, _ = s.Status(ctx, "a", name)
				if _, err := s.ListMessages(ctx, "a", store.Inbox, store.UIDSet{{Start: uint32(j + 1), Stop: uint32(j + 2 + i%5)}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
