package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// chunkSize is the most bytes one blob_chunks row holds: a body is
// written and read a chunk at a time, so neither direction holds more
// of it in memory.
const chunkSize = 256 << 10

// blobStore keeps message bodies. The index (messages.blob_id) names a
// row of table blobs; where the bytes live is the blobStore's business,
// so that an object store can replace the chunked rows later without
// touching the index code.
type blobStore interface {
	// create streams r into a new blob inside tx and returns its ID and
	// size. Nothing of it remains if tx rolls back.
	create(ctx context.Context, tx pgx.Tx, r io.Reader) (id, size int64, err error)
	// open returns a reader of the whole blob, which keeps reading it
	// even if the blob is released meanwhile; errBlobGone if it no
	// longer exists.
	open(ctx context.Context, pool *pgxpool.Pool, id int64) (io.ReadCloser, error)
	// release deletes those of ids that no index row names any more, as
	// part of tx (after the tx deleted the index rows).
	release(ctx context.Context, tx pgx.Tx, ids []int64) error
}

// errBlobGone: the blob was released before it could be opened.
var errBlobGone = errors.New("postgres: blob no longer exists")

// chunkBlobs keeps bodies in PostgreSQL, in rows of blob_chunks of at
// most chunkSize bytes, so the database is the only state to back up.
type chunkBlobs struct{}

func (chunkBlobs) create(ctx context.Context, tx pgx.Tx, r io.Reader) (int64, int64, error) {
	buf := make([]byte, chunkSize)
	n, err := io.ReadFull(r, buf)
	last := err == io.EOF || err == io.ErrUnexpectedEOF
	if err != nil && !last {
		return 0, 0, fmt.Errorf("reading body: %w", err)
	}
	var id int64
	// The blob row and its first chunk in one statement: most bodies
	// are one chunk.
	if err := tx.QueryRow(ctx, `WITH b AS (INSERT INTO blobs (size) VALUES ($1) RETURNING id),
		c AS (INSERT INTO blob_chunks (blob, n, data) SELECT id, 0, $2 FROM b)
		SELECT id FROM b`, int64(n), buf[:n]).Scan(&id); err != nil {
		return 0, 0, err
	}
	size := int64(n)
	if last {
		return id, size, nil
	}
	for i := 1; ; i++ {
		n, err := io.ReadFull(r, buf)
		last := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !last {
			return 0, 0, fmt.Errorf("reading body: %w", err)
		}
		if n > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO blob_chunks (blob, n, data) VALUES ($1, $2, $3)`, id, i, buf[:n]); err != nil {
				return 0, 0, err
			}
			size += int64(n)
		}
		if last {
			break
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE blobs SET size = $2 WHERE id = $1`, id, size); err != nil {
		return 0, 0, err
	}
	return id, size, nil
}

func (chunkBlobs) open(ctx context.Context, pool *pgxpool.Pool, id int64) (io.ReadCloser, error) {
	var first []byte
	var size int64
	err := pool.QueryRow(ctx, `SELECT c.data, b.size FROM blobs b JOIN blob_chunks c ON c.blob = b.id AND c.n = 0 WHERE b.id = $1`, id).Scan(&first, &size)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errBlobGone
	}
	if err != nil {
		return nil, err
	}
	if int64(len(first)) == size {
		return &chunkReader{buf: first, done: true}, nil
	}
	// More chunks: read them in one repeatable-read snapshot, which keeps
	// them even if the blob is deleted meanwhile.
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blobs WHERE id = $1)`, id).Scan(&ok); err != nil || !ok {
		tx.Rollback(context.Background())
		if err == nil {
			err = errBlobGone
		}
		return nil, err
	}
	return &chunkReader{ctx: ctx, tx: tx, id: id, buf: first, next: 1}, nil
}

func (chunkBlobs) release(ctx context.Context, tx pgx.Tx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	// Lock first, then look for references in a new snapshot: of two
	// transactions dropping the last two references at once, the second
	// sees the first's deletion and frees the blob.
	if _, err := tx.Exec(ctx, `SELECT id FROM blobs WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM blobs b WHERE b.id = ANY($1) AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)`, ids)
	return err
}

// chunkReader reads a blob chunk by chunk.
type chunkReader struct {
	ctx  context.Context
	tx   pgx.Tx // nil for a one-chunk blob
	id   int64
	buf  []byte
	next int
	done bool
	err  error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		err := r.tx.QueryRow(r.ctx, `SELECT data FROM blob_chunks WHERE blob = $1 AND n = $2`, r.id, r.next).Scan(&r.buf)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			r.done = true
			r.end()
		case err != nil:
			r.err = fmt.Errorf("postgres: reading blob %d: %w", r.id, err)
			r.end()
		default:
			r.next++
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// end gives the connection back as soon as the last chunk is read.
func (r *chunkReader) end() {
	if r.tx != nil {
		r.tx.Rollback(context.Background())
		r.tx = nil
	}
}

func (r *chunkReader) Close() error {
	r.end()
	r.done, r.buf = true, nil
	return nil
}
