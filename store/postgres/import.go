package postgres

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

var _ store.Importer = (*Store)(nil)

// ImportMailbox implements store.Importer: one transaction of at most
// five statements besides BEGIN and COMMIT.
func (s *Store) ImportMailbox(ctx context.Context, account string, mb store.Mailbox) (store.Mailbox, error) {
	name, err := store.CheckImportMailbox(mb)
	if err != nil {
		return store.Mailbox{}, err
	}
	uidNext, modSeq := max(int64(mb.UIDNext), 1), max(int64(mb.HighestModSeq), 1)
	var out store.Mailbox
	err = s.write(ctx, "import mailbox", func(w *wtx) error {
		if _, _, err := w.lockAccount(account); err != nil {
			return err
		}
		// The mailbox's special use may change: LIST shows it.
		w.listChanged(account)
		var id, uv, next int64
		err := w.QueryRow(ctx, `SELECT id, uidvalidity, uidnext FROM mailboxes WHERE account = $1 AND name = $2`, account, name).Scan(&id, &uv, &next)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if err := w.QueryRow(ctx, `INSERT INTO mailboxes (account, name, special_use, uidvalidity) VALUES ($1, $2, '', $3) RETURNING id`,
				account, name, int64(mb.UIDValidity)).Scan(&id); err != nil {
				return err
			}
			w.publish(store.Change{Kind: store.ChangeMailboxCreated, Account: account, Mailbox: name, ModSeq: 1})
		case err != nil:
			return err
		case uv != int64(mb.UIDValidity) && next != 1:
			return errorf("import mailbox %q: %w with UIDVALIDITY %d and UIDs given out", name, store.ErrExists, uv)
		}
		_, err = w.Exec(ctx, `WITH m AS (UPDATE mailboxes SET special_use = $2, uidvalidity = $3,
				uidnext = GREATEST(uidnext, $4), highest_modseq = GREATEST(highest_modseq, $5) WHERE id = $1)
			UPDATE mailyard_meta SET value = GREATEST(value, $3) WHERE key = 'last_uidvalidity'`,
			id, string(mb.SpecialUse), int64(mb.UIDValidity), uidNext, modSeq)
		if err != nil {
			return err
		}
		out, err = s.mailboxRow(ctx, w.Tx, account, name)
		return err
	})
	return out, err
}

// ImportMessage implements store.Importer. The body is streamed into
// the blob store inside the transaction, after the UID is found free.
func (s *Store) ImportMessage(ctx context.Context, account, mailbox string, m store.Message, body io.Reader) error {
	name, flags, err := store.CheckImportMessage(mailbox, m)
	if err != nil {
		return err
	}
	return s.write(ctx, "import message", func(w *wtx) error {
		b, err := w.lockMailbox(account, name)
		if err != nil {
			return err
		}
		var taken bool
		if err := w.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE mailbox = $1 AND uid = $2)
			OR EXISTS (SELECT 1 FROM expunged WHERE mailbox = $1 AND uid = $2)`, b.id, int64(m.UID)).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return errorf("import message: UID %d of %q: %w", m.UID, name, store.ErrExists)
		}
		tee, tt := startText(body)
		blob, size, err := s.blobs.create(ctx, w.Tx, tee)
		text := tt.finish(err)
		if err != nil {
			return err
		}
		if m.Size != 0 && size != m.Size {
			return errorf("import message: UID %d of %q: %w: body of %d bytes, want %d", m.UID, name, store.ErrInvalid, size, m.Size)
		}
		date := m.InternalDate
		_, err = w.Exec(ctx, `WITH i AS (INSERT INTO messages (mailbox, uid, modseq, flags, internal_date, internal_zone, size, blob_id, save_date)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10)),
			b AS (UPDATE mailboxes mb SET uidnext = GREATEST(uidnext, $2 + 1), highest_modseq = GREATEST(highest_modseq, $3), `+countsMoveSQL("+")+`
				FROM (SELECT `+countsOfSQL("$4::text", "$7::bigint")+`) x WHERE mb.id = $1),
			x AS (`+textInsertSQL("$11", "$12", "$13", "$14", "$15")+`)
			UPDATE accounts SET used_bytes = used_bytes + $7, used_messages = used_messages + 1 WHERE id = $9`,
			append([]any{b.id, int64(m.UID), int64(m.ModSeq), strings.Join(flags, " "), date.UnixNano(), zoneOf(date), size, blob, account, saveNanos(m.SaveDate)},
				textsOf(blob, text).args()...)...)
		if err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: account, Mailbox: name, UIDs: []uint32{m.UID}, ModSeq: max(m.ModSeq, uint64(b.modSeq))})
		return nil
	})
}

// ImportSyncToken implements store.Importer: one transaction of two
// statements besides BEGIN and COMMIT.
func (s *Store) ImportSyncToken(ctx context.Context, collectionID int64, token uint64) error {
	if token == 0 || token > math.MaxInt64 {
		return errorf("%w: import of sync token %d", store.ErrInvalid, token)
	}
	return s.write(ctx, "import sync token", func(w *wtx) error {
		account, _, cur, err := w.lockCollection(collectionID)
		if err != nil {
			return err
		}
		if cur > int64(token) {
			return errorf("%w: import of sync token %d below the collection's %d", store.ErrInvalid, token, cur)
		}
		if _, err := w.Exec(ctx, `WITH c AS (UPDATE collections SET sync_token = $2, pruned_token = $2 WHERE id = $1)
			DELETE FROM object_changes WHERE collection = $1`, collectionID, int64(token)); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeCollection, Account: account, CollectionID: collectionID, SyncToken: token})
		return nil
	})
}

// ImportTombstones implements store.Importer: one transaction of three
// statements besides BEGIN and COMMIT, whatever the number of
// tombstones.
func (s *Store) ImportTombstones(ctx context.Context, account, mailbox string, ts []store.Tombstone) error {
	name, err := store.CheckImportTombstones(mailbox, ts)
	if err != nil {
		return err
	}
	uids, modSeqs := make([]int64, len(ts)), make([]int64, len(ts))
	var top uint32
	var topModSeq uint64
	for i, t := range ts {
		uids[i], modSeqs[i] = int64(t.UID), int64(t.ModSeq)
		top, topModSeq = max(top, t.UID), max(topModSeq, t.ModSeq)
	}
	return s.write(ctx, "import tombstones", func(w *wtx) error {
		b, err := w.lockMailbox(account, name)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			return nil
		}
		var live int64
		err = w.QueryRow(ctx, `SELECT uid FROM messages WHERE mailbox = $1 AND uid = ANY($2) LIMIT 1`, b.id, uids).Scan(&live)
		if err == nil {
			return errorf("import tombstones: UID %d of %q holds a message: %w", live, name, store.ErrExists)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// UIDNEXT and HIGHESTMODSEQ may move without a feed row: the
		// commit moves the change counts of this node and, notified
		// (as SetSubscribed's), of the others.
		_, err = w.Exec(ctx, `WITH i AS (INSERT INTO expunged (mailbox, uid, modseq)
				SELECT $1, u, m FROM unnest($2::bigint[], $3::bigint[]) AS t(u, m) ON CONFLICT (mailbox, uid) DO NOTHING)
			UPDATE mailboxes SET uidnext = GREATEST(uidnext, $4), highest_modseq = GREATEST(highest_modseq, $5) WHERE id = $1`,
			b.id, uids, modSeqs, int64(top)+1, int64(topModSeq))
		w.touched = append(w.touched, account)
		return err
	})
}

// ImportChangeLog implements store.Importer: one transaction of three
// statements besides BEGIN and COMMIT, whatever the log's length.
func (s *Store) ImportChangeLog(ctx context.Context, collectionID int64, log store.ChangeLog) error {
	if err := store.CheckChangeLog(log); err != nil {
		return err
	}
	toks, names, dels := make([]int64, len(log.Changes)), make([]string, len(log.Changes)), make([]bool, len(log.Changes))
	for i, c := range log.Changes {
		toks[i], names[i], dels[i] = int64(c.Token), c.Name, c.Deleted
	}
	return s.write(ctx, "import change log", func(w *wtx) error {
		account, _, cur, err := w.lockCollection(collectionID)
		if err != nil {
			return err
		}
		if cur > int64(log.SyncToken) {
			return errorf("%w: import of sync token %d below the collection's %d", store.ErrInvalid, log.SyncToken, cur)
		}
		if _, err := w.Exec(ctx, `DELETE FROM object_changes WHERE collection = $1`, collectionID); err != nil {
			return err
		}
		if _, err := w.Exec(ctx, `WITH c AS (UPDATE collections SET sync_token = $2, pruned_token = $3 WHERE id = $1)
			INSERT INTO object_changes (collection, token, name, deleted)
			SELECT $1, t, n, d FROM unnest($4::bigint[], $5::text[], $6::boolean[]) AS l(t, n, d)`,
			collectionID, int64(log.SyncToken), int64(log.Pruned), toks, names, dels); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeCollection, Account: account, CollectionID: collectionID, SyncToken: log.SyncToken})
		return nil
	})
}
