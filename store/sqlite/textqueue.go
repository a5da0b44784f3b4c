package sqlite

import (
	"context"
	"database/sql"
	"errors"
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

// unindexText removes the index entries of text_docs row id (state
// and words as the row has them): off the queue if this batch queued
// them, else from the tables that hold them (deleteText).
func (t *wtx) unindexText(id int64, state, words int) error {
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
	return t.deleteText(id, state, words)
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

// textMerge are text_fts's FTS5 merge settings, which FTS5 keeps in the
// table's config (text_fts_config). Every commit that adds messages
// writes one new index segment; FTS5 merges a level's segments into one
// of the next level once automerge of them exist (crisismerge: at once,
// in the writing transaction), so each entry is rewritten about
// log_automerge(entries per commit / entries) times. At FTS5's default
// of 4, merging was a third of the CPU time of 4,000 concurrent appends
// (BenchmarkAppendText, profile of 2026-12-06); at 8 each entry is
// rewritten a third fewer times, while a search term reads at most 7
// segments of each level instead of 3 (bench/README.md, "migrate",
// session 10).
var textMerge = []struct{ key, value string }{
	{"automerge", "8"},
	{"crisismerge", "32"},
}

// setTextMerge applies textMerge where the config says otherwise; Open
// calls it in the migration's transaction, so a text_fts re-created by
// a later schema version gets the settings too.
func setTextMerge(ctx context.Context, conn *sql.Conn) error {
	for _, m := range textMerge {
		var v string
		err := conn.QueryRowContext(ctx, "SELECT v FROM text_fts_config WHERE k = ?", m.key).Scan(&v)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("full-text settings: %w", err)
		}
		if v == m.value {
			continue
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO text_fts (text_fts, rank) VALUES (?, ?)", m.key, m.value); err != nil {
			return fmt.Errorf("full-text settings: %w", err)
		}
	}
	return nil
}
