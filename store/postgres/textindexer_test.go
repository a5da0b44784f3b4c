package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// textState is the state of the full-text entry of the body of UID uid
// in u's INBOX; -1 if it has none.
func textState(t *testing.T, s *Store, uid uint32) int {
	t.Helper()
	var st *int16
	err := s.pool.QueryRow(context.Background(), `SELECT (SELECT d.state FROM text_docs d WHERE d.blob_id = m.blob_id)
		FROM messages m JOIN mailboxes b ON b.id = m.mailbox WHERE b.account = 'u' AND b.name = 'INBOX' AND m.uid = $1`, int64(uid)).Scan(&st)
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		return -1
	}
	return int(*st)
}

// waitState waits up to 10 s for the entry of uid to reach want.
func waitState(t *testing.T, s *Store, uid uint32, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := textState(t, s, uid)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry of message %d: state %d, want %d", uid, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sureHits searches account's INBOX for the body text v: the UIDs found
// and how many of them are Sure.
func sureHits(t *testing.T, s *Store, account, v string) (uids []uint32, sure int) {
	t.Helper()
	hits, err := s.SearchText(context.Background(), account, store.Inbox, []store.TextTerm{{Field: store.TextBody, Value: v}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		uids = append(uids, h.UID)
		if h.Sure {
			sure++
		}
	}
	return uids, sure
}

// An appended message's entry is stored not indexed, so searches find it
// as a candidate at once; the indexer writes its text within about
// textLag, by itself, and then the index decides.
func TestTextIndexedAfterCommit(t *testing.T) {
	s := openTest(t, freshDB(t), Options{})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, body := range []string{"Subject: a\r\n\r\nthe zebra crossing\r\n", "Subject: b\r\n\r\nnothing here\r\n"} {
		if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader(body), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, strings.NewReader("Subject: c\r\n\r\nzebra again\r\n")); err != nil {
		t.Fatal(err)
	}
	// Right after the commits: candidates, none Sure. (On a machine so
	// loaded that the writes took half of textLag, the indexer may
	// have come first: then this is not checked.)
	uids, sure := sureHits(t, s, "u", "zebra")
	if time.Since(start) < textLag/2 && (len(uids) != 3 || sure != 0) {
		t.Fatalf("before the indexer: %v, %d Sure; want all 3 as candidates", uids, sure)
	}
	for uid := uint32(1); uid <= 3; uid++ {
		waitState(t, s, uid, textWhole)
	}
	if uids, sure = sureHits(t, s, "u", "zebra"); len(uids) != 2 || sure != 2 || uids[0] != 1 || uids[1] != 3 {
		t.Fatalf("after the indexer: %v, %d Sure; want [1 3], both Sure", uids, sure)
	}
	if n := s.text.written.Load(); n != 3 {
		t.Errorf("indexer wrote %d entries, want 3", n)
	}
}

// A message expunged before the indexer's batch leaves no entry: the
// late batch changes nothing and fails nothing, and the indexer goes on.
func TestTextExpungedBeforeIndexed(t *testing.T) {
	s := openTest(t, freshDB(t), Options{})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	m, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: gone\r\n\r\nshort lived\r\n"), store.AppendOptions{Flags: []string{store.FlagDeleted}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, "u", store.Inbox, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.text.written.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the indexer did not write its batch")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// (An entry the Expunge skipped because a batch held it names no
	// message and goes with its body: TestTextIndexerAndExpungeDoNotWait.)
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM text_docs d WHERE EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = d.blob_id)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d entries of messages left after the expunge of message %d, want none", n, m.UID)
	}
	if d := s.text.dropped.Load(); d != 0 {
		t.Fatalf("%d entries dropped, want none", d)
	}
	m2, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: next\r\n\r\nstays\r\n"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, s, m2.UID, textWhole)
}

// The queue is bounded in entries and in bytes: what does not fit is
// dropped (left not indexed, for the sweep), never blocking the write
// that hands it over.
func TestTextQueueBounded(t *testing.T) {
	s := openTest(t, freshDB(t), Options{})
	x := s.text
	var es []textEntry
	for i := range textQueueMax + 10 {
		es = append(es, textEntry{blob: int64(1<<40 + i), text: bodyText{state: textWhole, body: "x"}})
	}
	if n := x.pending(); n != 0 {
		t.Fatalf("a fresh store's indexer holds %d entries", n)
	}
	// add holds the queue's lock throughout, so it accepts textQueueMax
	// and drops the rest, whatever the indexer takes after it.
	x.add(es)
	if d := x.dropped.Load(); d != 10 {
		t.Fatalf("%d of %d entries dropped, want 10", d, len(es))
	}
	x.mu.Lock()
	got, bytes := len(x.queue), x.bytes
	x.mu.Unlock()
	if got > textQueueMax || bytes > textQueueBytes {
		t.Fatalf("queue holds %d entries of %d bytes, bounds %d and %d", got, bytes, textQueueMax, textQueueBytes)
	}
	before := x.dropped.Load()
	big := strings.Repeat("y", 1<<20)
	var large []textEntry
	for i := range 40 {
		large = append(large, textEntry{blob: int64(1<<41 + i), text: bodyText{state: textWhole, body: big}})
	}
	x.add(large)
	x.mu.Lock()
	bytes = x.bytes
	x.mu.Unlock()
	if bytes > textQueueBytes {
		t.Fatalf("queue holds %d bytes, bound %d", bytes, textQueueBytes)
	}
	if x.dropped.Load() == before {
		t.Fatal("40 MiB of text queued whole, want some dropped")
	}
}

// An entry a node left not indexed (it stopped before its batch, or
// dropped it) is filled by the sweep, which reads the body again, once
// it is older than a sweep interval.
func TestTextSweepFillsLeftEntries(t *testing.T) {
	s := openTest(t, freshDB(t), Options{textSweepEvery: 100 * time.Millisecond})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	m, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: left\r\n\r\nthe okapi\r\n"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, s, m.UID, textWhole)
	// What a node that died before its batch leaves.
	if _, err := s.pool.Exec(ctx, `UPDATE text_docs SET state = 0, header = '', body = ''`); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, m.UID, textWhole)
	if s.text.swept.Load() == 0 {
		t.Fatal("filled, but not by the sweep")
	}
	if uids, sure := sureHits(t, s, "u", "okapi"); len(uids) != 1 || sure != 1 {
		t.Fatalf("after the sweep: %v, %d Sure; want one, Sure", uids, sure)
	}
}

// Close writes what the indexer holds: a Store closed right after a
// commit leaves the entry indexed.
func TestTextCloseWritesQueue(t *testing.T) {
	dsn := freshDB(t)
	s, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	m, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: last\r\n\r\nbefore closing\r\n"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dsn, Options{})
	if st := textState(t, s2, m.UID); st != textWhole {
		t.Fatalf("after Close: entry state %d, want %d (written by Close)", st, textWhole)
	}
}

// The indexer and Expunge never wait for each other: an entry whose row
// the indexer holds (a batch being written) is left by the Expunge of
// its message, which returns at once, and goes with its body; a batch
// skips an entry whose row another transaction holds, leaving it not
// indexed. (An Expunge waiting for a batch would hold its account's
// lock for the batch's trigram inserts.)
func TestTextIndexerAndExpungeDoNotWait(t *testing.T) {
	dsn := freshDB(t)
	s := openTest(t, dsn, Options{})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	m1, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: one\r\n\r\nfirst\r\n"), store.AppendOptions{Flags: []string{store.FlagDeleted}})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: two\r\n\r\nsecond\r\n"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.IndexPendingText(ctx); err != nil {
		t.Fatal(err)
	}
	blob1, _ := parseI(m1.BlobID)
	blob2, _ := parseI(m2.BlobID)

	// The indexer's hold, as textFillSQL takes it.
	b := newBlocker(t, ctx, dsn)
	b.lock(ctx, `SELECT blob_id FROM text_docs WHERE blob_id = $1 FOR UPDATE`, blob1)
	done := make(chan error, 1)
	go func() {
		_, err := s.Expunge(ctx, "u", store.Inbox, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Expunge waited for the text entry's row lock")
	}
	b.release()
	var left int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM text_docs WHERE blob_id = $1`, blob1).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 1 {
		t.Fatalf("%d entries of the expunged body left, want the one skipped", left)
	}
	// It names no message: no search finds it.
	if uids, _ := sureHits(t, s, "u", "first"); len(uids) != 0 {
		t.Fatalf("search found %v after the expunge", uids)
	}
	// It goes with the body.
	chunkBlobs{}.discard(s.pool, blob1)
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM text_docs WHERE blob_id = $1`, blob1).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d entries after the body was swept (%v), want none", left, err)
	}

	// A batch skips an entry another transaction holds.
	if _, err := s.pool.Exec(ctx, `UPDATE text_docs SET state = 0, header = '', body = '' WHERE blob_id = $1`, blob2); err != nil {
		t.Fatal(err)
	}
	b2 := newBlocker(t, ctx, dsn)
	b2.lock(ctx, `SELECT blob_id FROM text_docs WHERE blob_id = $1 FOR UPDATE`, blob2)
	filled := make(chan error, 1)
	go func() {
		filled <- fillText(ctx, s.pool, []textEntry{{blob: blob2, text: bodyText{state: textWhole, body: "second"}}})
	}()
	select {
	case err := <-filled:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a batch waited for an entry's row lock")
	}
	b2.release()
	if st := textState(t, s, m2.UID); st != textMissing {
		t.Fatalf("entry held by another transaction: state %d, want it left not indexed", st)
	}
}
