package storetest

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// testMissingTargets checks the error contract of store.Mailboxes and
// store.Messages for what does not exist: a missing mailbox is
// ErrNoMailbox in every message call, a missing account ErrNotFound but
// not ErrNoMailbox, and a missing message ErrNoMessage.
func testMissingTargets(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	m := appendMsg(t, s, "u", "INBOX", "x")
	calls := map[string]func(acct, box string) error{
		"Append": func(acct, box string) error {
			_, err := s.Append(ctx, acct, box, bytes.NewReader([]byte("y")), store.AppendOptions{})
			return err
		},
		"ListMessages": func(acct, box string) error { _, err := s.ListMessages(ctx, acct, box, nil); return err },
		"Search":       func(acct, box string) error { _, err := s.Search(ctx, acct, box, store.SearchCriteria{}); return err },
		"OpenBody": func(acct, box string) error {
			rc, err := s.OpenBody(ctx, acct, box, m.UID)
			if err == nil {
				rc.Close()
			}
			return err
		},
		"StoreFlags": func(acct, box string) error {
			_, err := s.StoreFlags(ctx, acct, box, store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{store.FlagSeen}})
			return err
		},
		"Expunge":       func(acct, box string) error { _, err := s.Expunge(ctx, acct, box, nil); return err },
		"Copy from":     func(acct, box string) error { _, err := s.Copy(ctx, acct, box, "INBOX", nil); return err },
		"Copy to":       func(acct, box string) error { _, err := s.Copy(ctx, acct, "INBOX", box, nil); return err },
		"Move from":     func(acct, box string) error { _, err := s.Move(ctx, acct, box, "INBOX", nil); return err },
		"Move to":       func(acct, box string) error { _, err := s.Move(ctx, acct, "INBOX", box, nil); return err },
		"Changes":       func(acct, box string) error { _, err := s.Changes(ctx, acct, box, 0); return err },
		"Status":        func(acct, box string) error { _, err := s.Status(ctx, acct, box); return err },
		"DeleteMailbox": func(acct, box string) error { return s.DeleteMailbox(ctx, acct, box) },
	}
	for name, call := range calls {
		isErr(t, call("u", "Nope"), store.ErrNoMailbox, "%s on a missing mailbox", name)
		err := call("ghost", "Nope")
		isErr(t, err, store.ErrNotFound, "%s for a missing account", name)
		if errors.Is(err, store.ErrNoMailbox) {
			t.Fatalf("%s for a missing account: %v, want ErrNotFound without ErrNoMailbox", name, err)
		}
	}
	_, err := s.OpenBody(ctx, "u", "INBOX", m.UID+1)
	isErr(t, err, store.ErrNoMessage, "OpenBody of a UID never given out")
	eq(t, readBody(t, s, "u", "INBOX", m.UID), "x", "the message is untouched")
	noProblems(t, s)
}

// testOpenBodyExpunged checks store.Messages.OpenBody: a body once open
// reads whole even if its message is expunged meanwhile (also when it
// was the last copy), and an expunged message is ErrNoMessage.
func testOpenBodyExpunged(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	m, err := s.Append(ctx, "u", "INBOX", bytes.NewReader(body), store.AppendOptions{Flags: []string{store.FlagDeleted}})
	ok(t, err, "Append")
	rc, err := s.OpenBody(ctx, "u", "INBOX", m.UID)
	ok(t, err, "OpenBody")
	defer rc.Close()
	head := make([]byte, 10)
	_, err = io.ReadFull(rc, head)
	ok(t, err, "read the first bytes")
	gone, err := s.Expunge(ctx, "u", "INBOX", nil)
	ok(t, err, "Expunge")
	eqSlice(t, gone, []uint32{m.UID}, "expunged")
	rest, err := io.ReadAll(rc)
	ok(t, err, "read the rest after the expunge")
	if !bytes.Equal(append(head, rest...), body) {
		t.Fatalf("body read across an expunge differs: %d bytes, want %d", len(head)+len(rest), len(body))
	}
	ok(t, rc.Close(), "Close")
	_, err = s.OpenBody(ctx, "u", "INBOX", m.UID)
	isErr(t, err, store.ErrNoMessage, "OpenBody of an expunged message")
	noProblems(t, s)
}

// sorted returns s in ascending order, for results whose order the
// store contract leaves open: ChangeSet.Changed and Vanished,
// ListCollections, ListObjects and the full listing of ChangesSince(0).
// (Listings the contract orders, such as ListMailboxes by name, are
// compared as they come.)
func sorted[T cmp.Ordered](s []T) []T {
	return slices.Sorted(slices.Values(s))
}
