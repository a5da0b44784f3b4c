package sqlite

import (
	"context"
	"database/sql"

	"github.com/mailyard/mailyard/store"
)

var _ store.Metadata = (*Store)(nil)

// metaScope returns the SQL condition and arguments that select the
// entries of mailbox ("" for the server's) of account, after checking
// that the mailbox exists.
func metaScope(ctx context.Context, q querier, account, mailbox string) (string, []any, error) {
	if mailbox == "" {
		if err := accountExists(ctx, q, account); err != nil {
			return "", nil, err
		}
		return "account = ? AND mailbox IS NULL", []any{account}, nil
	}
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return "", nil, err
	}
	m, err := getMailbox(ctx, q, account, name)
	if err != nil {
		return "", nil, err
	}
	return "account = ? AND mailbox = ?", []any{account, m.ID}, nil
}

// Metadata implements store.Metadata.
func (s *Store) Metadata(ctx context.Context, account, mailbox string) ([]store.MetadataEntry, error) {
	var out []store.MetadataEntry
	err := s.readTx(ctx, func(tx *rtx) error {
		where, args, err := metaScope(ctx, tx, account, mailbox)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT name, value FROM metadata WHERE "+where+" ORDER BY name", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e store.MetadataEntry
			if err := rows.Scan(&e.Name, &e.Value); err != nil {
				return err
			}
			if e.Value == nil {
				e.Value = []byte{}
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr("metadata", err)
	}
	return out, nil
}

// SetMetadata implements store.Metadata.
func (s *Store) SetMetadata(ctx context.Context, account, mailbox string, entries []store.MetadataEntry, lim store.MetadataLimits) error {
	entries, err := store.ValidMetadataEntries(entries)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *wtx) error {
		where, args, err := metaScope(tx.ctx, tx, account, mailbox)
		if err != nil {
			return err
		}
		var before int
		if err := tx.queryRow("SELECT count(*) FROM metadata WHERE "+where, args...).Scan(&before); err != nil {
			return err
		}
		var accountBefore int64
		if err := tx.queryRow("SELECT coalesce(sum(length(CAST(name AS BLOB)) + length(value)), 0) FROM metadata WHERE account = ?", account).Scan(&accountBefore); err != nil {
			return err
		}
		after, accountAfter := before, accountBefore
		for _, e := range entries {
			var old []byte
			err := tx.queryRow("SELECT value FROM metadata WHERE "+where+" AND name = ?", append(args, e.Name)...).Scan(&old)
			switch {
			case err == nil:
				after--
				accountAfter -= store.MetadataSize(e.Name, old)
			case err != sql.ErrNoRows:
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
		var mailboxID any // NULL: the server's entries
		if len(args) == 2 {
			mailboxID = args[1]
		}
		for _, e := range entries {
			if _, err := tx.exec("DELETE FROM metadata WHERE "+where+" AND name = ?", append(args, e.Name)...); err != nil {
				return err
			}
			if e.Value == nil {
				continue
			}
			if _, err := tx.exec("INSERT INTO metadata (account, mailbox, name, value) VALUES (?, ?, ?, ?)", account, mailboxID, e.Name, e.Value); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapErr("set metadata", err)
}
