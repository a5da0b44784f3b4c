package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/mailyard/mailyard/store"
)

// The hottest reads of IMAP (FETCH's listing of a message set, a body's
// blob) are one statement each, the mailbox looked up by a subquery, on
// the read pool: a statement is its own read transaction in SQLite, so
// this sees one snapshot as a BEGIN, mailbox look-up, query, ROLLBACK
// did, at half the round trips through the driver (issue 16). Only an
// empty answer asks again, to tell a missing mailbox or account apart.

// mailboxIDOf is the subquery for a mailbox's id by account and name.
const mailboxIDOf = "(SELECT id FROM mailboxes WHERE account = ? AND name = ?)"

// listMessages is ListMessages of the mailbox with canonical name name.
func (s *Store) listMessages(ctx context.Context, account, name string, uids store.UIDSet) ([]store.Message, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	defer s.observe("read", time.Now())
	cond, args, filter := uidClause(uids)
	rows, err := rpool{s}.QueryContext(ctx, "SELECT "+messageCols+" FROM messages WHERE mailbox = "+mailboxIDOf+
		" AND "+cond+" ORDER BY uid", append([]any{account, name}, args...)...)
	if err != nil {
		return nil, err
	}
	out, err := scanMessages(rows, uids, filter)
	if err != nil || len(out) > 0 {
		return out, err
	}
	if _, err := getMailbox(ctx, rpool{s}, account, name); err != nil {
		return nil, err
	}
	return out, nil
}

// scanMessages reads rows of messageCols, and closes them; filter: keep
// only the UIDs in set (see uidClause).
func scanMessages(rows *sql.Rows, set store.UIDSet, filter bool) ([]store.Message, error) {
	defer rows.Close()
	out := []store.Message{}
	z := zones{}
	for rows.Next() {
		m, err := scanMessage(rows, z)
		if err != nil {
			return nil, err
		}
		if filter && !set.Contains(m.UID) {
			continue
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// blobOf returns the blob of message uid of the mailbox with canonical
// name name.
func (s *Store) blobOf(ctx context.Context, account, name string, uid uint32) (string, error) {
	if err := s.checkOpen(); err != nil {
		return "", err
	}
	defer s.observe("read", time.Now())
	var blob string
	err := rpool{s}.QueryRowContext(ctx, "SELECT blob_id FROM messages WHERE mailbox = "+mailboxIDOf+" AND uid = ?",
		account, name, uid).Scan(&blob)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := getMailbox(ctx, rpool{s}, account, name); err != nil {
			return "", err
		}
		return "", fmt.Errorf("sqlite: message %d: %w", uid, store.ErrNoMessage)
	}
	return blob, err
}

// OpenMessage returns message uid's index row, as ListMessages lists
// it, and its body opened, as OpenBody opens it: one statement for both
// (imap.MessageOpener; a FETCH of one whole message, issue 16). A
// message not (or no longer) there is store.ErrNoMessage.
func (s *Store) OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (store.Message, io.ReadCloser, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return store.Message{}, nil, err
	}
	msgs, err := s.listMessages(ctx, account, name, store.UIDSet{{Start: uid, Stop: uid}})
	if err != nil {
		return store.Message{}, nil, wrapErr("open message", err)
	}
	if len(msgs) == 0 {
		return store.Message{}, nil, fmt.Errorf("sqlite: message %d: %w", uid, store.ErrNoMessage)
	}
	f, err := s.blobs.open(msgs[0].BlobID)
	if errors.Is(err, fs.ErrNotExist) {
		// Expunged (row deleted, then blob freed) between the look-up
		// and the open, as in OpenBody.
		rc, err := s.OpenBody(ctx, account, name, uid)
		return msgs[0], rc, err
	}
	if err != nil {
		return store.Message{}, nil, fmt.Errorf("sqlite: open body of UID %d: %w", uid, err)
	}
	return msgs[0], f, nil
}

// OpenBlob opens the body stored as blobID (a store.Message.BlobID from
// a listing) without an index look-up (imap.BlobOpener: a FETCH of a
// whole message whose listing the server kept, issue 16). The blob is
// freed with the last message that names it: a blob no longer there is
// an error wrapping store.ErrNotFound, and the caller must not take a
// blob that opens as proof that any one message still names it.
func (s *Store) OpenBlob(ctx context.Context, blobID string) (io.ReadCloser, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := s.blobs.open(blobID)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sqlite: blob %s: %w", blobID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: open blob %s: %w", blobID, err)
	}
	return f, nil
}
