package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
//
// A body is loose while no index row names it: while it is uploaded
// (before the transaction that stores its message) and after release
// freed it. Loose bodies stay readable until sweep removes them, a
// grace period later, so that neither a slow client sending a body nor
// one reading a body holds a connection or a transaction meanwhile.
type blobStore interface {
	// create streams r into a new blob inside tx and returns its ID and
	// size. Nothing of it remains if tx rolls back.
	create(ctx context.Context, tx pgx.Tx, r io.Reader) (id, size int64, err error)
	// upload streams r into a new loose blob, taking a connection only
	// for each chunk's statement, and returns its ID and size; the
	// transaction that stores the message claims it (claimSQL). On
	// error nothing of it remains.
	upload(ctx context.Context, pool *pgxpool.Pool, r io.Reader, now func() time.Time) (id, size int64, err error)
	// uploadSmall stores bodies, each held whole and of at most
	// chunkSize bytes, as new loose blobs as upload does each, in one
	// statement, and returns their IDs in order. On error nothing of
	// them remains.
	uploadSmall(ctx context.Context, pool *pgxpool.Pool, bodies [][]byte, now func() time.Time) ([]int64, error)
	// discard removes loose blobs that will not be claimed (their
	// messages were refused); the sweep would remove them later anyway.
	discard(pool *pgxpool.Pool, ids ...int64)
	// open returns a reader of the whole blob, which keeps reading it
	// even if the blob is released meanwhile (until it is swept);
	// errBlobGone if it no longer exists.
	open(ctx context.Context, pool *pgxpool.Pool, id int64) (io.ReadCloser, error)
	// release marks those of ids that no index row names any more as
	// loose since now, as part of tx (after the tx deleted the index
	// rows).
	release(ctx context.Context, tx pgx.Tx, ids []int64, now int64) error
	// sweep deletes the blobs loose since before cut.
	sweep(ctx context.Context, pool *pgxpool.Pool, cut int64) error
}

// claimSQL is a data-modifying CTE over the bigint array parameter
// given (IDs of blobs an index row now names) that makes loose blobs
// among them (just uploaded) fixed. It locks only those it changes.
func claimSQL(ids string) string {
	return `UPDATE blobs SET loose_since = NULL WHERE id = ANY(` + ids + `::bigint[]) AND loose_since IS NOT NULL`
}

// asyncCommit is a one-row FROM item that turns synchronous_commit off
// for the rest of the (implicit) transaction of the statement it is in:
// a commit follows the setting in effect when it commits.
const asyncCommit = `(SELECT set_config('synchronous_commit', 'off', true)) AS async`

// blobGrace is how long a loose blob stays: an upload may pause that
// long between two chunks, and a reader may go on that long after the
// body's last message was expunged.
const blobGrace = 15 * time.Minute

// errBlobGone: the blob was released before it could be opened.
var errBlobGone = errors.New("postgres: blob no longer exists")

// chunkBlobs keeps bodies in PostgreSQL, in rows of blob_chunks of at
// most chunkSize bytes, so the database is the only state to back up.
type chunkBlobs struct{}

// chunkBufs holds read buffers of chunkSize bytes: a body of a few KiB
// took a fresh 256 KiB buffer per upload, most of the server's
// allocation in the IMAP mix (bench/README.md, "postgres").
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// chunkBuf takes a buffer of chunkSize bytes from chunkBufs; put gives
// it back once nothing refers to it (pgx has encoded the statement's
// arguments when Exec or QueryRow's Scan returns).
func chunkBuf() (buf []byte, put func()) {
	bp := chunkBufs.Get().(*[]byte)
	return *bp, func() { chunkBufs.Put(bp) }
}

func (chunkBlobs) create(ctx context.Context, tx pgx.Tx, r io.Reader) (int64, int64, error) {
	buf, put := chunkBuf()
	defer put()
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

func (chunkBlobs) upload(ctx context.Context, pool *pgxpool.Pool, r io.Reader, now func() time.Time) (int64, int64, error) {
	buf, put := chunkBuf()
	defer put()
	var id, size int64
	fail := func(err error) (int64, int64, error) {
		if id != 0 {
			chunkBlobs{}.discard(pool, id)
		}
		return 0, 0, err
	}
	for i := 0; ; i++ {
		n, rerr := io.ReadFull(r, buf)
		last := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if rerr != nil && !last {
			return fail(fmt.Errorf("reading body: %w", rerr))
		}
		// Each chunk in one statement that also keeps the blob's size
		// right and its loose_since recent. It commits asynchronously
		// (asyncCommit): the transaction that claims the blob commits
		// synchronously, which flushes the log up to its commit record,
		// these chunks included, and a blob lost in a crash was never
		// claimed. So a message costs one log flush, not two.
		var err error
		switch {
		case i == 0:
			err = pool.QueryRow(ctx, `WITH b AS (INSERT INTO blobs (size, loose_since) VALUES ($1, $3) RETURNING id),
				c AS (INSERT INTO blob_chunks (blob, n, data) SELECT id, 0, $2 FROM b)
				SELECT id FROM b, `+asyncCommit, int64(n), buf[:n], now().UnixNano()).Scan(&id)
		case n > 0:
			// Only while the blob is there: one swept meanwhile (an
			// upload that paused past blobGrace) fails the upload.
			var tag pgconn.CommandTag
			tag, err = pool.Exec(ctx, `WITH b AS (UPDATE blobs SET size = size + $3, loose_since = $4 WHERE id = $1 RETURNING id)
				INSERT INTO blob_chunks (blob, n, data) SELECT b.id, $2, $5 FROM b, `+asyncCommit, id, i, int64(n), now().UnixNano(), buf[:n])
			if err == nil && tag.RowsAffected() != 1 {
				err = errBlobGone
			}
		}
		if err != nil {
			return fail(err)
		}
		size += int64(n)
		if last {
			return id, size, nil
		}
	}
}

func (chunkBlobs) uploadSmall(ctx context.Context, pool *pgxpool.Pool, bodies [][]byte, now func() time.Time) ([]int64, error) {
	// Each blob and its one chunk, as upload's first statement makes
	// them, all from one array; the IDs are drawn first (d is
	// materialised once), so that both inserts and the answer agree on
	// them. Asynchronous commit as upload's, for the same reason.
	rows, err := pool.Query(ctx, `WITH d AS MATERIALIZED (SELECT nextval('blobs_id_seq') AS id, data, ord
			FROM unnest($1::bytea[]) WITH ORDINALITY AS u(data, ord)),
		b AS (INSERT INTO blobs (id, size, loose_since) SELECT id, octet_length(data), $2 FROM d),
		c AS (INSERT INTO blob_chunks (blob, n, data) SELECT id, 0, data FROM d)
		SELECT d.id FROM d, `+asyncCommit+` ORDER BY d.ord`, bodies, now().UnixNano())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

func (chunkBlobs) discard(pool *pgxpool.Pool, ids ...int64) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool.Exec(ctx, deleteBlobsSQL(`SELECT id FROM blobs WHERE id = ANY($1) AND loose_since IS NOT NULL`), ids)
}

// deleteBlobsSQL deletes the blobs that sel selects and no message
// names, with their chunks and full-text entries (no cascade:
// migrations/0011_fewer_foreign_keys.sql).
func deleteBlobsSQL(sel string) string {
	return `WITH d AS (DELETE FROM blobs WHERE id IN (` + sel + `)
			AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = blobs.id) RETURNING id),
		c AS (DELETE FROM blob_chunks WHERE blob IN (SELECT id FROM d))
		DELETE FROM text_docs WHERE blob_id IN (SELECT id FROM d)`
}

func (chunkBlobs) sweep(ctx context.Context, pool *pgxpool.Pool, cut int64) error {
	// SKIP LOCKED: a blob being claimed is left alone, and two nodes
	// sweeping at once do not wait for each other. The row lock makes
	// the loose_since test see a claim committed meanwhile.
	_, err := pool.Exec(ctx, deleteBlobsSQL(`SELECT id FROM blobs WHERE loose_since < $1 ORDER BY id FOR UPDATE SKIP LOCKED`), cut)
	return err
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
	// The other chunks are read one statement each as the reader
	// asks: no connection is held between them. A blob released
	// meanwhile is kept for blobGrace, so they are still there.
	return &chunkReader{ctx: ctx, pool: pool, id: id, buf: first, left: size - int64(len(first)), next: 1}, nil
}

func (chunkBlobs) release(ctx context.Context, tx pgx.Tx, ids []int64, now int64) error {
	if len(ids) == 0 {
		return nil
	}
	// Lock first, then look for references in a new snapshot: of two
	// transactions dropping the last two references at once, the second
	// sees the first's deletion and frees the blob.
	if _, err := tx.Exec(ctx, `SELECT id FROM blobs WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE blobs b SET loose_since = $2 WHERE b.id = ANY($1) AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)`, ids, now)
	return err
}

// chunkReader reads a blob chunk by chunk, one statement each.
type chunkReader struct {
	ctx  context.Context
	pool *pgxpool.Pool
	id   int64
	buf  []byte
	left int64 // bytes of the blob not yet in buf
	next int
	err  error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.left <= 0 {
			return 0, io.EOF
		}
		err := r.pool.QueryRow(r.ctx, `SELECT data FROM blob_chunks WHERE blob = $1 AND n = $2`, r.id, r.next).Scan(&r.buf)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			r.err = fmt.Errorf("postgres: reading blob %d: chunk %d: %w", r.id, r.next, errBlobGone)
		case err != nil:
			r.err = fmt.Errorf("postgres: reading blob %d: %w", r.id, err)
		default:
			r.next++
			r.left -= int64(len(r.buf))
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *chunkReader) Close() error {
	r.left, r.buf = 0, nil
	return nil
}
