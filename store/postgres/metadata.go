package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/mailyard/mailyard/store"
)

var _ store.Metadata = (*Store)(nil)

// metaScope returns the id of mailbox, nil for the server's entries
// (mailbox ""), after checking that it exists; q nil reads from the pool.
func (s *Store) metaScope(ctx context.Context, q pgx.Tx, account, mailbox string) (*int64, error) {
	if mailbox == "" {
		var n int
		var err error
		const sql = `SELECT count(*) FROM accounts WHERE id = $1`
		if q != nil {
			err = q.QueryRow(ctx, sql, account).Scan(&n)
		} else {
			err = s.pool.QueryRow(ctx, sql, account).Scan(&n)
		}
		if err == nil && n == 0 {
			err = errorf("account %q: %w", account, store.ErrNotFound)
		}
		return nil, err
	}
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	m, err := s.mailboxRow(ctx, q, account, name)
	if err != nil {
		return nil, err
	}
	return &m.ID, nil
}

// Metadata implements store.Metadata.
func (s *Store) Metadata(ctx context.Context, account, mailbox string) ([]store.MetadataEntry, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	id, err := s.metaScope(ctx, nil, account, mailbox)
	if err != nil {
		return nil, wrapErr("metadata", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT name, value FROM metadata
		WHERE account = $1 AND coalesce(mailbox, 0) = coalesce($2::bigint, 0) ORDER BY name`, account, id)
	if err != nil {
		return nil, wrapErr("metadata", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.MetadataEntry, error) {
		var e store.MetadataEntry
		err := r.Scan(&e.Name, &e.Value)
		if e.Value == nil {
			e.Value = []byte{}
		}
		return e, err
	})
	if err != nil {
		return nil, wrapErr("metadata", err)
	}
	return out, nil
}

// SetMetadata implements store.Metadata. The account's row is locked
// first, so that two nodes' changes to one account's entries check
// the limits one after the other.
func (s *Store) SetMetadata(ctx context.Context, account, mailbox string, entries []store.MetadataEntry, lim store.MetadataLimits) error {
	entries, err := store.ValidMetadataEntries(entries)
	if err != nil {
		return err
	}
	return s.write(ctx, "set metadata", func(w *wtx) error {
		if _, _, err := w.lockAccount(account); err != nil {
			return err
		}
		id, err := s.metaScope(ctx, w.Tx, account, mailbox)
		if err != nil {
			return err
		}
		const scope = `account = $1 AND coalesce(mailbox, 0) = coalesce($2::bigint, 0)`
		var before int
		if err := w.QueryRow(ctx, `SELECT count(*) FROM metadata WHERE `+scope, account, id).Scan(&before); err != nil {
			return err
		}
		var accountBefore int64
		if err := w.QueryRow(ctx, `SELECT coalesce(sum(octet_length(name) + length(value)), 0) FROM metadata WHERE account = $1`, account).Scan(&accountBefore); err != nil {
			return err
		}
		after, accountAfter := before, accountBefore
		for _, e := range entries {
			var old []byte
			err := w.QueryRow(ctx, `SELECT value FROM metadata WHERE `+scope+` AND name = $3`, account, id, e.Name).Scan(&old)
			switch {
			case err == nil:
				after--
				accountAfter -= store.MetadataSize(e.Name, old)
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
			if e.Value != nil {
				after++
				accountAfter += store.MetadataSize(e.Name, e.Value)
			}
		}
		if err := store.CheckMetadataLimits(entries, lim, before, after, accountBefore, accountAfter); err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := w.Exec(ctx, `DELETE FROM metadata WHERE `+scope+` AND name = $3`, account, id, e.Name); err != nil {
				return err
			}
			if e.Value == nil {
				continue
			}
			if _, err := w.Exec(ctx, `INSERT INTO metadata (account, mailbox, name, value) VALUES ($1, $2, $3, $4)`, account, id, e.Name, e.Value); err != nil {
				return err
			}
		}
		return nil
	})
}
