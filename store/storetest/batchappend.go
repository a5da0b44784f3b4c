package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// testAppendBatch checks store.BatchAppender: a batch is appended as
// Append appends each message, with consecutive UIDs in order and one
// MODSEQ, announced in one change; and a batch that fails (quota, a bad
// flag, a missing mailbox, a body's read error) appends nothing and
// leaves no body behind.
func testAppendBatch(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	ba, isBatch := s.(store.BatchAppender)
	if !isBatch {
		t.Skip("the backend does not implement store.BatchAppender")
	}
	newAccount(t, s, "u", store.Quota{MaxMessages: 60})
	first := appendMsg(t, s, "u", "INBOX", "before")
	sub, err := s.Subscribe(ctx, "u")
	ok(t, err, "Subscribe")
	defer sub.Close()

	empty, err := ba.AppendBatch(ctx, "u", "INBOX", nil)
	ok(t, err, "empty AppendBatch")
	eq(t, len(empty), 0, "messages of an empty batch")

	zone := time.FixedZone("", 3*3600)
	date := time.Date(2024, 3, 1, 12, 30, 0, 0, zone)
	const n = 50 // more than one INSERT's rows in store/sqlite (32)
	msgs := make([]store.AppendMessage, n)
	want := make([]string, n)
	for i := range msgs {
		want[i] = fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, bytes.Repeat([]byte{'a' + byte(i%26)}, i*37))
		msgs[i] = store.AppendMessage{Body: bytes.NewReader([]byte(want[i])), Options: store.AppendOptions{InternalDate: date.Add(time.Duration(i) * time.Minute), DeferTextIndex: i%2 == 0}}
		if i%3 == 0 {
			msgs[i].Options.Flags = []string{`\seen`, "$Label1", `\SEEN`}
		}
	}
	msgs[n-1].Options.InternalDate = time.Time{}
	before := time.Now().Add(-time.Minute)
	got, err := ba.AppendBatch(ctx, "u", "inbox", msgs)
	ok(t, err, "AppendBatch")
	eq(t, len(got), n, "messages returned")
	var size int64
	for i, m := range got {
		eq(t, m.UID, first.UID+1+uint32(i), "UID of message %d", i)
		eq(t, m.ModSeq, got[0].ModSeq, "MODSEQ of message %d", i)
		eq(t, m.Size, int64(len(want[i])), "size of message %d", i)
		eq(t, readBody(t, s, "u", "INBOX", m.UID), want[i], "body of message %d", i)
		size += m.Size
		if i%3 == 0 {
			eqSlice(t, m.Flags, []string{"$Label1", store.FlagSeen}, "flags of message %d, canonical", i)
		} else {
			eq(t, len(m.Flags), 0, "flags of message %d", i)
		}
		if i < n-1 && (!m.InternalDate.Equal(msgs[i].Options.InternalDate) || zoneOffset(m.InternalDate) != 3*3600) {
			t.Fatalf("INTERNALDATE of message %d %v, want %v in its zone", i, m.InternalDate, msgs[i].Options.InternalDate)
		}
	}
	if d := got[n-1].InternalDate; d.Before(before) || d.After(time.Now().Add(time.Minute)) {
		t.Fatalf("zero InternalDate became %v, want about now", d)
	}
	if got[0].ModSeq <= first.ModSeq {
		t.Fatalf("batch MODSEQ %d not above the earlier append's %d", got[0].ModSeq, first.ModSeq)
	}
	listed, err := s.ListMessages(ctx, "u", "INBOX", uids(got[0].UID, got[n-1].UID))
	ok(t, err, "ListMessages")
	eq(t, len(listed), 2, "messages listed")
	eqSlice(t, listed[0].Flags, got[0].Flags, "listed flags")
	eq(t, listed[1].ModSeq, got[n-1].ModSeq, "listed MODSEQ")
	mb := mailbox(t, s, "u", "INBOX")
	eq(t, mb.UIDNext, got[n-1].UID+1, "UIDNEXT")
	eq(t, mb.HighestModSeq, got[0].ModSeq, "HIGHESTMODSEQ")
	u, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	eq(t, u, store.Usage{Bytes: first.Size + size, Messages: n + 1}, "usage")
	ch := next(t, sub)
	eq(t, ch.Kind, store.ChangeMessagesAdded, "change kind")
	eq(t, ch.Mailbox, "INBOX", "change mailbox")
	eq(t, ch.ModSeq, got[0].ModSeq, "change MODSEQ")
	eq(t, len(ch.UIDs), n, "UIDs in the change")
	eq(t, ch.UIDs[n-1], got[n-1].UID, "last UID in the change")

	// Whole batches fail; nothing of them is stored.
	batch := func(bodies ...string) []store.AppendMessage {
		var out []store.AppendMessage
		for _, b := range bodies {
			out = append(out, store.AppendMessage{Body: bytes.NewReader([]byte(b))})
		}
		return out
	}
	over := batch("x", "y", "z", "w", "v", "q", "r", "s", "t", "o", "p") // 51 + 11 > 60
	_, err = ba.AppendBatch(ctx, "u", "INBOX", over)
	quotaErr(t, err, "MESSAGE", "u")
	bad := batch("a", "b")
	bad[1].Options.Flags = []string{"bad flag"}
	_, err = ba.AppendBatch(ctx, "u", "INBOX", bad)
	isErr(t, err, store.ErrInvalid, "AppendBatch with a bad flag")
	_, err = ba.AppendBatch(ctx, "u", "Missing", batch("a"))
	isErr(t, err, store.ErrNoMailbox, "AppendBatch to a missing mailbox")
	boom := errors.New("boom")
	failing := append(batch("a", "b"), store.AppendMessage{Body: &failingReader{ok: 10, err: boom}})
	_, err = ba.AppendBatch(ctx, "u", "INBOX", failing)
	isErr(t, err, boom, "AppendBatch with a failing body")
	eq(t, mailbox(t, s, "u", "INBOX").UIDNext, got[n-1].UID+1, "UIDNEXT after the failed batches")
	u2, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	eq(t, u2, u, "usage after the failed batches")
	quiet(t, sub)
	noProblems(t, s)
}

// zoneOffset is t's zone offset in seconds.
func zoneOffset(t time.Time) int {
	_, off := t.Zone()
	return off
}
