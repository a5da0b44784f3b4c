package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mailyard/mailyard/store"
)

var _ store.Exporter = (*Store)(nil)

// Tombstones implements store.Exporter.
func (s *Store) Tombstones(ctx context.Context, account, mailbox string) ([]store.Tombstone, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	out := []store.Tombstone{}
	err = s.readTx(ctx, func(tx *rtx) error {
		m, err := getMailbox(ctx, tx, account, name)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT uid, modseq FROM expunged WHERE mailbox = ? ORDER BY uid", m.ID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t store.Tombstone
			if err := rows.Scan(&t.UID, &t.ModSeq); err != nil {
				return err
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr("tombstones", err)
	}
	return out, nil
}

// ChangeLog implements store.Exporter.
func (s *Store) ChangeLog(ctx context.Context, collectionID int64) (store.ChangeLog, error) {
	log := store.ChangeLog{Changes: []store.LoggedChange{}}
	err := s.readTx(ctx, func(tx *rtx) error {
		err := tx.QueryRowContext(ctx, "SELECT sync_token, pruned_token FROM collections WHERE id = ?", collectionID).Scan(&log.SyncToken, &log.Pruned)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: collection %d: %w", collectionID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT token, name, deleted FROM object_changes WHERE collection = ? ORDER BY token", collectionID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c store.LoggedChange
			var del int
			if err := rows.Scan(&c.Token, &c.Name, &del); err != nil {
				return err
			}
			c.Deleted = del != 0
			log.Changes = append(log.Changes, c)
		}
		return rows.Err()
	})
	if err != nil {
		return store.ChangeLog{}, wrapErr("change log", err)
	}
	return log, nil
}
