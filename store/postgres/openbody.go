package postgres

import (
	"context"
	"errors"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mailyard/mailyard/store"
)

// messageOpener is an optional capability of a blobStore: opening the
// body of a message found by its mailbox and UID in the statement that
// finds it, so that reading a one-chunk body is one round trip (an IMAP
// FETCH of n bodies or headers is 1 + n statements, not 1 + 2n).
type messageOpener interface {
	// openMessage returns a reader of the body of message uid in
	// mailbox name of account: ErrNotFound for a missing account,
	// ErrNoMailbox for a missing mailbox, ErrNoMessage for a missing
	// message or a body released before it could be opened.
	openMessage(ctx context.Context, pool *pgxpool.Pool, account, name string, uid uint32) (io.ReadCloser, error)
}

var _ messageOpener = chunkBlobs{}

func (chunkBlobs) openMessage(ctx context.Context, pool *pgxpool.Pool, account, name string, uid uint32) (io.ReadCloser, error) {
	var mid, muid, blob, size *int64
	var first []byte
	var has bool
	err := pool.QueryRow(ctx, `SELECT mb.mid, m.uid, m.blob_id, b.size, c.data, c.blob IS NOT NULL FROM
		(SELECT (SELECT id FROM mailboxes WHERE account = $1 AND name = $2) AS mid FROM accounts WHERE id = $1) mb
		LEFT JOIN messages m ON m.mailbox = mb.mid AND m.uid = $3
		LEFT JOIN blobs b ON b.id = m.blob_id
		LEFT JOIN blob_chunks c ON c.blob = b.id AND c.n = 0`, account, name, int64(uid)).Scan(&mid, &muid, &blob, &size, &first, &has)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, errorf("account %q: %w", account, store.ErrNotFound)
	case err != nil:
		return nil, err
	case mid == nil:
		return nil, errorf("mailbox %q: %w", name, store.ErrNoMailbox)
	case muid == nil || size == nil || !has:
		return nil, errorf("message %d: %w", uid, store.ErrNoMessage)
	}
	// As open: the other chunks are read one statement each as the
	// reader asks; a body released meanwhile is kept for blobGrace.
	return &chunkReader{ctx: ctx, pool: pool, id: *blob, buf: first, left: *size - int64(len(first)), next: 1}, nil
}
