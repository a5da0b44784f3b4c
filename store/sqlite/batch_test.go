package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// holdWriter keeps the writer busy until release is called, so that the
// requests queued meanwhile (see waitQueued) run as one batch: the
// writer drains everything queued once it is free.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, gate, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(*wtx) error {
			close(started)
			<-gate
			return nil
		})
	}()
	<-started
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("holding write: %v", err)
		}
	}
}

// waitQueued waits until n requests wait for the held writer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.reqs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", len(s.reqs), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// inBatch runs the calls as one batch of the writer, in the order given,
// and returns their errors.
func inBatch(t *testing.T, s *Store, calls ...func() error) []error {
	t.Helper()
	release := holdWriter(t, s)
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = call()
		}()
		waitQueued(t, s, i+1)
	}
	c0 := s.commits.Load()
	release()
	wg.Wait()
	if c := s.commits.Load() - c0; c != 2 {
		t.Fatalf("%d commits, want 2 (the held request's and the batch's)", c)
	}
	return errs
}

func searchUIDs(t *testing.T, s *Store, account, mailbox, word string) []uint32 {
	t.Helper()
	hits, err := s.SearchText(context.Background(), account, mailbox, []store.TextTerm{{Field: store.TextBody, Value: word}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := []uint32{}
	for _, h := range hits {
		out = append(out, h.UID)
	}
	return out
}

// ftsIntact runs FTS5's own consistency check of both indexes (as
// Check does) and Check.
func ftsIntact(t *testing.T, s *Store) {
	t.Helper()
	rawIndexExec(t, s, "INSERT INTO text_fts (text_fts) VALUES ('integrity-check')")
	rawIndexExec(t, s, "INSERT INTO text_words (text_words) VALUES ('integrity-check')")
	if p := problems(t, s); len(p) != 0 {
		t.Fatalf("Check: %+v", p)
	}
}

// rawIndexExec runs q as the index writer, in textindex.db.
func rawIndexExec(t *testing.T, s *Store, q string) {
	t.Helper()
	if err := s.writeTextIndex(context.Background(), func() error {
		_, err := s.tix.conn.ExecContext(context.Background(), q)
		return err
	}); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func appendText(s *Store, account, text string, flags ...string) func() error {
	return func() error {
		_, err := s.Append(context.Background(), account, store.Inbox, strings.NewReader("Subject: t\r\n\r\n"+text+"\r\n"), store.AppendOptions{Flags: flags})
		return err
	}
}

// fillText returns a call that indexes the entry of the blob of
// message uid of account's INBOX as the background indexer does
// (fillTexts), whether or not the indexer got there first.
func fillText(t *testing.T, s *Store, account string, uid uint32) func() error {
	t.Helper()
	e := entryOf(t, s, account, uid)
	return func() error { return s.fillTexts(context.Background(), []textEntry{e}) }
}

// entryOf is the text_docs entry of message uid of account's INBOX.
func entryOf(t *testing.T, s *Store, account string, uid uint32) textEntry {
	t.Helper()
	msgs, err := s.ListMessages(context.Background(), account, store.Inbox, store.UIDSet{{Start: uid, Stop: uid}})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("message %d: %v %v", uid, msgs, err)
	}
	e := textEntry{blob: msgs[0].BlobID}
	if err := s.rdb.QueryRow("SELECT id FROM text_docs WHERE blob_id = ?", e.blob).Scan(&e.id); err != nil {
		t.Fatal(err)
	}
	return e
}

// indexNow fills every entry the background indexer has not filled yet.
func indexNow(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.IndexPendingText(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestBatchTextDropOfRolledBackRequest: a request whose savepoint rolls
// back after it removed a blob's entry (dropText) queues no deletion of
// the entry's index rows, while the deletions of the requests before it
// in the batch are queued. A deletion queued anyway would leave the
// entry marked indexed without its rows: the message would no longer be
// found.
func TestBatchTextDropOfRolledBackRequest(t *testing.T) {
	ctx := context.Background()
	// Without the background indexer, whose commits inBatch would count.
	s := openTest(t, t.TempDir(), Options{noTextIndexer: true})
	mustAccount(t, s, "u", store.Quota{})
	for _, w := range []string{"alpha", "bravo", "charlie"} {
		if err := appendText(s, "u", w, store.FlagDeleted)(); err != nil {
			t.Fatal(err)
		}
	}
	indexNow(t, s)
	alpha := entryOf(t, s, "u", 1)
	failed := errors.New("fails after dropping")
	errs := inBatch(t, s,
		func() error {
			_, err := s.Expunge(ctx, "u", store.Inbox, store.UIDSet{{Start: 3, Stop: 3}})
			return err
		},
		func() error {
			return s.write(ctx, func(tx *wtx) error {
				if err := tx.dropText(alpha.blob); err != nil {
					return err
				}
				return failed
			})
		},
	)
	if errs[0] != nil || !errors.Is(errs[1], failed) {
		t.Fatalf("batch: %v", errs)
	}
	indexNow(t, s)
	var n int
	if err := s.rdb.QueryRow("SELECT count(*) FROM ti.text_ix").Scan(&n); err != nil || n != 2 {
		t.Fatalf("index rows after the batch: %d, %v; want 2 (alpha, bravo)", n, err)
	}
	for word, want := range map[string][]uint32{"alpha": {1}, "bravo": {2}, "charlie": {}} {
		hits, err := s.SearchText(ctx, "u", store.Inbox, []store.TextTerm{{Field: store.TextBody, Value: word}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint32
		for _, h := range hits {
			if !h.Sure {
				t.Errorf("search %q: UID %d not sure", word, h.UID)
			}
			got = append(got, h.UID)
		}
		if !slices.Equal(got, want) && len(got)+len(want) != 0 {
			t.Errorf("search %q: %v, want %v", word, got, want)
		}
	}
	ftsIntact(t, s)
}

// TestBatchTextAppendThenExpunge: a message whose entry is filled and
// which is expunged in one batch takes its queued full-text row with it.
// Its text_docs id is given out again by the next append: a row left
// behind would make that message match the expunged text.
func TestBatchTextAppendThenExpunge(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	mustAccount(t, s, "u", store.Quota{})
	if err := appendText(s, "u", "kept")(); err != nil {
		t.Fatal(err)
	}
	if err := appendText(s, "u", "needle", store.FlagDeleted)(); err != nil {
		t.Fatal(err)
	}
	errs := inBatch(t, s,
		fillText(t, s, "u", 2),
		func() error {
			_, err := s.Expunge(ctx, "u", store.Inbox, nil)
			return err
		},
	)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("batch call %d: %v", i, err)
		}
	}
	// The expunged message's text_docs id is free again.
	if err := appendText(s, "u", "other")(); err != nil {
		t.Fatal(err)
	}
	indexNow(t, s)
	for word, want := range map[string][]uint32{"kept": {1}, "needle": {}, "other": {3}} {
		if got := searchUIDs(t, s, "u", store.Inbox, word); !slices.Equal(got, want) {
			t.Errorf("search %q: %v, want %v", word, got, want)
		}
	}
	ftsIntact(t, s)
}

// TestBatchReindexTwice: two re-indexings of an indexed blob at once,
// beside an append (each deletes the entry's rows before it inserts
// them again, in the index writer's transaction) leave one entry.
func TestBatchReindexTwice(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	mustAccount(t, s, "u", store.Quota{})
	if err := appendText(s, "u", "first")(); err != nil {
		t.Fatal(err)
	}
	indexNow(t, s)
	replace := func() error {
		_, err := s.ReindexText(ctx, "u")
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, call := range []func() error{appendText(s, "u", "second"), replace, replace} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = call()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	indexNow(t, s)
	if got := searchUIDs(t, s, "u", store.Inbox, "first"); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("search first: %v", got)
	}
	// One entry: after the message is gone, nothing is left to match.
	if _, err := s.StoreFlags(ctx, "u", store.Inbox, store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}, UIDs: store.UIDSet{{Start: 1, Stop: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, "u", store.Inbox, nil); err != nil {
		t.Fatal(err)
	}
	indexNow(t, s) // applies the queued deletion
	var n int
	if err := s.rdb.QueryRowContext(ctx, "SELECT count(*) FROM text_fts WHERE text_fts MATCH 'first'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("entries still matching after the expunge: %d, %v", n, err)
	}
	ftsIntact(t, s)
}

// TestAppendStatements: the writer statements of a batch of appends,
// transaction control included. Each append runs SAVEPOINT, the UID
// (mailbox look-up included), the usage (quota check included), the
// message row, its text_docs row ("not indexed yet": the background
// indexer fills text_fts and text_words later, in batches of its own)
// and RELEASE; the batch adds BEGIN, COMMIT and a status read per
// mailbox.
func TestAppendStatements(t *testing.T) {
	// Without the background indexer, whose writes would count too.
	s := openTest(t, t.TempDir(), Options{noTextIndexer: true})
	mustAccount(t, s, "u", store.Quota{MaxMessages: 1000})
	const n = 16
	calls := make([]func() error, n)
	for i := range calls {
		calls[i] = appendText(s, "u", fmt.Sprint("message ", i))
	}
	s0 := s.statements.Load()
	for i, err := range inBatch(t, s, calls...) {
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	// The held request, alone in its batch: BEGIN, COMMIT.
	got := s.statements.Load() - s0 - 2
	if want := uint64(n*6 + 3); got != want {
		t.Fatalf("%d statements for %d appends in one batch, want %d", got, n, want)
	}
	// Alone in its batch, an append runs without a savepoint.
	s0 = s.statements.Load()
	if err := appendText(s, "u", "alone")(); err != nil {
		t.Fatal(err)
	}
	if got := s.statements.Load() - s0; got != 7 {
		t.Fatalf("%d statements for an append alone in its batch, want 7", got)
	}
	ftsIntact(t, s)
}

// TestSoloRequestRollsBack: a request alone in its batch runs without a
// savepoint; when it fails, the transaction is rolled back, its queued
// full-text row and records with it, and the next batch is unaffected.
func TestSoloRequestRollsBack(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	mustAccount(t, s, "u", store.Quota{MaxMessages: 1})
	blob, _, err := s.blobs.write(ctx, strings.NewReader("Subject: r\r\n\r\nrolledback\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	failed := errors.New("fails after writing")
	c0, b0 := s.commits.Load(), s.batched.Load()
	err = s.write(ctx, func(tx *wtx) error {
		if err := (&recordTx{t: tx}).Put("ns", "k", []byte("v"), -1); err != nil {
			return err
		}
		if err := tx.indexText(blob); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("write: %v", err)
	}
	if c, b := s.commits.Load()-c0, s.batched.Load()-b0; c != 0 || b != 1 {
		t.Fatalf("%d commits, %d requests counted; want 0 and 1", c, b)
	}
	if err := s.blobs.discard(blob); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRecord(ctx, "ns", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record of the failed request: %v", err)
	}
	if err := appendText(s, "u", "delta")(); err != nil {
		t.Fatal(err)
	}
	// Over quota, alone: refused, nothing kept.
	if err := appendText(s, "u", "over")(); !errors.Is(err, store.ErrQuotaExceeded) {
		t.Fatalf("append over quota: %v", err)
	}
	indexNow(t, s)
	for word, want := range map[string][]uint32{"delta": {1}, "rolledback": {}, "over": {}} {
		if got := searchUIDs(t, s, "u", store.Inbox, word); !slices.Equal(got, want) {
			t.Errorf("search %q: %v, want %v", word, got, want)
		}
	}
	if u, _, err := s.Usage(ctx, "u"); err != nil || u.Messages != 1 {
		t.Fatalf("usage after the refusal: %+v, %v", u, err)
	}
	ftsIntact(t, s)
}

// TestPutRecordPreconditions: each kind of Put's precondition, with the
// version it leaves.
func TestPutRecordPreconditions(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	put := func(key, v string, expect int64) error {
		return s.UpdateRecords(ctx, func(tx store.RecordTx) error { return tx.Put("ns", key, []byte(v), expect) })
	}
	version := func(key string) int64 {
		r, err := s.GetRecord(ctx, "ns", key)
		if err != nil {
			t.Fatal(err)
		}
		return r.Version
	}
	if err := put("a", "1", 3); !errors.Is(err, store.ErrPreconditionFailed) || !strings.Contains(err.Error(), "at version 0, not 3") {
		t.Fatalf("Put of a missing record at version 3: %v", err)
	}
	if err := put("a", "1", -1); err != nil || version("a") != 1 {
		t.Fatalf("unconditional Put of a new record: %v", err)
	}
	if err := put("a", "2", -1); err != nil || version("a") != 2 {
		t.Fatalf("unconditional Put: %v", err)
	}
	if err := put("a", "3", 0); !errors.Is(err, store.ErrPreconditionFailed) || !strings.Contains(err.Error(), "at version 2, not 0") {
		t.Fatalf("Put expecting absence: %v", err)
	}
	if err := put("a", "3", 1); !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("Put with a stale version: %v", err)
	}
	if err := put("a", "3", 2); err != nil || version("a") != 3 {
		t.Fatalf("Put with the current version: %v", err)
	}
	if err := put("b", "1", 0); err != nil || version("b") != 1 {
		t.Fatalf("Put of a new record expecting absence: %v", err)
	}
	r, err := s.GetRecord(ctx, "ns", "a")
	if err != nil || string(r.Value) != "3" {
		t.Fatalf("record a: %+v, %v", r, err)
	}
}

// TestTextMergeSettings: Open gives text_fts the merge settings of
// textMerge, also where they were changed since.
func TestTextMergeSettings(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	check := func(s *Store) {
		t.Helper()
		for _, m := range textMerge {
			var v string
			if err := s.rdb.QueryRowContext(ctx, "SELECT v FROM text_fts_config WHERE k = ?", m.key).Scan(&v); err != nil || v != m.value {
				t.Fatalf("%s: %q, %v; want %s", m.key, v, err, m.value)
			}
		}
	}
	s := openTest(t, dir, Options{})
	check(s)
	rawIndexExec(t, s, "INSERT INTO text_fts (text_fts, rank) VALUES ('automerge', 4)")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openTest(t, dir, Options{}))
}
