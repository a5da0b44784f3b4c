package postgres

import (
	"context"
	"errors"
	"fmt"
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
	// openMessage returns the index row of message uid in mailbox name
	// of account and a reader of its body: ErrNotFound for a missing
	// account, ErrNoMailbox for a missing mailbox, ErrNoMessage for a
	// missing message or a body released before it could be opened.
	openMessage(ctx context.Context, pool *pgxpool.Pool, account, name string, uid uint32) (store.Message, io.ReadCloser, error)
}

var _ messageOpener = chunkBlobs{}

func (chunkBlobs) openMessage(ctx context.Context, pool *pgxpool.Pool, account, name string, uid uint32) (store.Message, io.ReadCloser, error) {
	var mid, size *int64
	var m msgRow
	var first []byte
	var has bool
	err := pool.QueryRow(ctx, `SELECT mb.mid, `+msgCols+`, b.size, c.data, c.blob IS NOT NULL FROM
		(SELECT (SELECT id FROM mailboxes WHERE account = $1 AND name = $2) AS mid FROM accounts WHERE id = $1) mb
		LEFT JOIN messages m ON m.mailbox = mb.mid AND m.uid = $3
		LEFT JOIN blobs b ON b.id = m.blob_id
		LEFT JOIN blob_chunks c ON c.blob = b.id AND c.n = 0`, account, name, int64(uid)).Scan(append(append([]any{&mid}, m.dest()...), &size, &first, &has)...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Message{}, nil, errorf("account %q: %w", account, store.ErrNotFound)
	case err != nil:
		return store.Message{}, nil, err
	case mid == nil:
		return store.Message{}, nil, errorf("mailbox %q: %w", name, store.ErrNoMailbox)
	case m.uid == nil || size == nil || !has:
		return store.Message{}, nil, errorf("message %d: %w", uid, store.ErrNoMessage)
	}
	// As open: the other chunks are read one statement each as the
	// reader asks; a body released meanwhile is kept for blobGrace.
	r := &bodyReader{chunkReader: chunkReader{ctx: ctx, pool: pool, id: *m.blob, buf: first, left: *size - int64(len(first)), next: 1}, size: *size}
	if r.left == 0 {
		r.whole = first
	}
	return m.message(), r, nil
}

// OpenMessage returns the index row of message uid and its body,
// opened, in one statement (imap.MessageOpener: a FETCH of one whole
// message, BODY[] or RFC822, is then one round trip where ListMessages
// and OpenBody take one each). Errors are those of OpenBody. The body
// reads whole even if the message is expunged meanwhile.
func (s *Store) OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (store.Message, io.ReadCloser, error) {
	return s.openMessage(ctx, "open message", account, mailbox, uid)
}

// openMessage is OpenMessage, its errors named by op.
func (s *Store) openMessage(ctx context.Context, op, account, mailbox string, uid uint32) (store.Message, io.ReadCloser, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return store.Message{}, nil, err
	}
	if err := s.checkOpen(ctx); err != nil {
		return store.Message{}, nil, err
	}
	if o, ok := s.blobs.(messageOpener); ok {
		m, rc, err := o.openMessage(ctx, s.pool, account, name, uid)
		if err != nil {
			return store.Message{}, nil, wrapErr(op, err)
		}
		return m, rc, nil
	}
	msgs, err := s.queryMessages(ctx, account, name, `m.uid = $3`, int64(uid))
	if err != nil {
		return store.Message{}, nil, wrapErr(op, err)
	}
	if len(msgs) == 0 {
		return store.Message{}, nil, errorf("message %d: %w", uid, store.ErrNoMessage)
	}
	id, _ := parseI(msgs[0].BlobID)
	rc, err := s.blobs.open(ctx, s.pool, id)
	if errors.Is(err, errBlobGone) {
		return store.Message{}, nil, errorf("message %d: %w", uid, store.ErrNoMessage)
	}
	if err != nil {
		return store.Message{}, nil, wrapErr(op, err)
	}
	return msgs[0], rc, nil
}

// bodyReader is the reader openMessage returns: a chunkReader that can
// also seek. A reader that reads a body twice (IMAP FETCH counts a
// section's length, then sends it) rewinds it rather than opening it
// again, which would cost a statement and fail once the message is
// expunged, though the body is still there (store.Messages.OpenBody: an
// open body reads whole).
type bodyReader struct {
	chunkReader
	size  int64
	whole []byte // the body, when it is one chunk: seeking costs no statement
}

var _ io.ReadSeekCloser = (*bodyReader)(nil)

// Seek implements io.Seeker. Every chunk but the last holds chunkSize
// bytes (blobStore.upload and create write them so), so the chunk of an
// offset is known; it is read in one statement.
func (r *bodyReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.size - r.left - int64(len(r.buf))
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, fmt.Errorf("postgres: seek: invalid whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("postgres: seek to negative offset %d", offset)
	}
	r.err = nil
	switch {
	case offset >= r.size:
		r.buf, r.left = nil, 0
		return offset, nil
	case r.whole != nil:
		r.buf, r.left = r.whole[offset:], 0
		return offset, nil
	}
	n := offset / chunkSize
	var data []byte
	err := r.pool.QueryRow(r.ctx, `SELECT data FROM blob_chunks WHERE blob = $1 AND n = $2`, r.id, n).Scan(&data)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, fmt.Errorf("postgres: reading blob %d: chunk %d: %w", r.id, n, errBlobGone)
	case err != nil:
		return 0, fmt.Errorf("postgres: reading blob %d: %w", r.id, err)
	case int64(len(data)) <= offset-n*chunkSize:
		return 0, fmt.Errorf("postgres: reading blob %d: chunk %d holds %d bytes, short of offset %d", r.id, n, len(data), offset)
	}
	r.buf = data[offset-n*chunkSize:]
	r.next = int(n) + 1
	r.left = r.size - n*chunkSize - int64(len(data))
	return offset, nil
}
