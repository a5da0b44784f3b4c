package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/queue"
)

var _ queue.Bodies = (*Store)(nil)

// PutQueueBody implements queue.Bodies: r goes into table queue_bodies a
// chunk (chunkSize) per statement, so no connection is held while the
// client sends the next one. Each statement commits asynchronously
// (asyncCommit): EnqueueRecipients commits synchronously, which flushes
// the log up to its commit record, these chunks included, and a body
// lost in a crash before it had no recipients. On error the chunks
// written are removed.
func (s *Store) PutQueueBody(ctx context.Context, id string, r io.Reader) (int64, error) {
	return s.putChunked(ctx, queueBodies, id, r)
}

// chunkTable is a table of bodies in chunks: queue_bodies or
// quarantine_bodies, each (msg, n, data, written).
type chunkTable string

const (
	queueBodies      chunkTable = "queue_bodies"
	quarantineBodies chunkTable = "quarantine_bodies"
)

// putChunked stores r as body id of table t, a chunk per statement.
func (s *Store) putChunked(ctx context.Context, t chunkTable, id string, r io.Reader) (int64, error) {
	if err := s.checkOpen(ctx); err != nil {
		return 0, err
	}
	buf, put := chunkBuf()
	defer put()
	var size int64
	for i := 0; ; i++ {
		n, rerr := io.ReadFull(r, buf)
		last := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if rerr != nil && !last {
			s.removeChunked(t, id)
			return 0, fmt.Errorf("reading body: %w", rerr)
		}
		if n > 0 || i == 0 { // chunk 0 always, so an empty body exists
			_, err := s.pool.Exec(ctx, `INSERT INTO `+string(t)+` (msg, n, data, written) SELECT $1, $2, $3, $4 FROM `+asyncCommit,
				id, i, buf[:n], s.now().UnixNano())
			if err != nil {
				if pgCode(err) != codeUniqueViolation {
					s.removeChunked(t, id)
				}
				return 0, wrapErr("put "+string(t), err)
			}
		}
		size += int64(n)
		if last {
			return size, nil
		}
	}
}

// removeChunked removes a body whose writing failed.
func (s *Store) removeChunked(t chunkTable, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.pool.Exec(ctx, `DELETE FROM `+string(t)+` WHERE msg = $1`, id)
}

// OpenQueueBody implements queue.Bodies: the reader reads a chunk per
// statement as it is asked, holding no connection in between.
func (s *Store) OpenQueueBody(ctx context.Context, id string) (io.ReadCloser, error) {
	return s.openChunked(ctx, queueBodies, id)
}

// openChunked returns a reader of body id of table t.
func (s *Store) openChunked(ctx context.Context, t chunkTable, id string) (io.ReadCloser, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	var first []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM `+string(t)+` WHERE msg = $1 AND n = 0`, id).Scan(&first)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("%s %s: %w", t, id, fs.ErrNotExist)
	}
	if err != nil {
		return nil, wrapErr("open "+string(t), err)
	}
	return &tableBodyReader{ctx: ctx, s: s, t: t, id: id, buf: first, next: 1, more: len(first) == chunkSize}, nil
}

// RemoveQueueBody implements queue.Bodies.
func (s *Store) RemoveQueueBody(ctx context.Context, id string) error {
	return s.removeChunkedCtx(ctx, queueBodies, id)
}

func (s *Store) removeChunkedCtx(ctx context.Context, t chunkTable, id string) error {
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM `+string(t)+` WHERE msg = $1`, id)
	return wrapErr("remove "+string(t), err)
}

// SweepQueueBodies implements queue.Bodies.
func (s *Store) SweepQueueBodies(ctx context.Context, cut time.Time) error {
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM queue_bodies b WHERE b.msg IN (
			SELECT msg FROM queue_bodies GROUP BY msg HAVING max(written) < $1)
		AND NOT EXISTS (SELECT 1 FROM queue_recipients q WHERE q.msg = b.msg)`, nanos(cut))
	return wrapErr("sweep queue bodies", err)
}

// tableBodyReader reads a body of a chunkTable chunk by chunk. Every
// chunk but the last is full, so a short chunk ends the body.
type tableBodyReader struct {
	ctx  context.Context
	s    *Store
	t    chunkTable
	id   string
	buf  []byte
	next int
	more bool // the chunk read last was full: there may be another
	err  error
}

func (r *tableBodyReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if !r.more {
			return 0, io.EOF
		}
		// Whether chunk 0 is still there tells the end of a body of
		// whole chunks from one removed while it was read.
		var there bool
		err := r.s.pool.QueryRow(r.ctx, `SELECT (SELECT data FROM `+string(r.t)+` WHERE msg = $1 AND n = $2),
			EXISTS (SELECT 1 FROM `+string(r.t)+` WHERE msg = $1 AND n = 0)`, r.id, r.next).Scan(&r.buf, &there)
		switch {
		case err == nil && r.buf == nil && there:
			r.more = false // the body was a whole number of chunks
		case err == nil && r.buf == nil:
			r.err = errorf("%s %s removed while it was read: %w", r.t, r.id, fs.ErrNotExist)
		case err != nil:
			r.err = wrapErr("read "+string(r.t)+" "+r.id, err)
		default:
			r.next++
			r.more = len(r.buf) == chunkSize
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *tableBodyReader) Close() error {
	r.buf, r.more = nil, false
	return nil
}
