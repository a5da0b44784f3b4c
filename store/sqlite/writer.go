package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mailyard/mailyard/store"
)

// request is one mutating call waiting for the writer.
type request struct {
	ctx  context.Context
	fn   func(tx *wtx) error
	err  error
	done chan struct{}
	// background: the text indexer's own request, which does not count
	// as activity the indexer yields to (textIndexer.lastWrite).
	background bool

	// Collected by fn; dropped if its savepoint is rolled back.
	changes   []store.Change
	freeBlobs []string
	touched   []mailboxRef // changed without a Change (see changeCounts)
	// dropped are the text_docs ids fn deleted, whose rows the index
	// writer deletes after the commit (textindex.go).
	dropped []int64
}

// wtx is the write transaction as one request sees it.
type wtx struct {
	s   *Store
	ctx context.Context // the store's, not the caller's: a caller giving up must not break the batch
	req *request
}

func (t *wtx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.s.wExecContext(ctx, q, args...)
}

func (t *wtx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	t.s.statements.Add(1)
	if st := t.s.wstmt(q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.s.wconn.QueryContext(ctx, q, args...)
}

func (t *wtx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	t.s.statements.Add(1)
	if st := t.s.wstmt(q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.s.wconn.QueryRowContext(ctx, q, args...)
}

func (t *wtx) exec(q string, args ...any) (sql.Result, error) {
	return t.ExecContext(t.ctx, q, args...)
}

func (t *wtx) queryRow(q string, args ...any) *sql.Row {
	return t.QueryRowContext(t.ctx, q, args...)
}

func (t *wtx) query(q string, args ...any) (*sql.Rows, error) {
	return t.QueryContext(t.ctx, q, args...)
}

// maxWriterStmts bounds the writer's statement cache. The store's writes
// use a few dozen distinct statements; texts built per call (IN lists of
// varying length) beyond the bound run unprepared rather than growing it.
const maxWriterStmts = 256

// wstmt returns the writer connection's prepared statement for q,
// preparing it on first use, or nil when the cache is full or q does not
// prepare (the unprepared call then reports the error). Parsing and
// planning a statement cost about as much as running it, and an append
// runs seven. Only the writer goroutine calls wstmt, so the map needs no
// lock; closeDBs closes the statements after the writer has stopped.
func (s *Store) wstmt(q string) *sql.Stmt {
	if st, ok := s.wstmts[q]; ok {
		return st
	}
	if len(s.wstmts) >= maxWriterStmts {
		return nil
	}
	st, err := s.wconn.PrepareContext(context.Background(), q)
	if err != nil {
		return nil
	}
	if s.wstmts == nil {
		s.wstmts = make(map[string]*sql.Stmt)
	}
	s.wstmts[q] = st
	return st
}

// wExecContext runs q on the writer connection, prepared (see wstmt):
// the statements of requests and the transaction control of runBatch.
func (s *Store) wExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	s.statements.Add(1)
	if st := s.wstmt(q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return s.wconn.ExecContext(ctx, q, args...)
}

// publish queues a change for the feed; it is sent after the commit.
func (t *wtx) publish(c store.Change) { t.req.changes = append(t.req.changes, c) }

// dropBlobRefs is called after rows referencing blobs were deleted: the
// blobs no row references any more are deleted after the commit. No later
// request can reference them again, since new rows point either at a new
// random blob or at a blob of an existing row.
func (t *wtx) dropBlobRefs(ids []string) error {
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		var n int
		if err := t.queryRow("SELECT EXISTS (SELECT 1 FROM messages WHERE blob_id = ?)", id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if err := t.dropText(id); err != nil {
				return err
			}
			t.req.freeBlobs = append(t.req.freeBlobs, id)
		}
	}
	return nil
}

// write runs fn in the writer goroutine inside the next group commit and
// returns once the batch is committed (or fn's savepoint rolled back).
func (s *Store) write(ctx context.Context, fn func(tx *wtx) error) error {
	return s.writeRequest(&request{ctx: ctx, fn: fn, done: make(chan struct{})})
}

// writeRequest is write for a request made by the caller.
func (s *Store) writeRequest(r *request) error {
	defer s.observe("write", time.Now())
	if err := s.submit(r); err != nil {
		return err
	}
	// Once queued the writer always answers; waiting unconditionally means
	// a caller never returns "cancelled" for a change that did commit.
	<-r.done
	return noSpace(r.err)
}

// noSpace marks a write error that says the disk is full with
// store.ErrNoSpace: the operating system's ENOSPC or EDQUOT (blob writes
// and fsyncs), or SQLite's SQLITE_FULL, which it reports for ENOSPC on
// the database or its WAL. Every write passes here: write for the
// database, blobStore.write for bodies.
func noSpace(err error) error {
	var se *sqlitedrv.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL && !errors.Is(err, store.ErrNoSpace) {
		return fmt.Errorf("%w: %w", store.ErrNoSpace, err)
	}
	return store.NoSpace(err)
}

func (s *Store) submit(r *request) error {
	if !r.background {
		s.textIdx.lastWrite.Store(time.Now().UnixNano())
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	select {
	case s.reqs <- r:
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// writer is the only goroutine that writes to the database. It exits when
// Close closes reqs and everything queued is done.
func (s *Store) writer() {
	defer close(s.done)
	for {
		r, ok := <-s.reqs
		if !ok {
			return
		}
		batch := []*request{r}
		open := true
		if w := s.opts.GroupCommitWindow; w > 0 {
			timer := time.NewTimer(w)
		wait:
			for len(batch) < s.opts.MaxBatch {
				select {
				case r, ok := <-s.reqs:
					if !ok {
						open = false
						break wait
					}
					batch = append(batch, r)
				case <-timer.C:
					break wait
				}
			}
			timer.Stop()
		}
	drain:
		for open && len(batch) < s.opts.MaxBatch {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					open = false
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.runBatch(batch)
		if !open {
			// A receive reports closed only once the buffer is empty.
			return
		}
	}
}

// runBatch executes a batch in one transaction, one savepoint per request,
// commits once, then publishes and deletes freed blobs in commit order,
// and answers every caller.
func (s *Store) runBatch(batch []*request) {
	ctx := s.baseCtxOrBackground()
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		live = append(live, r)
	}
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	if len(live) == 0 {
		return
	}
	failAll := func(err error) {
		for _, r := range live {
			if r.err == nil {
				r.err = err
			}
		}
	}
	if _, err := s.wExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		failAll(fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	// A request alone in its batch needs no savepoint: if it fails, the
	// transaction is rolled back instead.
	solo := len(live) == 1
	for _, r := range live {
		if !solo {
			if _, err := s.wExecContext(ctx, "SAVEPOINT req"); err != nil {
				s.abort(ctx)
				failAll(fmt.Errorf("sqlite: savepoint: %w", err))
				return
			}
		}
		tx := &wtx{s: s, ctx: ctx, req: r}
		r.err = callFn(r.fn, tx)
		if r.err != nil {
			r.changes, r.freeBlobs, r.touched, r.dropped = nil, nil, nil, nil
			if solo {
				s.abort(ctx)
				s.batched.Add(1)
				return
			}
			if _, err := s.wExecContext(ctx, "ROLLBACK TO req"); err != nil {
				s.abort(ctx)
				failAll(fmt.Errorf("sqlite: rollback to savepoint: %w", err))
				return
			}
		}
		if !solo {
			if _, err := s.wExecContext(ctx, "RELEASE req"); err != nil {
				s.abort(ctx)
				failAll(fmt.Errorf("sqlite: release savepoint: %w", err))
				return
			}
		}
	}
	statuses := s.statusesOf(ctx, live)
	if _, err := s.wExecContext(ctx, "COMMIT"); err != nil {
		s.abort(ctx)
		failAll(fmt.Errorf("sqlite: commit: %w", err))
		return
	}
	committed := time.Now()
	s.commits.Add(1)
	s.batched.Add(uint64(len(live)))
	for _, r := range live {
		if r.err != nil {
			continue
		}
		s.counts.bump(r.changes, r.touched)
		if len(r.dropped) > 0 {
			s.tix.queueDrops(r.dropped)
			s.textIdx.wake()
		}
		s.feed.publish(r.changes)
		for _, id := range r.freeBlobs {
			if err := s.blobs.free(id); err != nil {
				// The blob becomes an orphan; the next sweep removes it.
				s.log.Warn("removing unreferenced blob", "blob", id, "err", err)
			}
		}
	}
	s.counts.publishStatuses(statuses, committed)
}

// abort rolls the batch's transaction back.
func (s *Store) abort(ctx context.Context) {
	if _, err := s.wExecContext(ctx, "ROLLBACK"); err != nil {
		s.log.Error("rollback after failed batch", "err", err)
	}
}

func (s *Store) baseCtxOrBackground() context.Context {
	if s.baseCtx != nil {
		return s.baseCtx
	}
	return context.Background()
}

// callFn runs one request, turning a panic into an error so one bad
// request cannot take the writer (and every other caller) down.
func callFn(fn func(*wtx) error, tx *wtx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlite: panic in write: %v", p)
		}
	}()
	return fn(tx)
}
