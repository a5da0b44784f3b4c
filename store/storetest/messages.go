package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

func testAppendAndRead(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	date := time.Date(2024, 3, 1, 12, 30, 0, 0, time.UTC)
	m1, err := s.Append(ctx, "u", "INBOX", bytes.NewReader([]byte("Subject: one\r\n\r\nbody\r\n")),
		store.AppendOptions{Flags: []string{`\seen`, "$Label1", `\SEEN`}, InternalDate: date})
	ok(t, err, "Append")
	eq(t, m1.UID, uint32(1), "first UID")
	eq(t, m1.Size, int64(len("Subject: one\r\n\r\nbody\r\n")), "size")
	eqSlice(t, m1.Flags, []string{"$Label1", store.FlagSeen}, "flags canonical, sorted, deduplicated")
	if !m1.InternalDate.Equal(date) {
		t.Fatalf("internal date %v, want %v", m1.InternalDate, date)
	}
	if m1.ModSeq <= 1 {
		t.Fatalf("MODSEQ of first append %d, want > 1 (a new mailbox starts at 1)", m1.ModSeq)
	}
	before := time.Now().Add(-time.Minute)
	m2 := appendMsg(t, s, "u", "INBOX", "second")
	if m2.UID <= m1.UID || m2.ModSeq <= m1.ModSeq {
		t.Fatalf("second append UID %d MODSEQ %d not above %d %d", m2.UID, m2.ModSeq, m1.UID, m1.ModSeq)
	}
	if m2.InternalDate.Before(before) || m2.InternalDate.After(time.Now().Add(time.Minute)) {
		t.Fatalf("zero InternalDate became %v, want about now", m2.InternalDate)
	}
	eq(t, readBody(t, s, "u", "INBOX", m1.UID), "Subject: one\r\n\r\nbody\r\n", "body 1")
	eq(t, readBody(t, s, "u", "inbox", m2.UID), "second", "body 2")
	msgs, err := s.ListMessages(ctx, "u", "INBOX", nil)
	ok(t, err, "ListMessages")
	eq(t, len(msgs), 2, "messages listed")
	eq(t, msgs[0].UID, m1.UID, "first listed")
	eqSlice(t, msgs[0].Flags, m1.Flags, "listed flags")
	eq(t, msgs[0].ModSeq, m1.ModSeq, "listed MODSEQ")
	eq(t, msgs[0].BlobID, m1.BlobID, "listed BlobID")
	if msgs[1].Flags == nil {
		t.Fatal("Flags of a message without flags is nil, want empty")
	}
	mb := mailbox(t, s, "u", "INBOX")
	eq(t, mb.UIDNext, m2.UID+1, "UIDNEXT")
	eq(t, mb.HighestModSeq, m2.ModSeq, "HIGHESTMODSEQ")
	u, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	eq(t, u, store.Usage{Bytes: m1.Size + m2.Size, Messages: 2}, "usage")

	// UID sets: ranges and "*".
	for _, m := range []string{"3", "4", "5"} {
		appendMsg(t, s, "u", "INBOX", m)
	}
	got, err := s.ListMessages(ctx, "u", "INBOX", store.UIDSet{{Start: 2, Stop: 3}, {Start: 5, Stop: 0}})
	ok(t, err, "ListMessages with set")
	var gotUIDs []uint32
	for _, m := range got {
		gotUIDs = append(gotUIDs, m.UID)
	}
	eqSlice(t, gotUIDs, []uint32{2, 3, 5}, "UIDs of 2:3,5:*")
	got, err = s.ListMessages(ctx, "u", "INBOX", store.UIDSet{})
	ok(t, err, "ListMessages with empty set")
	eq(t, len(got), 0, "empty set selects nothing")
	_, err = s.OpenBody(ctx, "u", "INBOX", 99)
	isErr(t, err, store.ErrNoMessage, "OpenBody of missing UID")
	_, err = s.ListMessages(ctx, "u", "Missing", nil)
	isErr(t, err, store.ErrNoMailbox, "ListMessages of missing mailbox")
}

// patternReader produces n deterministic bytes without holding them.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		x := p.off + int64(i)
		b[i] = byte(x*7 + x>>9)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func testAppendLarge(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	const n = 8<<20 + 123
	m, err := s.Append(ctx, "u", "INBOX", &patternReader{n: n}, store.AppendOptions{})
	ok(t, err, "Append 8 MiB")
	eq(t, m.Size, int64(n), "size")
	want := sha256.New()
	io.Copy(want, &patternReader{n: n})
	rc, err := s.OpenBody(ctx, "u", "INBOX", m.UID)
	ok(t, err, "OpenBody")
	defer rc.Close()
	got := sha256.New()
	_, err = io.Copy(got, rc)
	ok(t, err, "read body")
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("large body read back differs")
	}
}

func testAppendRejects(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	_, err := s.Append(ctx, "u", "INBOX", bytes.NewReader([]byte("x")), store.AppendOptions{Flags: []string{`\Recent`}})
	isErr(t, err, store.ErrInvalid, "Append with \\Recent")
	_, err = s.Append(ctx, "u", "INBOX", bytes.NewReader([]byte("x")), store.AppendOptions{Flags: []string{"bad flag"}})
	isErr(t, err, store.ErrInvalid, "Append with keyword containing SP")
	_, err = s.Append(ctx, "u", "Nope", bytes.NewReader([]byte("x")), store.AppendOptions{})
	isErr(t, err, store.ErrNotFound, "Append to missing mailbox")
	_, err = s.Append(ctx, "nobody", "INBOX", bytes.NewReader([]byte("x")), store.AppendOptions{})
	isErr(t, err, store.ErrNotFound, "Append for missing account")
	eq(t, len(listUIDs(t, s, "u", "INBOX")), 0, "nothing stored")
	eq(t, mailbox(t, s, "u", "INBOX").UIDNext, uint32(1), "UIDNEXT unchanged")
	noProblems(t, s)
}

type failingReader struct {
	ok  int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.ok <= 0 {
		return 0, f.err
	}
	n := min(len(p), f.ok)
	for i := range n {
		p[i] = 'a'
	}
	f.ok -= n
	return n, nil
}

func testAppendReaderError(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	boom := errors.New("connection reset by client")
	_, err := s.Append(ctx, "u", "INBOX", &failingReader{ok: 100000, err: boom}, store.AppendOptions{})
	isErr(t, err, boom, "Append with failing reader")
	_, err = s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, &failingReader{ok: 10, err: boom})
	isErr(t, err, boom, "Deliver with failing reader")
	eq(t, len(listUIDs(t, s, "u", "INBOX")), 0, "nothing stored")
	eq(t, mailbox(t, s, "u", "INBOX").UIDNext, uint32(1), "UIDNEXT unchanged")
	u, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	eq(t, u, store.Usage{}, "usage unchanged")
	noProblems(t, s)
	// The store still works.
	eq(t, appendMsg(t, s, "u", "INBOX", "fine").UID, uint32(1), "UID after failed appends")
}

func testStoreFlags(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	a := appendMsg(t, s, "u", "INBOX", "a", "$Work")
	b := appendMsg(t, s, "u", "INBOX", "b")
	res, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: nil, Op: store.FlagsAdd, Flags: []string{`\seen`, "$work"}})
	ok(t, err, "+FLAGS")
	eq(t, len(res.Updated), 2, "updated count")
	eqSlice(t, res.Updated[0].Flags, []string{"$Work", store.FlagSeen}, "a's flags keep the first spelling of $Work")
	eqSlice(t, res.Updated[1].Flags, []string{"$work", store.FlagSeen}, "b's flags")
	ms1 := res.Updated[0].ModSeq
	if ms1 <= b.ModSeq || res.Updated[1].ModSeq <= b.ModSeq {
		t.Fatalf("MODSEQ after flag change %d/%d not above %d", ms1, res.Updated[1].ModSeq, b.ModSeq)
	}
	// The result's ModSeq is optional; when given, it is the changed
	// messages' and the mailbox's new HIGHESTMODSEQ.
	if res.ModSeq != 0 && (res.ModSeq != ms1 || res.ModSeq != mailbox(t, s, "u", "INBOX").HighestModSeq) {
		t.Fatalf("result ModSeq %d, messages got %d, HIGHESTMODSEQ %d", res.ModSeq, ms1, mailbox(t, s, "u", "INBOX").HighestModSeq)
	}
	// No change keeps MODSEQ (RFC 7162 §3.1.3 only changed messages get new ones).
	res, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: uids(a.UID), Op: store.FlagsAdd, Flags: []string{`\Seen`}})
	ok(t, err, "+FLAGS no-op")
	eq(t, res.Updated[0].ModSeq, ms1, "MODSEQ of unchanged message")
	eq(t, res.ModSeq, 0, "result ModSeq when nothing changed")
	eq(t, mailbox(t, s, "u", "INBOX").HighestModSeq, max(ms1, res.Updated[0].ModSeq), "HIGHESTMODSEQ after no-op")
	res, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: uids(a.UID), Op: store.FlagsRemove, Flags: []string{"$WORK", `\Flagged`}})
	ok(t, err, "-FLAGS")
	eqSlice(t, res.Updated[0].Flags, []string{store.FlagSeen}, "after -FLAGS (case-insensitive)")
	if res.Updated[0].ModSeq <= ms1 {
		t.Fatalf("MODSEQ %d not above %d", res.Updated[0].ModSeq, ms1)
	}
	res, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: uids(b.UID), Op: store.FlagsReplace, Flags: []string{`\Answered`, `\Draft`}})
	ok(t, err, "FLAGS")
	eqSlice(t, res.Updated[0].Flags, []string{store.FlagAnswered, store.FlagDraft}, "after FLAGS")
	msgs, err := s.ListMessages(ctx, "u", "INBOX", nil)
	ok(t, err, "ListMessages")
	eqSlice(t, msgs[0].Flags, []string{store.FlagSeen}, "a read back")
	eqSlice(t, msgs[1].Flags, []string{store.FlagAnswered, store.FlagDraft}, "b read back")
	eq(t, mailbox(t, s, "u", "INBOX").HighestModSeq, res.Updated[0].ModSeq, "HIGHESTMODSEQ is the last MODSEQ")
	_, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{`\Recent`}})
	isErr(t, err, store.ErrInvalid, "+FLAGS \\Recent")
	_, err = s.StoreFlags(ctx, "u", "Nope", store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{`\Seen`}})
	isErr(t, err, store.ErrNotFound, "StoreFlags on missing mailbox")
	res, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: uids(77), Op: store.FlagsAdd, Flags: []string{`\Seen`}})
	ok(t, err, "StoreFlags on missing UID")
	eq(t, len(res.Updated), 0, "nothing updated for missing UID")
}

func testUnchangedSince(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	a := appendMsg(t, s, "u", "INBOX", "a")
	b := appendMsg(t, s, "u", "INBOX", "b")
	// a changes after the client read b's MODSEQ.
	_, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: uids(a.UID), Op: store.FlagsAdd, Flags: []string{"$x"}})
	ok(t, err, "StoreFlags")
	res, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{`\Flagged`}, UnchangedSince: b.ModSeq})
	ok(t, err, "STORE UNCHANGEDSINCE")
	eqSlice(t, res.Modified, []uint32{a.UID}, "Modified (RFC 7162 §3.1.3)")
	msgs, err := s.ListMessages(ctx, "u", "INBOX", nil)
	ok(t, err, "ListMessages")
	eqSlice(t, msgs[0].Flags, []string{"$x"}, "a not changed")
	eqSlice(t, msgs[1].Flags, []string{store.FlagFlagged}, "b changed")
}

func testExpunge(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	for i := range 5 {
		flags := []string{}
		if i%2 == 0 {
			flags = append(flags, store.FlagDeleted)
		}
		appendMsg(t, s, "u", "INBOX", string(rune('a'+i)), flags...)
	}
	// UID EXPUNGE: only \Deleted messages among the given UIDs.
	gone, err := s.Expunge(ctx, "u", "INBOX", uids(1, 2))
	ok(t, err, "UID EXPUNGE 1,2")
	eqSlice(t, gone, []uint32{1}, "UID EXPUNGE removes only \\Deleted")
	gone, err = s.Expunge(ctx, "u", "INBOX", nil)
	ok(t, err, "EXPUNGE")
	eqSlice(t, gone, []uint32{3, 5}, "EXPUNGE removes the rest of \\Deleted")
	gone, err = s.Expunge(ctx, "u", "INBOX", nil)
	ok(t, err, "EXPUNGE again")
	eq(t, len(gone), 0, "nothing left to expunge")
	eqSlice(t, listUIDs(t, s, "u", "INBOX"), []uint32{2, 4}, "remaining")
	_, err = s.OpenBody(ctx, "u", "INBOX", 1)
	isErr(t, err, store.ErrNotFound, "body of expunged message")
	u, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	eq(t, u, store.Usage{Bytes: 2, Messages: 2}, "usage after expunge")
	// UIDs are not reused after expunge, even of the highest UID.
	_, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: uids(4), Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}})
	ok(t, err, "flag 4")
	_, err = s.Expunge(ctx, "u", "INBOX", nil)
	ok(t, err, "expunge 4")
	eq(t, appendMsg(t, s, "u", "INBOX", "new").UID, uint32(6), "UID after expunging the highest")
	eq(t, readBody(t, s, "u", "INBOX", 2), "b", "surviving body")
	noProblems(t, s)
}

func testChanges(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	a := appendMsg(t, s, "u", "INBOX", "a")
	b := appendMsg(t, s, "u", "INBOX", "b")
	c := appendMsg(t, s, "u", "INBOX", "c", store.FlagDeleted)
	mark := mailbox(t, s, "u", "INBOX").HighestModSeq
	cs, err := s.Changes(ctx, "u", "INBOX", mark)
	ok(t, err, "Changes at HIGHESTMODSEQ")
	eq(t, len(cs.Changed)+len(cs.Vanished), 0, "nothing changed since HIGHESTMODSEQ")
	_, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: uids(a.UID), Op: store.FlagsAdd, Flags: []string{store.FlagSeen}})
	ok(t, err, "StoreFlags")
	_, err = s.Expunge(ctx, "u", "INBOX", nil)
	ok(t, err, "Expunge")
	d := appendMsg(t, s, "u", "INBOX", "d")
	cs, err = s.Changes(ctx, "u", "INBOX", mark)
	ok(t, err, "Changes")
	var changed []uint32
	for _, m := range cs.Changed {
		changed = append(changed, m.UID)
		if m.ModSeq <= mark {
			t.Fatalf("changed message %d has MODSEQ %d <= %d", m.UID, m.ModSeq, mark)
		}
	}
	eqSlice(t, sorted(changed), []uint32{a.UID, d.UID}, "changed UIDs")
	eqSlice(t, sorted(cs.Vanished), []uint32{c.UID}, "vanished UIDs (RFC 7162 QRESYNC)")
	cs, err = s.Changes(ctx, "u", "INBOX", 0)
	ok(t, err, "Changes since 0")
	eq(t, len(cs.Changed), 3, "all current messages since 0")
	eqSlice(t, sorted(cs.Vanished), []uint32{c.UID}, "all vanished since 0")
	_ = b
	hm := mailbox(t, s, "u", "INBOX").HighestModSeq
	cs, err = s.Changes(ctx, "u", "INBOX", hm)
	ok(t, err, "Changes at end")
	eq(t, len(cs.Changed)+len(cs.Vanished), 0, "nothing after HIGHESTMODSEQ")
}

func testCopy(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	date := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
	m1, err := s.Append(ctx, "u", "INBOX", bytes.NewReader([]byte("one")), store.AppendOptions{Flags: []string{store.FlagSeen, "$k"}, InternalDate: date})
	ok(t, err, "append")
	m2 := appendMsg(t, s, "u", "INBOX", "two")
	appendMsg(t, s, "u", "Archive", "existing")
	pairs, err := s.Copy(ctx, "u", "INBOX", "Archive", nil)
	ok(t, err, "Copy")
	eq(t, len(pairs), 2, "pairs")
	eq(t, pairs[0], store.UIDPair{Src: m1.UID, Dst: 2}, "first pair (COPYUID, RFC 4315)")
	eq(t, pairs[1], store.UIDPair{Src: m2.UID, Dst: 3}, "second pair")
	msgs, err := s.ListMessages(ctx, "u", "Archive", uids(2))
	ok(t, err, "list copy")
	eqSlice(t, msgs[0].Flags, []string{"$k", store.FlagSeen}, "copy keeps flags")
	if !msgs[0].InternalDate.Equal(date) {
		t.Fatalf("copy internal date %v, want %v", msgs[0].InternalDate, date)
	}
	eq(t, msgs[0].Size, m1.Size, "copy size")
	eq(t, readBody(t, s, "u", "Archive", 2), "one", "copied body")
	eqSlice(t, listUIDs(t, s, "u", "INBOX"), []uint32{1, 2}, "source unchanged")
	u, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	eq(t, u, store.Usage{Bytes: 3 + 3 + 8 + 3 + 3, Messages: 5}, "copies count against usage")
	// Expunging the original leaves the copy readable (shared blob).
	_, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}})
	ok(t, err, "flag")
	_, err = s.Expunge(ctx, "u", "INBOX", nil)
	ok(t, err, "expunge originals")
	eq(t, readBody(t, s, "u", "Archive", 2), "one", "copy after original expunged")
	_, err = s.Copy(ctx, "u", "INBOX", "Nope", nil)
	isErr(t, err, store.ErrNotFound, "Copy to missing mailbox")
	pairs, err = s.Copy(ctx, "u", "INBOX", "Archive", uids(99))
	ok(t, err, "Copy of nothing")
	eq(t, len(pairs), 0, "no pairs")
	pairs, err = s.Copy(ctx, "u", "Archive", "Archive", uids(1))
	ok(t, err, "Copy into the same mailbox")
	eqSlice(t, pairs, []store.UIDPair{{Src: 1, Dst: 4}}, "self copy pair")
	noProblems(t, s)
}

func testMove(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	appendMsg(t, s, "u", "INBOX", "one", "$a")
	appendMsg(t, s, "u", "INBOX", "two")
	appendMsg(t, s, "u", "INBOX", "three")
	mark := mailbox(t, s, "u", "INBOX").HighestModSeq
	uBefore, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	pairs, err := s.Move(ctx, "u", "INBOX", "Trash", store.UIDSet{{Start: 2, Stop: 0}})
	ok(t, err, "Move")
	eqSlice(t, pairs, []store.UIDPair{{Src: 2, Dst: 1}, {Src: 3, Dst: 2}}, "Move pairs")
	eqSlice(t, listUIDs(t, s, "u", "INBOX"), []uint32{1}, "source after move")
	eqSlice(t, listUIDs(t, s, "u", "Trash"), []uint32{1, 2}, "destination after move")
	eq(t, readBody(t, s, "u", "Trash", 2), "three", "moved body")
	cs, err := s.Changes(ctx, "u", "INBOX", mark)
	ok(t, err, "Changes")
	eqSlice(t, sorted(cs.Vanished), []uint32{2, 3}, "moved messages vanish from the source (RFC 6851 §3.3)")
	uAfter, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	eq(t, uAfter, uBefore, "usage unchanged by move")
	pairs, err = s.Move(ctx, "u", "INBOX", "Trash", uids(1))
	ok(t, err, "Move with flags")
	eq(t, pairs[0].Dst, uint32(3), "dst UID")
	msgs, err := s.ListMessages(ctx, "u", "Trash", uids(3))
	ok(t, err, "list")
	eqSlice(t, msgs[0].Flags, []string{"$a"}, "move keeps flags")
	_, err = s.Move(ctx, "u", "Trash", "Missing", nil)
	isErr(t, err, store.ErrNotFound, "Move to missing mailbox")
	eqSlice(t, listUIDs(t, s, "u", "Trash"), []uint32{1, 2, 3}, "failed move changed nothing")
	noProblems(t, s)
}

// testMoveSameMailbox: MOVE into the mailbox itself is COPY, STORE
// \Deleted and EXPUNGE (RFC 6851 §3): new UIDs and MODSEQs, the old UIDs
// expunged with tombstones, usage unchanged.
func testMoveSameMailbox(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{MaxMessages: 3})
	appendMsg(t, s, "u", "INBOX", "one", "$a", store.FlagSeen)
	appendMsg(t, s, "u", "INBOX", "two")
	appendMsg(t, s, "u", "INBOX", "three")
	before := mailbox(t, s, "u", "INBOX")
	uBefore, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	pairs, err := s.Move(ctx, "u", "INBOX", "inbox", uids(1, 3))
	ok(t, err, "Move into the same mailbox (at the message quota)")
	eqSlice(t, pairs, []store.UIDPair{{Src: 1, Dst: 4}, {Src: 3, Dst: 5}}, "pairs")
	eqSlice(t, listUIDs(t, s, "u", "INBOX"), []uint32{2, 4, 5}, "UIDs after")
	eq(t, readBody(t, s, "u", "INBOX", 4), "one", "moved body")
	msgs, err := s.ListMessages(ctx, "u", "INBOX", uids(4))
	ok(t, err, "list")
	eqSlice(t, msgs[0].Flags, []string{"$a", store.FlagSeen}, "flags kept")
	if msgs[0].ModSeq <= before.HighestModSeq {
		t.Fatalf("moved message MODSEQ %d, want > %d", msgs[0].ModSeq, before.HighestModSeq)
	}
	after := mailbox(t, s, "u", "INBOX")
	eq(t, after.UIDValidity, before.UIDValidity, "UIDVALIDITY")
	eq(t, after.UIDNext, uint32(6), "UIDNEXT")
	cs, err := s.Changes(ctx, "u", "INBOX", before.HighestModSeq)
	ok(t, err, "Changes")
	eqSlice(t, sorted(cs.Vanished), []uint32{1, 3}, "old UIDs vanished")
	changed := []uint32{}
	for _, m := range cs.Changed {
		changed = append(changed, m.UID)
	}
	eqSlice(t, sorted(changed), []uint32{4, 5}, "new UIDs changed")
	uAfter, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	eq(t, uAfter, uBefore, "usage unchanged")
	noProblems(t, s)
}

// testInternalDateZone: INTERNALDATE comes back in the zone it was given
// in, through append, copy, move and delivery, and Since/Before compare
// its wall clock (store.SearchCriteria).
func testInternalDateZone(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	east := time.FixedZone("EEST", 3*3600)
	west := time.FixedZone("", -(4*3600 + 30*60))
	dates := []time.Time{
		time.Date(2007, 3, 25, 0, 0, 0, 0, time.FixedZone("", 2*3600)), // 24 Mar 22:00 UTC
		time.Date(2007, 3, 25, 23, 30, 0, 0, east),                     // 25 Mar 20:30 UTC
		time.Date(2007, 3, 25, 22, 0, 0, 0, west),                      // 26 Mar 02:30 UTC
		time.Date(2007, 3, 25, 12, 0, 0, 0, time.UTC),
	}
	for i, d := range dates {
		m, err := s.Append(ctx, "u", "INBOX", bytes.NewReader([]byte("m")), store.AppendOptions{InternalDate: d})
		ok(t, err, "append %d", i)
		checkZone(t, m.InternalDate, d, "Append result %d", i)
	}
	msgs, err := s.ListMessages(ctx, "u", "INBOX", nil)
	ok(t, err, "list")
	for i, m := range msgs {
		checkZone(t, m.InternalDate, dates[i], "listed %d", i)
	}
	if msgs[3].InternalDate.Location() != time.UTC {
		t.Fatalf("UTC date came back in %v, want time.UTC", msgs[3].InternalDate.Location())
	}
	// All four are on 25 Mar by their own wall clock.
	day := func(d int) time.Time { return time.Date(2007, 3, d, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name string
		c    store.SearchCriteria
		want []uint32
	}{
		{"since 25", store.SearchCriteria{Since: day(25)}, []uint32{1, 2, 3, 4}},
		{"before 26", store.SearchCriteria{Before: day(26)}, []uint32{1, 2, 3, 4}},
		{"on 25", store.SearchCriteria{Since: day(25), Before: day(26)}, []uint32{1, 2, 3, 4}},
		{"since 26", store.SearchCriteria{Since: day(26)}, nil},
		{"before 25", store.SearchCriteria{Before: day(25)}, nil},
		{"since 23:00 in +0200", store.SearchCriteria{Since: time.Date(2007, 3, 25, 23, 0, 0, 0, east)}, []uint32{2}},
	} {
		got, err := s.Search(ctx, "u", "INBOX", tc.c)
		ok(t, err, "Search %s", tc.name)
		if len(got) != 0 || len(tc.want) != 0 {
			eqSlice(t, got, tc.want, "Search %s", tc.name)
		}
	}
	_, err = s.CreateMailbox(ctx, "u", "box", store.SpecialNone)
	ok(t, err, "create")
	_, err = s.Copy(ctx, "u", "INBOX", "box", uids(2))
	ok(t, err, "copy")
	_, err = s.Move(ctx, "u", "INBOX", "box", uids(3))
	ok(t, err, "move")
	msgs, err = s.ListMessages(ctx, "u", "box", nil)
	ok(t, err, "list box")
	checkZone(t, msgs[0].InternalDate, dates[1], "copied")
	checkZone(t, msgs[1].InternalDate, dates[2], "moved")
	_, err = s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}, InternalDate: dates[2]}, bytes.NewReader([]byte("d")))
	ok(t, err, "deliver")
	msgs, err = s.ListMessages(ctx, "u", "INBOX", uids(5))
	ok(t, err, "list delivered")
	checkZone(t, msgs[0].InternalDate, dates[2], "delivered")
}

// checkZone fails unless got is the instant want with want's UTC offset.
func checkZone(t *testing.T, got, want time.Time, what string, args ...any) {
	t.Helper()
	_, gotOff := got.Zone()
	_, wantOff := want.Zone()
	if !got.Equal(want) || gotOff != wantOff {
		t.Fatalf("%s: internal date %v, want %v", fmt.Sprintf(what, args...), got, want)
	}
}

func testSearch(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	day := func(d int) time.Time { return time.Date(2024, 5, d, 10, 0, 0, 0, time.UTC) }
	add := func(body string, d int, flags ...string) store.Message {
		m, err := s.Append(ctx, "u", "INBOX", bytes.NewReader([]byte(body)), store.AppendOptions{Flags: flags, InternalDate: day(d)})
		ok(t, err, "append")
		return m
	}
	add("aaaa", 1, store.FlagSeen)                // 1
	add("bbbbbbbb", 2, store.FlagSeen, "$Junk")   // 2
	add("cc", 3)                                  // 3
	add("dddddddddddddddd", 4, store.FlagFlagged) // 4
	add("eeeeee", 5, "$junk", store.FlagAnswered) // 5
	res, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: uids(3), Op: store.FlagsAdd, Flags: []string{store.FlagDraft}})
	ok(t, err, "flag 3")
	ms3 := res.Updated[0].ModSeq
	cases := []struct {
		name string
		c    store.SearchCriteria
		want []uint32
	}{
		{"all", store.SearchCriteria{}, []uint32{1, 2, 3, 4, 5}},
		{"uid set", store.SearchCriteria{UIDs: store.UIDSet{{Start: 2, Stop: 3}, {Start: 5, Stop: 5}}}, []uint32{2, 3, 5}},
		{"seen", store.SearchCriteria{WithFlags: []string{`\seen`}}, []uint32{1, 2}},
		{"unseen", store.SearchCriteria{WithoutFlags: []string{store.FlagSeen}}, []uint32{3, 4, 5}},
		{"keyword any case", store.SearchCriteria{WithFlags: []string{"$JUNK"}}, []uint32{2, 5}},
		{"seen and keyword", store.SearchCriteria{WithFlags: []string{store.FlagSeen, "$Junk"}}, []uint32{2}},
		{"since", store.SearchCriteria{Since: day(3)}, []uint32{3, 4, 5}},
		{"before", store.SearchCriteria{Before: day(3)}, []uint32{1, 2}},
		{"since and before", store.SearchCriteria{Since: day(2), Before: day(4)}, []uint32{2, 3}},
		{"larger", store.SearchCriteria{Larger: 6}, []uint32{2, 4}},
		{"smaller", store.SearchCriteria{Smaller: 6}, []uint32{1, 3}},
		{"modseq", store.SearchCriteria{ModSeqAtLeast: ms3}, []uint32{3}},
		{"unseen and larger in set", store.SearchCriteria{UIDs: store.UIDSet{{Start: 4, Stop: 0}}, WithoutFlags: []string{store.FlagSeen}, Larger: 10}, []uint32{4}},
		{"none", store.SearchCriteria{WithFlags: []string{"$nothing"}}, []uint32{}},
	}
	for _, tc := range cases {
		got, err := s.Search(ctx, "u", "INBOX", tc.c)
		ok(t, err, "Search %s", tc.name)
		if len(got) == 0 && len(tc.want) == 0 {
			continue
		}
		eqSlice(t, got, tc.want, "Search %s", tc.name)
	}
	_, err = s.Search(ctx, "u", "INBOX", store.SearchCriteria{WithFlags: []string{"bad flag"}})
	isErr(t, err, store.ErrInvalid, "Search with invalid flag")
	_, err = s.Search(ctx, "u", "Nope", store.SearchCriteria{})
	isErr(t, err, store.ErrNotFound, "Search missing mailbox")
}

func testStatus(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	appendMsg(t, s, "u", "INBOX", "12345", store.FlagSeen)
	appendMsg(t, s, "u", "INBOX", "123", store.FlagDeleted)
	appendMsg(t, s, "u", "INBOX", "1")
	st, err := s.Status(ctx, "u", "inbox")
	ok(t, err, "Status")
	eq(t, st.Name, "INBOX", "name")
	eq(t, st.Messages, int64(3), "MESSAGES")
	eq(t, st.Unseen, int64(2), "UNSEEN")
	eq(t, st.Deleted, int64(1), "DELETED")
	eq(t, st.Size, int64(9), "SIZE (RFC 8438)")
	eq(t, st.UIDNext, uint32(4), "UIDNEXT")
	st, err = s.Status(ctx, "u", "Sent")
	ok(t, err, "Status of empty")
	eq(t, st.Messages+st.Unseen+st.Deleted+st.Size, int64(0), "empty counts")
	_, err = s.Status(ctx, "u", "Nope")
	isErr(t, err, store.ErrNotFound, "Status of missing mailbox")
}

func quotaErr(t *testing.T, err error, resource string, accounts ...string) {
	t.Helper()
	isErr(t, err, store.ErrQuotaExceeded, "quota refusal")
	var qe *store.QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("quota refusal %v is not a *store.QuotaError", err)
	}
	eq(t, qe.Resource, resource, "QuotaError.Resource")
	eqSlice(t, qe.Accounts, accounts, "QuotaError.Accounts")
}

func testQuotaAppend(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{MaxBytes: 10})
	appendMsg(t, s, "u", "INBOX", "123456")
	_, err := s.Append(ctx, "u", "INBOX", bytes.NewReader([]byte("12345")), store.AppendOptions{})
	quotaErr(t, err, "STORAGE", "u")
	eqSlice(t, listUIDs(t, s, "u", "INBOX"), []uint32{1}, "nothing stored over quota")
	appendMsg(t, s, "u", "INBOX", "1234") // exactly at the limit
	u, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	eq(t, u, store.Usage{Bytes: 10, Messages: 2}, "usage at limit")

	newAccount(t, s, "v", store.Quota{MaxMessages: 2})
	appendMsg(t, s, "v", "INBOX", "a")
	appendMsg(t, s, "v", "Sent", "b")
	_, err = s.Append(ctx, "v", "INBOX", bytes.NewReader([]byte("c")), store.AppendOptions{})
	quotaErr(t, err, "MESSAGE", "v")
	// Lowering the quota keeps mail; raising it allows more.
	ok(t, s.SetQuota(ctx, "u", store.Quota{MaxBytes: 1}), "lower quota")
	eq(t, len(listUIDs(t, s, "u", "INBOX")), 2, "mail kept over a lowered quota")
	ok(t, s.SetQuota(ctx, "v", store.Quota{}), "unlimited")
	appendMsg(t, s, "v", "INBOX", "c")
	// Expunge frees quota.
	_, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}})
	ok(t, err, "flag")
	_, err = s.Expunge(ctx, "u", "INBOX", nil)
	ok(t, err, "expunge")
	ok(t, s.SetQuota(ctx, "u", store.Quota{MaxBytes: 3}), "quota 3")
	appendMsg(t, s, "u", "INBOX", "abc")
	noProblems(t, s)
}

func testQuotaCopyMove(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{MaxMessages: 3})
	appendMsg(t, s, "u", "INBOX", "a")
	appendMsg(t, s, "u", "INBOX", "b")
	_, err := s.Copy(ctx, "u", "INBOX", "Archive", nil)
	quotaErr(t, err, "MESSAGE", "u")
	eq(t, len(listUIDs(t, s, "u", "Archive")), 0, "nothing copied over quota")
	eq(t, mailbox(t, s, "u", "Archive").UIDNext, uint32(1), "no UIDs used by a refused copy")
	_, err = s.Copy(ctx, "u", "INBOX", "Archive", uids(1))
	ok(t, err, "Copy within quota")
	// Move does not add usage, so it works at the limit.
	_, err = s.Move(ctx, "u", "INBOX", "Trash", nil)
	ok(t, err, "Move at the limit")
	u, _, err := s.Usage(ctx, "u")
	ok(t, err, "Usage")
	eq(t, u.Messages, int64(3), "messages after copy and move")
}
