package postgres

import (
	"context"
	"io"

	"github.com/mailyard/mailyard/store"
)

// openPageBytes bounds the first chunks one statement of OpenMessages
// reads (besides one chunk that starts below the bound): a page is held
// in memory while its bodies are handed out, and no connection is held
// meanwhile.
const openPageBytes = 1 << 20

// OpenMessages calls fn with the index row and the opened body of each
// message of uids in mailbox, in UID order: an IMAP FETCH of the bodies
// of n messages, which with OpenMessage or OpenBody is one statement per
// message besides the listing, is one statement for every MiB of the
// bodies' first chunks (256 KiB each at most), whatever n; a body of
// more than one chunk reads each further chunk in a statement of its
// own as it is read, as an OpenBody body does. The body given to fn
// seeks (a FETCH reads a section twice) and is valid until fn returns;
// fn runs with no connection held. Messages expunged meanwhile are
// left out; errors are those of ListMessages, or fn's, which ends the
// walk.
func (s *Store) OpenMessages(ctx context.Context, account, mailbox string, uids store.UIDSet, fn func(store.Message, io.ReadSeeker) error) error {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return err
	}
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	lo, hi := uidRanges(uids)
	var after int64
	for {
		page, last, more, err := s.openPage(ctx, account, name, lo, hi, after)
		if err != nil {
			return wrapErr("open messages", err)
		}
		for _, o := range page {
			r := &bodyReader{chunkReader: chunkReader{ctx: ctx, pool: s.pool, id: o.blob, buf: o.first, left: o.m.Size - int64(len(o.first)), next: 1}, size: o.m.Size}
			if r.left == 0 {
				r.whole = o.first
			}
			if err := fn(o.m, r); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		after = last
	}
}

// openedRow is a message of an OpenMessages page with its body's first
// chunk.
type openedRow struct {
	m     store.Message
	blob  int64
	first []byte
}

// openPage reads the messages of the set above UID after whose first
// chunks fit in openPageBytes (at least one), in one statement; last
// is the highest UID the page covered (its own messages and any whose
// body was gone), more whether the set holds messages past it. The running
// sum is of the messages' sizes capped at a chunk, so the statement
// reads no chunk it does not return.
func (s *Store) openPage(ctx context.Context, account, name string, lo, hi []int64, after int64) (page []openedRow, last int64, more bool, err error) {
	rows, err := s.pool.Query(ctx, `WITH mb AS (SELECT (SELECT id FROM mailboxes WHERE account = $1 AND name = $2) AS mid FROM accounts WHERE id = $1),
		sel AS (SELECT m.*, sum(least(m.size, `+strconvI(chunkSize)+`)) OVER (ORDER BY m.uid) AS run,
				sum(least(m.size, `+strconvI(chunkSize)+`)) OVER () AS total
			FROM messages m, mb WHERE m.mailbox = mb.mid AND m.uid > $5 AND `+uidSetSQL("m.uid", "$3", "$4")+`)
		SELECT mb.mid, `+msgCols+`, m.run, m.total, c.data FROM mb
			LEFT JOIN sel m ON m.run - least(m.size, `+strconvI(chunkSize)+`) < $6
			LEFT JOIN blob_chunks c ON c.blob = m.blob_id AND c.n = 0
		ORDER BY m.uid`, account, name, lo, hi, after, int64(openPageBytes))
	if err != nil {
		return nil, 0, false, err
	}
	defer rows.Close()
	found := false
	var run, total *int64
	for rows.Next() {
		found = true
		var mid *int64
		var r msgRow
		var first []byte
		if err := rows.Scan(append(append([]any{&mid}, r.dest()...), &run, &total, &first)...); err != nil {
			return nil, 0, false, err
		}
		if mid == nil {
			return nil, 0, false, errorf("mailbox %q: %w", name, store.ErrNoMailbox)
		}
		if r.uid == nil {
			break // no message in the set: the one row of mb
		}
		last = *r.uid
		if first == nil {
			continue // expunged and its body swept since
		}
		page = append(page, openedRow{m: r.message(), blob: *r.blob, first: first})
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, err
	}
	if !found {
		return nil, 0, false, errorf("account %q: %w", account, store.ErrNotFound)
	}
	return page, last, run != nil && *run < *total, nil
}
