package sqlite

import (
	"context"
	"fmt"
	"slices"
)

// The full-text rows of a batch are inserted into text_fts once, after
// every request of the batch ran and before COMMIT, not inside each
// request's savepoint. FTS5 keeps new rows in memory and writes them out
// as a new index segment at every SAVEPOINT and RELEASE of a transaction
// that touched the table, so rows inserted request by request cost one
// segment (and the merges that follow) per request; queued, a commit of
// N appends writes one segment.
//
// A request queues its rows in its own overlay (request.texts); the
// writer merges the overlay into the batch's queue (Store.textQueue)
// only if the request's savepoint is released, so a request that rolls
// back leaves no row. Invariant: an id in the queue is not in text_fts
// yet (a new text_docs row, or one whose old entry was removed first),
// so a later request of the same batch that removes the entry only
// takes it off the queue (unindexText).

// queueText queues the index entry d of text_docs row id for the
// batch's insert.
func (t *wtx) queueText(id int64, d textDoc) {
	if t.req.texts == nil {
		t.req.texts = make(map[int64]*textDoc)
	}
	t.req.texts[id] = &d
}

// unindexText removes the text_fts entry of text_docs row id, which
// holds one (its state is not textMissing): off the queue if this batch
// queued it, else from the table.
func (t *wtx) unindexText(id int64) error {
	if d, ok := t.req.texts[id]; ok {
		if d != nil {
			t.req.texts[id] = nil
		}
		return nil
	}
	if _, ok := t.s.textQueue[id]; ok {
		if t.req.texts == nil {
			t.req.texts = make(map[int64]*textDoc)
		}
		t.req.texts[id] = nil
		return nil
	}
	_, err := t.exec("DELETE FROM text_fts WHERE rowid = ?", id)
	return err
}

// keepTexts merges the rows of a request whose savepoint was released
// into the batch's queue.
func (s *Store) keepTexts(r *request) {
	for id, d := range r.texts {
		if d == nil {
			delete(s.textQueue, id)
			continue
		}
		if s.textQueue == nil {
			s.textQueue = make(map[int64]textDoc)
		}
		s.textQueue[id] = *d
	}
}

// flushTexts inserts the batch's queued rows, in rowid order, in the
// write transaction after the requests' savepoints; the queue is empty
// afterwards whatever the outcome. An error fails the whole batch (the
// rows belong to requests already released into the transaction).
func (s *Store) flushTexts(ctx context.Context) error {
	q := s.textQueue
	s.textQueue = nil
	if len(q) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(q))
	for id := range q {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	t := &wtx{s: s, ctx: ctx}
	for _, id := range ids {
		if err := t.insertText(id, q[id]); err != nil {
			return fmt.Errorf("sqlite: full-text index: %w", err)
		}
	}
	return nil
}
