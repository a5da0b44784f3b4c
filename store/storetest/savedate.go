package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// testSaveDate checks store.Message.SaveDate (RFC 8514): set by Append,
// Deliver, Copy and Move to the time they ran, kept by ListMessages and
// Changes, unrelated to InternalDate, and the source's left alone by a
// Copy. Times are bounded by the wall clock around each call, with a
// second of slack for a backend clock that is not the test's.
func testSaveDate(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	within := func(got time.Time, from, to time.Time, what string) {
		t.Helper()
		if got.IsZero() || got.Before(from.Add(-time.Second)) || got.After(to.Add(time.Second)) {
			t.Fatalf("%s: save date %v, want between %v and %v", what, got, from, to)
		}
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	from := time.Now()
	m, err := s.Append(ctx, "u", "INBOX", bytes.NewReader([]byte("Subject: s\r\n\r\nx\r\n")), store.AppendOptions{InternalDate: old})
	ok(t, err, "Append")
	within(m.SaveDate, from, time.Now(), "Append")
	if !m.InternalDate.Equal(old) {
		t.Fatalf("INTERNALDATE %v, want %v (the save date is another date)", m.InternalDate, old)
	}
	listed, err := s.ListMessages(ctx, "u", "INBOX", uids(m.UID))
	ok(t, err, "ListMessages")
	if len(listed) != 1 || !listed[0].SaveDate.Equal(m.SaveDate) {
		t.Fatalf("listed %+v, want the save date Append returned (%v)", listed, m.SaveDate)
	}

	// Copy and Move: the new rows get the time of the call; the source
	// of a Copy keeps its own.
	time.Sleep(10 * time.Millisecond) // so that a later save date can differ
	from = time.Now()
	pairs, err := s.Copy(ctx, "u", "INBOX", "Archive", uids(m.UID))
	ok(t, err, "Copy")
	to := time.Now()
	copied, err := s.ListMessages(ctx, "u", "Archive", uids(pairs[0].Dst))
	ok(t, err, "ListMessages of the copy")
	within(copied[0].SaveDate, from, to, "Copy")
	if !copied[0].SaveDate.After(m.SaveDate) {
		t.Fatalf("copy's save date %v not after the original's %v", copied[0].SaveDate, m.SaveDate)
	}
	if !copied[0].InternalDate.Equal(old) {
		t.Fatalf("copy's INTERNALDATE %v, want %v kept", copied[0].InternalDate, old)
	}
	src, err := s.ListMessages(ctx, "u", "INBOX", uids(m.UID))
	ok(t, err, "ListMessages of the source")
	if !src[0].SaveDate.Equal(m.SaveDate) {
		t.Fatalf("Copy changed the source's save date to %v", src[0].SaveDate)
	}
	from = time.Now()
	moved, err := s.Move(ctx, "u", "Archive", "Trash", uids(pairs[0].Dst))
	ok(t, err, "Move")
	got, err := s.ListMessages(ctx, "u", "Trash", uids(moved[0].Dst))
	ok(t, err, "ListMessages of the moved message")
	within(got[0].SaveDate, from, time.Now(), "Move")

	// Deliver, and Changes carries the save date too.
	mb := mailbox(t, s, "u", "INBOX")
	from = time.Now()
	_, err = s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}, InternalDate: old}, bytes.NewReader([]byte("delivered")))
	ok(t, err, "Deliver")
	to = time.Now()
	cs, err := s.Changes(ctx, "u", "INBOX", mb.HighestModSeq)
	ok(t, err, "Changes")
	if len(cs.Changed) != 1 {
		t.Fatalf("Changes after a delivery: %+v", cs)
	}
	within(cs.Changed[0].SaveDate, from, to, "Deliver")
}
