package sqlite

import (
	"context"
	"sync/atomic"
	"time"
)

// The background text indexer fills the full-text entries that Append
// and Deliver leave for later (textMissing rows of text_docs), and those
// of blobs stored before the index existed.
//
// Why: reading a message's text back and feeding it to FTS5's trigram
// tokenizer, and FTS5's merges of the small index segment every commit
// writes, are most of an append's CPU, and all of it ran in the single
// writer goroutine that every write of the store waits for. With 50 IMAP
// clients writing at once, the index was two thirds of that goroutine's
// time (profile of `bench/imap.sh` PPROF=1, bench/README.md "imap probe
// and mix", session 11) and every STORE, COPY and EXPUNGE queued behind
// it. Until its entry is filled, a message is a candidate of every text
// search and its body is read by the caller (textMissing, see
// migrationV5), so answers are exact at every moment; only the speed of a
// search over not yet indexed messages differs. Dovecot indexes the same
// way, after the save, in its indexer-worker processes.
//
// Two kinds of entries wait:
//   - live mail (Deliver, Append without store.AppendOptions
//     DeferTextIndex) is indexed soon: a batch starts once textBatch such
//     entries wait, or textSoonLag after the first one, or when the store
//     has had no write for textIdleGap. Batching is the point: one write
//     request (one FTS5 segment and its merges) per textBatch messages
//     instead of one per commit.
//   - a bulk import's (DeferTextIndex: IMAP and EWS migration) yields to
//     writes: it is indexed only when the store has had no write for
//     textIdleGap, or textMaxLag after the last batch (so a store that is
//     never idle still catches up, one batch per textMaxLag). A copy
//     that nobody reads yet should not slow itself down by indexing.
//
// A batch is textBatch blobs, read outside the writer, stored in one
// transaction of textindex.db (one FTS5 flush, by the index writer,
// textindex.go) and then marked indexed in one small write request of
// mail.db.
const (
	textBatch    = 64
	textIdleGap  = 200 * time.Millisecond
	textSoonLag  = time.Second
	textMaxLag   = 10 * time.Second
	textPollIdle = 30 * time.Second // look for work nobody announced (another process's imports)
)

// textIndexer is the indexer's state in a Store.
type textIndexer struct {
	kick      chan struct{} // a deferred entry was committed
	lastWrite atomic.Int64  // unix nanoseconds of the latest write request
	// live counts the entries of live mail committed and not yet
	// indexed (an estimate: a batch takes whichever entries wait, and
	// takes its size off).
	live atomic.Int64
	done chan struct{} // closed when the indexer goroutine exits
	// batches counts the batches stored (tests wait on it).
	batches atomic.Uint64
}

func newTextIndexer() *textIndexer {
	return &textIndexer{kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// added tells the indexer that n entries were committed for it to fill:
// live mail (soon) or a bulk import's (when the store is idle).
func (x *textIndexer) added(n int, live bool) {
	if live {
		x.live.Add(int64(n))
	}
	x.wake()
}

// due says whether a batch should start now: lastBatch was the end of
// the previous one.
func (x *textIndexer) due(lastBatch time.Time) (bool, time.Duration) {
	idle := time.Since(time.Unix(0, x.lastWrite.Load()))
	since := time.Since(lastBatch)
	live := x.live.Load()
	if idle >= textIdleGap || since >= textMaxLag || live >= textBatch || (live > 0 && since >= textSoonLag) {
		return true, 0
	}
	wait := textIdleGap - idle
	if live > 0 {
		wait = min(wait, textSoonLag-since)
	}
	return false, wait
}

// indexed takes a batch of n entries off the live count.
func (x *textIndexer) indexed(n int) {
	for {
		v := x.live.Load()
		if x.live.CompareAndSwap(v, max(0, v-int64(n))) {
			return
		}
	}
}

// wake tells the indexer there is work, without blocking.
func (x *textIndexer) wake() {
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

// runTextIndexer is the indexer goroutine; it returns when ctx ends.
func (s *Store) runTextIndexer(ctx context.Context) {
	x := s.textIdx
	defer close(x.done)
	lastBatch := time.Now()
	poll := time.NewTimer(0) // look once at start: entries left by earlier runs
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-x.kick:
		case <-poll.C:
		}
		for {
			// Yield to writes, but never longer than textMaxLag (bulk)
			// or textSoonLag (live mail), and not once a batch of live
			// mail waits.
			for {
				ok, wait := x.due(lastBatch)
				if ok {
					break
				}
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-x.kick: // more entries: the live count may be due
					t.Stop()
				case <-t.C:
				}
			}
			n, err := s.indexPending(ctx, textBatch)
			lastBatch = time.Now()
			x.indexed(n)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("full-text indexer", "err", err)
				}
				break
			}
			if n < textBatch {
				x.live.Store(0) // nothing else waits
				break
			}
		}
		poll.Reset(textPollIdle)
	}
}

// indexPending fills the entries of up to limit blobs whose entry is
// textMissing (fillTexts), and returns how many it looked at. With none
// waiting it still applies the index deletions that wait.
func (s *Store) indexPending(ctx context.Context, limit int) (int, error) {
	var entries []textEntry
	err := s.readTx(ctx, func(tx *rtx) error {
		// state != 1 names text_docs_unread's condition, so the partial
		// index serves the query.
		rows, err := tx.QueryContext(ctx, "SELECT id, blob_id FROM text_docs WHERE state != 1 AND state = ? LIMIT ?", textMissing, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e textEntry
			if err := rows.Scan(&e.id, &e.blob); err != nil {
				return err
			}
			entries = append(entries, e)
		}
		return rows.Err()
	})
	if err != nil {
		return 0, err
	}
	if len(entries) == 0 {
		if s.tix.pendingDrops() {
			return 0, s.writeTextIndex(ctx, nil)
		}
		return 0, nil
	}
	if err := s.fillTexts(ctx, entries); err != nil {
		return 0, err
	}
	s.textIdx.batches.Add(1)
	return len(entries), nil
}

// IndexPendingText fills every full-text entry that waits for the
// background indexer now, in batches, and returns how many it filled.
// Searches are exact without it; it is for benchmarks that time the
// index, and for an administrator who wants the index complete before a
// measurement or a backup.
func (s *Store) IndexPendingText(ctx context.Context) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	total := 0
	for {
		n, err := s.indexPending(ctx, textBatch)
		total += n
		if err != nil || n < textBatch {
			return total, wrapErr("index pending text", err)
		}
	}
}
