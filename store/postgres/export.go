package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

var _ store.Exporter = (*Store)(nil)

// Tombstones implements store.Exporter: one read-only transaction of
// two statements.
func (s *Store) Tombstones(ctx context.Context, account, mailbox string) ([]store.Tombstone, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	out := []store.Tombstone{}
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		mb, err := s.mailboxRow(ctx, tx, account, name)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT uid, modseq FROM expunged WHERE mailbox = $1 ORDER BY uid`, mb.ID)
		if err != nil {
			return err
		}
		out, err = pgx.AppendRows(out, rows, func(row pgx.CollectableRow) (store.Tombstone, error) {
			var uid, modSeq int64
			err := row.Scan(&uid, &modSeq)
			return store.Tombstone{UID: uint32(uid), ModSeq: uint64(modSeq)}, err
		})
		return err
	})
	if err != nil {
		return nil, wrapErr("tombstones", err)
	}
	return out, nil
}

// ChangeLog implements store.Exporter: one read-only transaction of two
// statements.
func (s *Store) ChangeLog(ctx context.Context, collectionID int64) (store.ChangeLog, error) {
	if err := s.checkOpen(ctx); err != nil {
		return store.ChangeLog{}, err
	}
	log := store.ChangeLog{Changes: []store.LoggedChange{}}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var cur, pruned int64
		err := tx.QueryRow(ctx, `SELECT sync_token, pruned_token FROM collections WHERE id = $1`, collectionID).Scan(&cur, &pruned)
		if errors.Is(err, pgx.ErrNoRows) {
			return errorf("collection %d: %w", collectionID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		log.SyncToken, log.Pruned = uint64(cur), uint64(pruned)
		rows, err := tx.Query(ctx, `SELECT token, name, deleted FROM object_changes WHERE collection = $1 ORDER BY token`, collectionID)
		if err != nil {
			return err
		}
		log.Changes, err = pgx.AppendRows(log.Changes, rows, func(row pgx.CollectableRow) (store.LoggedChange, error) {
			var c store.LoggedChange
			var tok int64
			err := row.Scan(&tok, &c.Name, &c.Deleted)
			c.Token = uint64(tok)
			return c, err
		})
		return err
	})
	if err != nil {
		return store.ChangeLog{}, wrapErr("change log", err)
	}
	return log, nil
}
