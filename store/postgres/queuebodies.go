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
	if err := s.checkOpen(ctx); err != nil {
		return 0, err
	}
	buf := make([]byte, chunkSize)
	var size int64
	for i := 0; ; i++ {
		n, rerr := io.ReadFull(r, buf)
		last := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if rerr != nil && !last {
			s.removeQueueBody(id)
			return 0, fmt.Errorf("reading body: %w", rerr)
		}
		if n > 0 || i == 0 { // chunk 0 always, so an empty body exists
			_, err := s.pool.Exec(ctx, `INSERT INTO queue_bodies (msg, n, data, written) SELECT $1, $2, $3, $4 FROM `+asyncCommit,
				id, i, buf[:n], s.now().UnixNano())
			if err != nil {
				if pgCode(err) != codeUniqueViolation {
					s.removeQueueBody(id)
				}
				return 0, wrapErr("put queue body", err)
			}
		}
		size += int64(n)
		if last {
			return size, nil
		}
	}
}

// removeQueueBody removes a body whose writing failed.
func (s *Store) removeQueueBody(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.pool.Exec(ctx, `DELETE FROM queue_bodies WHERE msg = $1`, id)
}

// OpenQueueBody implements queue.Bodies: the reader reads a chunk per
// statement as it is asked, holding no connection in between.
func (s *Store) OpenQueueBody(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	var first []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM queue_bodies WHERE msg = $1 AND n = 0`, id).Scan(&first)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("queue body %s: %w", id, fs.ErrNotExist)
	}
	if err != nil {
		return nil, wrapErr("open queue body", err)
	}
	return &queueBodyReader{ctx: ctx, s: s, id: id, buf: first, next: 1, more: len(first) == chunkSize}, nil
}

// RemoveQueueBody implements queue.Bodies.
func (s *Store) RemoveQueueBody(ctx context.Context, id string) error {
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM queue_bodies WHERE msg = $1`, id)
	return wrapErr("remove queue body", err)
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

// queueBodyReader reads a queued body chunk by chunk. Every chunk but
// the last is full, so a short chunk ends the body.
type queueBodyReader struct {
	ctx  context.Context
	s    *Store
	id   string
	buf  []byte
	next int
	more bool // the chunk read last was full: there may be another
	err  error
}

func (r *queueBodyReader) Read(p []byte) (int, error) {
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
		err := r.s.pool.QueryRow(r.ctx, `SELECT (SELECT data FROM queue_bodies WHERE msg = $1 AND n = $2),
			EXISTS (SELECT 1 FROM queue_bodies WHERE msg = $1 AND n = 0)`, r.id, r.next).Scan(&r.buf, &there)
		switch {
		case err == nil && r.buf == nil && there:
			r.more = false // the body was a whole number of chunks
		case err == nil && r.buf == nil:
			r.err = errorf("queue body %s removed while it was read: %w", r.id, fs.ErrNotExist)
		case err != nil:
			r.err = wrapErr("read queue body "+r.id, err)
		default:
			r.next++
			r.more = len(r.buf) == chunkSize
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *queueBodyReader) Close() error {
	r.buf, r.more = nil, false
	return nil
}
