package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

// CreateAccount implements store.Accounts.
func (s *Store) CreateAccount(ctx context.Context, id string, q store.Quota) (store.Account, error) {
	if err := store.ValidAccountID(id); err != nil {
		return store.Account{}, err
	}
	if err := store.ValidQuota(q); err != nil {
		return store.Account{}, err
	}
	a := store.Account{ID: id, Quota: q, Created: time.Unix(0, s.now().UnixNano()).UTC()}
	err := s.write(ctx, "create account", func(w *wtx) error {
		// feed_seq continues after the changes of an earlier account of
		// this ID that are still in the feed, so its rows stay unique.
		_, err := w.Exec(ctx, `INSERT INTO accounts (id, max_bytes, max_messages, created, feed_seq)
			VALUES ($1, $2, $3, $4, coalesce((SELECT max(seq) FROM feed WHERE account = $1), 0))`,
			id, q.MaxBytes, q.MaxMessages, a.Created.UnixNano())
		if pgCode(err) == codeUniqueViolation {
			return errorf("account %q: %w", id, store.ErrExists)
		}
		if err != nil {
			return err
		}
		// Every node forgets what it knew of an earlier account of
		// this ID (ListChangeCount, the mailbox memory).
		w.listChanged(id)
		var names []string
		var uses []store.SpecialUse
		for _, m := range store.DefaultMailboxes() {
			names, uses = append(names, m.Name), append(uses, m.Use)
		}
		if _, err := w.insertMailboxes(id, names, uses, false); err != nil {
			return err
		}
		_, err = w.Exec(ctx, `INSERT INTO subscriptions (account, name) SELECT $1, unnest($2::text[]);
			`, id, names)
		if err != nil {
			return err
		}
		_, err = w.Exec(ctx, `INSERT INTO collections (account, kind, name, display_name) VALUES
			($1, 'calendar', 'calendar', 'Calendar'), ($1, 'addressbook', 'contacts', 'Contacts')`, id)
		return err
	})
	if err != nil {
		return store.Account{}, err
	}
	return a, nil
}

const accountCols = `id, max_bytes, max_messages, created`

func scanAccount(row pgx.Row) (store.Account, error) {
	var a store.Account
	var created int64
	err := row.Scan(&a.ID, &a.Quota.MaxBytes, &a.Quota.MaxMessages, &created)
	a.Created = time.Unix(0, created).UTC()
	return a, err
}

// Account implements store.Accounts.
func (s *Store) Account(ctx context.Context, id string) (store.Account, error) {
	if err := s.checkOpen(ctx); err != nil {
		return store.Account{}, err
	}
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Account{}, errorf("account %q: %w", id, store.ErrNotFound)
	}
	return a, wrapErr("account", err)
}

// ListAccounts implements store.Accounts. limit <= 0 means no limit.
func (s *Store) ListAccounts(ctx context.Context, after string, limit int) ([]store.Account, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, `SELECT `+accountCols+` FROM accounts WHERE id > $1 ORDER BY id LIMIT $2`, after, lim)
	if err != nil {
		return nil, wrapErr("list accounts", err)
	}
	defer rows.Close()
	var out []store.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, wrapErr("list accounts", err)
		}
		out = append(out, a)
	}
	return out, wrapErr("list accounts", rows.Err())
}

// SetQuota implements store.Accounts.
func (s *Store) SetQuota(ctx context.Context, id string, q store.Quota) error {
	if err := store.ValidQuota(q); err != nil {
		return err
	}
	return s.write(ctx, "set quota", func(w *wtx) error {
		tag, err := w.Exec(ctx, `UPDATE accounts SET max_bytes = $2, max_messages = $3 WHERE id = $1`, id, q.MaxBytes, q.MaxMessages)
		if err == nil && tag.RowsAffected() == 0 {
			err = errorf("account %q: %w", id, store.ErrNotFound)
		}
		return err
	})
}

// Usage implements store.Accounts.
func (s *Store) Usage(ctx context.Context, id string) (store.Usage, store.Quota, error) {
	var u store.Usage
	var q store.Quota
	if err := s.checkOpen(ctx); err != nil {
		return u, q, err
	}
	err := s.pool.QueryRow(ctx, `SELECT used_bytes, used_messages, max_bytes, max_messages FROM accounts WHERE id = $1`, id).
		Scan(&u.Bytes, &u.Messages, &q.MaxBytes, &q.MaxMessages)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, q, errorf("account %q: %w", id, store.ErrNotFound)
	}
	return u, q, wrapErr("usage", err)
}

// DeleteAccount implements store.Accounts: the account's rows go, and
// the bodies no other account shares.
func (s *Store) DeleteAccount(ctx context.Context, id string) error {
	return s.write(ctx, "delete account", func(w *wtx) error {
		if _, _, err := w.lockAccount(id); err != nil {
			return err
		}
		rows, err := w.Query(ctx, `DELETE FROM messages WHERE mailbox IN (SELECT id FROM mailboxes WHERE account = $1) RETURNING blob_id`, id)
		if err != nil {
			return err
		}
		blobs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		// The change is numbered while the account row still exists.
		w.publish(store.Change{Kind: store.ChangeAccountDeleted, Account: id})
		if err := w.flushFeed(); err != nil {
			return err
		}
		// The account's mailboxes and their tombstones go with it
		// (migrations/0011_fewer_foreign_keys.sql: no cascade).
		if _, err := w.Exec(ctx, `WITH e AS (DELETE FROM expunged WHERE mailbox IN (SELECT id FROM mailboxes WHERE account = $1)),
			m AS (DELETE FROM mailboxes WHERE account = $1)
			DELETE FROM accounts WHERE id = $1`, id); err != nil {
			return err
		}
		return w.release(uniq(blobs))
	})
}

// uniq returns ids without repeats.
func uniq(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
