package postgres

import (
	"context"
	"fmt"

	"github.com/mailyard/mailyard/store"
)

// Check implements store.Checker: in one read-only snapshot it looks
// for bodies no message names (other than loose ones, being uploaded or
// freed and not yet swept), messages whose body is missing or has
// another size, chunks that do not add up to their body's size, and
// UIDNEXT, HIGHESTMODSEQ, usage and the mailboxes' STATUS counts that
// disagree with the rows.
func (s *Store) Check(ctx context.Context) ([]store.Problem, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	const q = `
SELECT 'orphan-blob', format('blob %s (%s bytes) has no index row', b.id, b.size) FROM blobs b
	WHERE b.loose_since IS NULL AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)
UNION ALL
SELECT 'orphan-blob', format('blob %s (%s bytes) is loose but named by an index row', b.id, b.size) FROM blobs b
	WHERE b.loose_since IS NOT NULL AND EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)
UNION ALL
SELECT 'size-mismatch', format('blob %s has %s bytes, index says %s', b.id, b.size, m.size) FROM messages m JOIN blobs b ON b.id = m.blob_id
	WHERE b.size <> m.size
UNION ALL
SELECT 'size-mismatch', format('blob %s: chunks hold %s bytes, blob says %s', b.id, coalesce(c.n, 0), b.size)
	FROM blobs b LEFT JOIN (SELECT blob, sum(length(data)) AS n FROM blob_chunks GROUP BY blob) c ON c.blob = b.id
	WHERE coalesce(c.n, 0) <> b.size
UNION ALL
SELECT 'counter', format('account %s mailbox %L: UIDNEXT %s <= highest UID %s', mb.account, mb.name, mb.uidnext, x.uid)
	FROM mailboxes mb JOIN (SELECT mailbox, max(uid) AS uid, max(modseq) AS modseq FROM
		(SELECT mailbox, uid, modseq FROM messages UNION ALL SELECT mailbox, uid, modseq FROM expunged) u GROUP BY mailbox) x
	ON x.mailbox = mb.id WHERE x.uid >= mb.uidnext
UNION ALL
SELECT 'counter', format('account %s mailbox %L: HIGHESTMODSEQ %s < MODSEQ %s in use', mb.account, mb.name, mb.highest_modseq, x.modseq)
	FROM mailboxes mb JOIN (SELECT mailbox, max(modseq) AS modseq FROM
		(SELECT mailbox, modseq FROM messages UNION ALL SELECT mailbox, modseq FROM expunged) u GROUP BY mailbox) x
	ON x.mailbox = mb.id WHERE x.modseq > mb.highest_modseq
UNION ALL
SELECT 'counter', format('account %s: usage says %s bytes %s messages, messages hold %s bytes %s messages',
		a.id, a.used_bytes, a.used_messages, coalesce(u.b, 0), coalesce(u.n, 0))
	FROM accounts a LEFT JOIN (SELECT mb.account, sum(m.size) AS b, count(*) AS n FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox
		GROUP BY mb.account) u ON u.account = a.id
	WHERE a.used_bytes <> coalesce(u.b, 0) OR a.used_messages <> coalesce(u.n, 0)
UNION ALL
SELECT 'counter', format('account %s mailbox %L: STATUS counts say %s messages %s unseen %s deleted %s bytes, messages hold %s %s %s %s',
		mb.account, mb.name, mb.messages, mb.unseen, mb.deleted, mb.size, coalesce(c.n, 0), coalesce(c.u, 0), coalesce(c.d, 0), coalesce(c.s, 0))
	FROM mailboxes mb LEFT JOIN (SELECT mailbox, count(*) AS n, sum(1 - mailyard_has_flag(flags, '\Seen')) AS u,
		sum(mailyard_has_flag(flags, '\Deleted')) AS d, sum(size) AS s FROM messages GROUP BY mailbox) c ON c.mailbox = mb.id
	WHERE (mb.messages, mb.unseen, mb.deleted, mb.size) <> (coalesce(c.n, 0), coalesce(c.u, 0), coalesce(c.d, 0), coalesce(c.s, 0))
UNION ALL
-- Rows whose parent is gone: the foreign keys that kept these are
-- dropped (migrations/0011_fewer_foreign_keys.sql).
SELECT 'orphan-row', format('mailbox %s (%L) of missing account %s', mb.id, mb.name, mb.account) FROM mailboxes mb
	WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = mb.account)
UNION ALL
SELECT 'orphan-row', format('%s message rows of missing mailbox %s', count(*), m.mailbox) FROM messages m
	WHERE NOT EXISTS (SELECT 1 FROM mailboxes mb WHERE mb.id = m.mailbox) GROUP BY m.mailbox
UNION ALL
SELECT 'orphan-row', format('%s expunge tombstones of missing mailbox %s', count(*), e.mailbox) FROM expunged e
	WHERE NOT EXISTS (SELECT 1 FROM mailboxes mb WHERE mb.id = e.mailbox) GROUP BY e.mailbox
UNION ALL
SELECT 'orphan-row', format('%s chunks of missing blob %s', count(*), c.blob) FROM blob_chunks c
	WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = c.blob) GROUP BY c.blob
UNION ALL
SELECT 'orphan-row', format('full-text entry of missing blob %s', d.blob_id) FROM text_docs d
	WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = d.blob_id)`
	rows, err := s.pool.Query(ctx, q)
	if err != nil {
		return nil, wrapErr("check", err)
	}
	defer rows.Close()
	var out []store.Problem
	for rows.Next() {
		var p store.Problem
		if err := rows.Scan(&p.Kind, &p.Detail); err != nil {
			return nil, wrapErr("check", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr("check", fmt.Errorf("%w", err))
	}
	return out, nil
}
