package sqlite

import (
	"context"
	"sync/atomic"
	"time"
)

// The background text indexer fills the full-text entries that an Append
// with store.AppendOptions.DeferTextIndex left for later (textMissing
// rows of text_docs), and those of blobs stored before the index existed.
//
// Why: reading a message's text back and feeding it to FTS5's trigram
// tokenizer is most of the CPU of an append (a 20,000-message migration
// spent 57 s of user time, against about 10 s before the index existed).
// A bulk import (IMAP and EWS migration) has no reader waiting for the
// index, so it defers the work; deliveries and IMAP APPEND still index
// before they are acknowledged. Until its entry is filled, a message is a
// candidate of every text search and its body is read by the caller
// (textMissing, see migrationV5), so answers are exact at every moment;
// only the speed of a search over not yet indexed messages differs.
//
// The indexer yields to writes: it starts a batch only when the store has
// had no write request for textIdleGap, or when textMaxLag has passed
// since its last batch (so a store that is never idle still catches up,
// one batch per textMaxLag). A batch is textBatch blobs, read outside the
// writer and stored in one write request (one FTS5 flush).
const (
	textBatch    = 64
	textIdleGap  = 200 * time.Millisecond
	textMaxLag   = 10 * time.Second
	textPollIdle = 30 * time.Second // look for work nobody announced (another process's imports)
)

// textIndexer is the indexer's state in a Store.
type textIndexer struct {
	kick      chan struct{} // a deferred entry was committed
	lastWrite atomic.Int64  // unix nanoseconds of the latest write request
	done      chan struct{} // closed when the indexer goroutine exits
	// batches counts the batches stored (tests wait on it).
	batches atomic.Uint64
}

func newTextIndexer() *textIndexer {
	return &textIndexer{kick: make(chan struct{}, 1), done: make(chan struct{})}
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
			// Yield to writes, but never longer than textMaxLag.
			for {
				idle := time.Since(time.Unix(0, x.lastWrite.Load()))
				if idle >= textIdleGap || time.Since(lastBatch) >= textMaxLag {
					break
				}
				t := time.NewTimer(textIdleGap - idle)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			n, err := s.indexPending(ctx, textBatch)
			lastBatch = time.Now()
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("full-text indexer", "err", err)
				}
				break
			}
			if n < textBatch {
				break
			}
		}
		poll.Reset(textPollIdle)
	}
}

// indexPending fills the entries of up to limit blobs whose entry is
// textMissing, and returns how many it looked at. A blob whose text
// cannot be read becomes textPartial with no text (a candidate of every
// search, never retried by the indexer; ReindexText tries again).
func (s *Store) indexPending(ctx context.Context, limit int) (int, error) {
	var blobs []string
	err := s.readTx(ctx, func(tx *rtx) (err error) {
		// state != 1 names text_docs_unread's condition, so the partial
		// index serves the query.
		blobs, err = queryStrings(ctx, tx, "SELECT blob_id FROM text_docs WHERE state != 1 AND state = ? LIMIT ?", textMissing, limit)
		return err
	})
	if err != nil || len(blobs) == 0 {
		return 0, err
	}
	docs := make([]textDoc, len(blobs))
	for i, b := range blobs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		docs[i] = s.extractText(b)
		if docs[i].state == textMissing {
			docs[i] = textDoc{state: textPartial}
		}
	}
	err = s.write(ctx, func(tx *wtx) error {
		for i, b := range blobs {
			if err := tx.fillText(b, docs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.textIdx.batches.Add(1)
	return len(blobs), nil
}
