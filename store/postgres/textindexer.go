package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The text indexer fills the full-text entries (text_docs) that the
// writes leave "not indexed" (textMissing): Append, AppendBatch and
// Deliver store a body's entry without its text, and once they have
// committed, this node's indexer writes the texts they extracted while
// the bodies were read, in batches, on a connection of its own.
//
// Why: storing a text is inserting its trigrams into the two pg_trgm
// GIN indexes, hundreds to thousands of index entries and about 12 KiB
// of WAL for a message of a few KiB. In the write's transaction that was
// most of an APPEND's cost and, with the account's row locked meanwhile,
// every other write to the account waited for it (bench/README.md,
// "Session 16"). store/sqlite indexes the same way (its textindexer.go),
// and Dovecot too, after the save, in its indexer-worker processes.
//
// Searches stay exact at every moment: an entry not indexed yet makes
// its messages candidates of every text search, and the caller reads
// their bodies (store.TextHit.Sure false), as for bodies stored before
// the index existed. A message expunged before its batch was written
// costs the index nothing.
//
// A batch is written once textBatch entries wait, or textLag after the
// oldest was queued, in one transaction that changes only entries still
// not indexed, so a batch that comes late or twice changes nothing. The
// queue is bounded (textQueueMax entries, textQueueBytes of text): past
// that, and when a batch fails, entries stay not indexed and the sweep
// fills them. The sweep, every textSweepEvery on one node at a time (an
// advisory lock), reads again the bodies of entries still not indexed a
// whole sweep interval after they were stored (so not those waiting in
// some node's queue): those a node that stopped or crashed left, those
// dropped, and those of bodies stored before schema version 4. Close
// writes what is queued, within textCloseTimeout.
const (
	textBatch        = 64
	textLag          = time.Second
	textQueueMax     = 4096
	textQueueBytes   = 32 << 20
	textSweepEvery   = 30 * time.Second
	textSweepMax     = 256
	textWriteTimeout = 30 * time.Second
	textCloseTimeout = 5 * time.Second
)

// textSweepLockKey is the advisory lock of the sweep: one node sweeps
// at a time. It spells "mytxtswp" in ASCII.
const textSweepLockKey int64 = 0x6d79747874737770

// textEntry is the full-text entry of one body, to be written.
type textEntry struct {
	blob int64
	text bodyText
	at   time.Time // when it was queued
}

// cost is what an entry holds of the queue's byte bound.
func (e textEntry) cost() int { return len(e.text.header) + len(e.text.body) + len(e.text.words) + 64 }

// textFillSQL writes the entries given as textRows.args, those still
// not indexed. It waits for no lock and makes nobody wait: it skips an
// entry whose row another transaction has locked (an Expunge deleting
// it, or another node writing it), and an Expunge skips the entries it
// holds (dropText), which go with their bodies when those are swept.
// Writing a batch takes a while (the trigram inserts), and an Expunge
// that waited for it would hold its account's lock meanwhile.
const textFillSQL = `WITH l AS (SELECT blob_id FROM text_docs WHERE blob_id = ANY($1) AND state = 0 FOR UPDATE SKIP LOCKED)
	UPDATE text_docs d SET state = t.state, header = t.header, body = t.body, words = t.words
	FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::text[], $5::text[]) AS t(blob_id, state, header, body, words)
	WHERE d.blob_id = t.blob_id AND d.blob_id IN (SELECT blob_id FROM l)`

// textIndexer is the indexer of a Store.
type textIndexer struct {
	s          *Store
	cfg        *pgx.ConnConfig
	sweepEvery time.Duration // textSweepEvery but in tests

	mu    sync.Mutex
	queue []textEntry
	bytes int

	kick   chan struct{} // capacity 1: the queue changed
	stop   chan struct{} // closed by close
	closed sync.Once
	done   chan struct{} // closed when run returns

	written atomic.Uint64 // entries whose batch was written
	dropped atomic.Uint64 // entries left to the sweep: queue full, or their batch failed
	swept   atomic.Uint64 // entries the sweep read again and wrote
}

// newTextIndexer starts the indexer of s. Its connection is its own,
// made when the first batch is written: its statements hold no pool
// connection, and its commits wait for no WAL flush (an entry lost in a
// crash is left not indexed, which the sweep fills).
func newTextIndexer(s *Store, cfg *pgx.ConnConfig) *textIndexer {
	cfg = cfg.Copy()
	cfg.RuntimeParams["synchronous_commit"] = "off"
	x := &textIndexer{s: s, cfg: cfg, sweepEvery: textSweepEvery, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if s.opts.textSweepEvery > 0 {
		x.sweepEvery = s.opts.textSweepEvery
	}
	go x.run()
	return x
}

// add queues the entries of a committed write.
func (x *textIndexer) add(es []textEntry) {
	if len(es) == 0 {
		return
	}
	now := time.Now()
	x.mu.Lock()
	wasEmpty := len(x.queue) == 0
	for _, e := range es {
		if len(x.queue) >= textQueueMax || x.bytes+e.cost() > textQueueBytes {
			x.dropped.Add(1)
			continue
		}
		e.at = now
		x.queue = append(x.queue, e)
		x.bytes += e.cost()
	}
	wake := wasEmpty && len(x.queue) > 0 || len(x.queue) >= textBatch
	x.mu.Unlock()
	if wake {
		select {
		case x.kick <- struct{}{}:
		default:
		}
	}
}

// due returns the next batch if one is due (textBatch entries wait, or
// the oldest has waited textLag, or all is due), else how long until
// the oldest is due (0: the queue is empty).
func (x *textIndexer) due(all bool) ([]textEntry, time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.queue) == 0 {
		return nil, 0
	}
	if wait := textLag - time.Since(x.queue[0].at); len(x.queue) < textBatch && wait > 0 && !all {
		return nil, wait
	}
	n := min(len(x.queue), textBatch)
	batch := make([]textEntry, n)
	copy(batch, x.queue)
	for _, e := range batch {
		x.bytes -= e.cost()
	}
	clear(x.queue[:n]) // let the texts go
	x.queue = x.queue[n:]
	if len(x.queue) == 0 {
		x.queue = nil
	}
	return batch, 0
}

// close writes what is queued (for at most textCloseTimeout) and stops
// the indexer.
func (x *textIndexer) close() {
	x.closed.Do(func() { close(x.stop) })
	<-x.done
}

// run writes batches as they fall due, and sweeps, until close.
func (x *textIndexer) run() {
	defer close(x.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-x.stop:
		case <-x.done:
		}
		cancel() // ends a sweep's reads
	}()
	var conn *pgx.Conn
	defer func() { closeConn(conn) }()
	var sw textSweep
	nextSweep := time.Now().Add(x.sweepEvery)
	for {
		batch, wait := x.due(false)
		if batch != nil {
			var err error
			if conn, err = x.write(ctx, conn, batch); err != nil {
				// Left to the sweep; a second try waits a little, so
				// that a database that is down is not asked for every
				// batch queued.
				select {
				case <-time.After(textLag):
				case <-x.stop:
					x.drain(conn)
					return
				}
			}
			continue
		}
		until := time.Until(nextSweep)
		if until <= 0 {
			var more bool
			conn, more = sw.run(ctx, x, conn)
			nextSweep = time.Now().Add(x.sweepEvery)
			if more {
				nextSweep = time.Now().Add(textLag)
			}
			continue
		}
		if wait == 0 || until < wait {
			wait = until
		}
		t := time.NewTimer(wait)
		select {
		case <-x.kick:
		case <-t.C:
		case <-x.stop:
			t.Stop()
			x.drain(conn)
			return
		}
		t.Stop()
	}
}

// drain writes what is queued, within textCloseTimeout.
func (x *textIndexer) drain(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), textCloseTimeout)
	defer cancel()
	for {
		batch, _ := x.due(true)
		if batch == nil {
			break
		}
		var err error
		if conn, err = x.write(ctx, conn, batch); err != nil && ctx.Err() != nil {
			x.dropped.Add(uint64(x.pending()))
			break
		}
	}
	closeConn(conn)
}

// pending is how many entries are queued.
func (x *textIndexer) pending() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.queue)
}

// write stores batch in one transaction on conn (connected first if
// nil) and returns the connection to use next: nil after a failure,
// which leaves the batch to the sweep.
func (x *textIndexer) write(ctx context.Context, conn *pgx.Conn, batch []textEntry) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, textWriteTimeout)
	defer cancel()
	var err error
	if conn == nil {
		if conn, err = pgx.ConnectConfig(ctx, x.cfg); err != nil {
			x.dropped.Add(uint64(len(batch)))
			return nil, err
		}
	}
	if err := fillText(ctx, conn, batch); err != nil {
		x.dropped.Add(uint64(len(batch)))
		closeConn(conn)
		return nil, err
	}
	x.written.Add(uint64(len(batch)))
	return conn, nil
}

// execer is what a statement runs on: a connection or the pool.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// fillText writes the entries of batch that are still not indexed, in
// one statement on db.
func fillText(ctx context.Context, db execer, batch []textEntry) error {
	rows := &textRows{}
	for _, e := range batch {
		rows.add(e.blob, e.text)
	}
	_, err := db.Exec(ctx, textFillSQL, rows.args()...)
	return err
}

// IndexPendingText writes every full-text entry that is not indexed
// yet, now: those this node's indexer holds, then those of every body
// whose entry is still not indexed (other nodes' queues, bodies stored
// before schema version 4), read again. It returns how many entries it
// wrote. Searches are exact without it; it is for benchmarks that time
// the index, for tests, and for an administrator who wants the index
// complete before a measurement or a backup.
func (s *Store) IndexPendingText(ctx context.Context) (int, error) {
	if err := s.checkOpen(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		batch, _ := s.text.due(true)
		if batch == nil {
			break
		}
		if err := fillText(ctx, s.pool, batch); err != nil {
			s.text.dropped.Add(uint64(len(batch)))
			return total, wrapErr("index pending text", err)
		}
		total += len(batch)
	}
	for after := int64(0); ; {
		rows, err := s.pool.Query(ctx, `SELECT blob_id FROM text_docs WHERE state = 0 AND blob_id > $1 ORDER BY blob_id LIMIT $2`, after, textBatch)
		if err != nil {
			return total, wrapErr("index pending text", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return total, wrapErr("index pending text", err)
		}
		if len(ids) > 0 {
			after = ids[len(ids)-1]
		}
		batch, err := s.readEntries(ctx, ids)
		if err != nil {
			return total, wrapErr("index pending text", err)
		}
		if len(batch) > 0 {
			if err := fillText(ctx, s.pool, batch); err != nil {
				return total, wrapErr("index pending text", err)
			}
			total += len(batch)
		}
		if len(ids) < textBatch {
			return total, nil
		}
	}
}

// readEntries reads the bodies ids again and returns their entries;
// a body gone meanwhile (expunged and swept) has none.
func (s *Store) readEntries(ctx context.Context, ids []int64) ([]textEntry, error) {
	batch := make([]textEntry, 0, len(ids))
	for _, id := range ids {
		t, err := s.readText(ctx, id)
		if err != nil {
			return nil, err
		}
		if t != nil {
			batch = append(batch, textEntry{blob: id, text: *t})
		}
	}
	return batch, nil
}

// textSweep is the sweep's state: mark is the highest body ID of the
// previous sweep, so every body at or below it was stored at least
// textSweepEvery ago (IDs come from a sequence); next is this sweep's.
type textSweep struct {
	mark, next int64
	nextAt     time.Time
}

// run sweeps once, if no other node is sweeping: it reads again up to
// textSweepMax bodies whose entries are still not indexed and were
// stored before the mark, and writes their entries. more reports that
// it found as many as it may take, so the next sweep should come soon.
func (sw *textSweep) run(ctx context.Context, x *textIndexer, conn *pgx.Conn) (out *pgx.Conn, more bool) {
	ctx, cancel := context.WithTimeout(ctx, textWriteTimeout)
	defer cancel()
	fail := func() (*pgx.Conn, bool) {
		closeConn(conn) // the advisory lock ends with the session
		return nil, false
	}
	var err error
	if conn == nil {
		if conn, err = pgx.ConnectConfig(ctx, x.cfg); err != nil {
			return nil, false
		}
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, textSweepLockKey).Scan(&locked); err != nil {
		return fail()
	}
	if !locked {
		return conn, false
	}
	defer func() {
		if out == nil {
			return
		}
		if _, err := out.Exec(ctx, `SELECT pg_advisory_unlock($1)`, textSweepLockKey); err != nil {
			closeConn(out)
			out = nil
		}
	}()
	if time.Since(sw.nextAt) >= x.sweepEvery {
		var top int64
		if err := conn.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM blobs`).Scan(&top); err != nil {
			return fail()
		}
		sw.mark, sw.next, sw.nextAt = sw.next, top, time.Now()
	}
	if sw.mark == 0 {
		return conn, false
	}
	rows, err := conn.Query(ctx, `SELECT blob_id FROM text_docs WHERE state = 0 AND blob_id <= $1 ORDER BY blob_id LIMIT $2`, sw.mark, textSweepMax)
	if err != nil {
		return fail()
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fail()
	}
	more = len(ids) == textSweepMax
	for len(ids) > 0 {
		part := ids[:min(len(ids), textBatch)]
		ids = ids[len(part):]
		batch, err := x.s.readEntries(ctx, part)
		if err != nil {
			return conn, false
		}
		if len(batch) == 0 {
			continue
		}
		if conn, err = x.write(ctx, conn, batch); err != nil {
			return nil, false
		}
		x.swept.Add(uint64(len(batch)))
	}
	return conn, more
}

// closeConn closes conn, if any, without waiting long for the server.
func closeConn(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	conn.Close(ctx)
	cancel()
}
