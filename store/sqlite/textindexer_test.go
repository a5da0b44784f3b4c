package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// pendingText counts the text_docs rows the indexer has still to fill.
func pendingText(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	err := s.readTx(context.Background(), func(tx *rtx) error {
		return tx.QueryRowContext(context.Background(), "SELECT count(*) FROM text_docs WHERE state = ?", textMissing).Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitIndexed waits until the background indexer has filled every entry.
func waitIndexed(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for pendingText(t, s) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d entries still unindexed after 30s", pendingText(t, s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func searchBody(t *testing.T, s *Store, word string) []store.TextHit {
	t.Helper()
	hits, err := s.SearchText(context.Background(), "u", store.Inbox, []store.TextTerm{{Field: store.TextBody, Value: word}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestDeferredTextIndex: an Append is acknowledged before its text is
// indexed, is found by every search meanwhile (a candidate, not Sure:
// the caller reads the body), and the background indexer then fills its
// entry, after which the index narrows and is Sure. Live mail (an Append
// without DeferTextIndex) is indexed as soon as the store is idle; a
// bulk import's with the hint too.
func TestDeferredTextIndex(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: a\r\n\r\nindexed soon, alpha\r\n"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if hits := searchBody(t, s, "alpha"); len(hits) != 1 || hits[0].UID != 1 {
		t.Fatalf("plain Append, at once: %+v, want UID 1", hits)
	}
	waitIndexed(t, s)
	if hits := searchBody(t, s, "alpha"); len(hits) != 1 || hits[0].UID != 1 || !hits[0].Sure {
		t.Fatalf("plain Append, indexed: %+v, want UID 1 Sure", hits)
	}
	for _, w := range []string{"bravo", "charlie", "delta"} {
		if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: b\r\n\r\nlater "+w+"\r\n"), store.AppendOptions{DeferTextIndex: true}); err != nil {
			t.Fatal(err)
		}
	}
	// Whatever the indexer has done by now, a search finds the message.
	found := false
	for _, h := range searchBody(t, s, "charlie") {
		if h.UID == 3 {
			found = true
		}
		if h.Sure && h.UID != 3 {
			t.Fatalf("message %d Sure for charlie", h.UID)
		}
	}
	if !found {
		t.Fatal("a deferred message was not a candidate before it was indexed")
	}
	waitIndexed(t, s)
	if hits := searchBody(t, s, "charlie"); len(hits) != 1 || hits[0].UID != 3 || !hits[0].Sure {
		t.Fatalf("after the indexer: %+v, want UID 3 Sure", hits)
	}
	if hits := searchBody(t, s, "later"); len(hits) != 3 {
		t.Fatalf("after the indexer, 'later': %+v, want 3 hits", hits)
	}
	if probs, err := s.Check(ctx); err != nil || len(probs) != 0 {
		t.Fatalf("Check: %v %v", probs, err)
	}
}

// TestDeferredTextIndexSurvivesClose: Close does not wait for a backlog
// (the indexer stops between batches), and the next Open finishes it,
// including entries another process left: the indexer looks at start.
func TestDeferredTextIndexSurvivesClose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{noTextIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	const n = 3*textBatch + 5
	for i := range n {
		body := fmt.Sprintf("Subject: m%d\r\n\r\nword%04d common\r\n", i, i)
		if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader(body), store.AppendOptions{DeferTextIndex: true}); err != nil {
			t.Fatal(err)
		}
	}
	if got := pendingText(t, s); got != n {
		t.Fatalf("%d pending with the indexer off, want %d", got, n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	start := time.Now()
	waitIndexed(t, s)
	t.Logf("indexed %d messages in %v", n, time.Since(start))
	hits := searchBody(t, s, "word0100")
	if len(hits) != 1 || hits[0].UID != 101 || !hits[0].Sure {
		t.Fatalf("after reopening: %+v, want UID 101 Sure", hits)
	}
	// Close with work in flight returns promptly.
	for i := range 2 * textBatch {
		body := fmt.Sprintf("Subject: n%d\r\n\r\nmore%04d\r\n", i, i)
		if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader(body), store.AppendOptions{DeferTextIndex: true}); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the indexer's backlog")
	}
}

// writeFor calls write(0), write(1), ... one after another for d and
// returns how many calls it made.
func writeFor(t *testing.T, d time.Duration, write func(i int) error) int {
	t.Helper()
	n := 0
	for start := time.Now(); time.Since(start) < d; n++ {
		if err := write(n); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestTextIndexerYieldsToWrites: while writes keep coming, the indexer
// stores at most one batch per textMaxLag, so a bulk import does not
// share its CPU with indexing; once the writes stop it catches up.
func TestTextIndexerYieldsToWrites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	before := s.textIdx.batches.Load()
	writeFor(t, 2*time.Second, func(i int) error {
		body := fmt.Sprintf("Subject: m%d\r\n\r\nbusy%05d\r\n", i, i)
		_, err := s.Append(ctx, "u", store.Inbox, strings.NewReader(body), store.AppendOptions{DeferTextIndex: true})
		return err
	})
	// The first look (at Open) may have stored one batch before the
	// writes began; none after that within textMaxLag.
	if got := s.textIdx.batches.Load() - before; got > 1 {
		t.Fatalf("%d indexer batches during 2s of continuous writes, want at most 1", got)
	}
	waitIndexed(t, s)
}

// TestTextIndexerLiveMailUnderWrites: live mail (Append without
// DeferTextIndex, Deliver) is indexed while writes keep coming, in
// batches (one write request per textBatch messages, not one per
// append) and without waiting for the store to be idle: every message
// appended during 3 s of continuous appends is indexed within
// textSoonLag and a margin of the last one.
func TestTextIndexerLiveMailUnderWrites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	before := s.textIdx.batches.Load()
	n := writeFor(t, 3*time.Second, func(i int) error {
		body := fmt.Sprintf("Subject: m%d\r\n\r\nlive%05d\r\n", i, i)
		if i%2 == 0 {
			_, err := s.Append(ctx, "u", store.Inbox, strings.NewReader(body), store.AppendOptions{})
			return err
		}
		_, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, strings.NewReader(body))
		return err
	})
	during := s.textIdx.batches.Load() - before
	if during == 0 {
		t.Fatalf("no indexer batch during 3s of %d live appends: live mail waited for an idle store", n)
	}
	if max := uint64(n/textBatch) + 4; during > max {
		t.Fatalf("%d indexer batches for %d live appends, want at most %d (batches of %d)", during, n, max, textBatch)
	}
	deadline := time.Now().Add(textSoonLag + 5*time.Second)
	for pendingText(t, s) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d live messages still unindexed %v after the last append", pendingText(t, s), n, textSoonLag+5*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if hits := searchBody(t, s, fmt.Sprintf("live%05d", n-1)); len(hits) != 1 || !hits[0].Sure {
		t.Fatalf("last message: %+v, want one Sure hit", hits)
	}
	t.Logf("%d live appends, %d indexer batches during them", n, during)
}

// TestTextIndexerOwnWritesAreNotActivity: the indexer's batch does not
// count as a write it yields to, so a backlog is indexed batch after
// batch, not one batch per textIdleGap.
func TestTextIndexerOwnWritesAreNotActivity(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{noTextIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: x\r\n\r\nbacklog\r\n"), store.AppendOptions{DeferTextIndex: true}); err != nil {
		t.Fatal(err)
	}
	last := s.textIdx.lastWrite.Load()
	if n, err := s.indexPending(ctx, textBatch); err != nil || n != 1 {
		t.Fatalf("indexPending: %d, %v", n, err)
	}
	if got := s.textIdx.lastWrite.Load(); got != last {
		t.Fatalf("the indexer's batch moved the last write from %d to %d", last, got)
	}
}
