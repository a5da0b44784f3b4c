package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
	acct := store.Account{ID: id, Quota: q}
	err := s.write(ctx, func(tx *wtx) error {
		acct.Created = s.now().UTC()
		_, err := tx.exec(`INSERT INTO accounts (id, max_bytes, max_messages, created) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, id, q.MaxBytes, q.MaxMessages, acct.Created.UnixNano())
		if err != nil {
			return err
		}
		var n int64
		if err := tx.queryRow("SELECT changes()").Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlite: account %q: %w", id, store.ErrExists)
		}
		for _, m := range store.DefaultMailboxes() {
			if _, err := tx.insertMailbox(id, m.Name, m.Use, true); err != nil {
				return err
			}
		}
		for _, c := range []store.Collection{
			{Account: id, Kind: store.KindCalendar, Name: "calendar", DisplayName: "Calendar"},
			{Account: id, Kind: store.KindAddressBook, Name: "contacts", DisplayName: "Contacts"},
		} {
			if _, err := tx.insertCollection(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.Account{}, wrapErr("create account", err)
	}
	return acct, nil
}

// Account implements store.Accounts.
func (s *Store) Account(ctx context.Context, id string) (store.Account, error) {
	if err := s.checkOpen(); err != nil {
		return store.Account{}, err
	}
	row := s.rdb.QueryRowContext(ctx, "SELECT id, max_bytes, max_messages, created FROM accounts WHERE id = ?", id)
	a, err := scanAccount(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, fmt.Errorf("sqlite: account %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("sqlite: account: %w", err)
	}
	return a, nil
}

func scanAccount(r interface{ Scan(...any) error }) (store.Account, error) {
	var a store.Account
	var created int64
	if err := r.Scan(&a.ID, &a.Quota.MaxBytes, &a.Quota.MaxMessages, &created); err != nil {
		return a, err
	}
	a.Created = fromNanos(created)
	return a, nil
}

// ListAccounts implements store.Accounts. limit <= 0 means no limit.
func (s *Store) ListAccounts(ctx context.Context, after string, limit int) ([]store.Account, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, max_bytes, max_messages, created FROM accounts
		WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list accounts: %w", err)
	}
	defer rows.Close()
	var out []store.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list accounts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list accounts: %w", err)
	}
	return out, nil
}

// SetQuota implements store.Accounts.
func (s *Store) SetQuota(ctx context.Context, id string, q store.Quota) error {
	if err := store.ValidQuota(q); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec("UPDATE accounts SET max_bytes = ?, max_messages = ? WHERE id = ?", q.MaxBytes, q.MaxMessages, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: account %q: %w", id, store.ErrNotFound)
		}
		return nil
	})
	return wrapErr("set quota", err)
}

// Usage implements store.Accounts.
func (s *Store) Usage(ctx context.Context, id string) (store.Usage, store.Quota, error) {
	if err := s.checkOpen(); err != nil {
		return store.Usage{}, store.Quota{}, err
	}
	var u store.Usage
	var q store.Quota
	err := s.rdb.QueryRowContext(ctx, "SELECT used_bytes, used_messages, max_bytes, max_messages FROM accounts WHERE id = ?", id).
		Scan(&u.Bytes, &u.Messages, &q.MaxBytes, &q.MaxMessages)
	if errors.Is(err, sql.ErrNoRows) {
		return u, q, fmt.Errorf("sqlite: account %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return u, q, fmt.Errorf("sqlite: usage: %w", err)
	}
	return u, q, nil
}

// DeleteAccount implements store.Accounts. Message bodies no other account
// shares are deleted after the commit.
func (s *Store) DeleteAccount(ctx context.Context, id string) error {
	err := s.write(ctx, func(tx *wtx) error {
		if err := tx.accountExists(id); err != nil {
			return err
		}
		blobs, err := tx.stringsQuery(`SELECT DISTINCT m.blob_id FROM messages m
			JOIN mailboxes b ON b.id = m.mailbox WHERE b.account = ?`, id)
		if err != nil {
			return err
		}
		if _, err := tx.exec("DELETE FROM accounts WHERE id = ?", id); err != nil {
			return err
		}
		if err := tx.dropBlobRefs(blobs); err != nil {
			return err
		}
		tx.publish(store.Change{Kind: store.ChangeAccountDeleted, Account: id})
		return nil
	})
	return wrapErr("delete account", err)
}

func (t *wtx) accountExists(id string) error { return accountExists(t.ctx, t, id) }

// accountExists returns an error wrapping store.ErrNotFound if the account
// does not exist.
func accountExists(ctx context.Context, q querier, id string) error {
	var n int
	if err := q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?)", id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlite: account %q: %w", id, store.ErrNotFound)
	}
	return nil
}

func (t *wtx) stringsQuery(q string, args ...any) ([]string, error) {
	return queryStrings(t.ctx, t, q, args...)
}

// queryStrings runs a query of one text column and returns its values.
func queryStrings(ctx context.Context, db querier, q string, args ...any) ([]string, error) {
	return queryColumn[string](ctx, db, q, args...)
}

// queryColumn runs a query of one column and returns its values.
func queryColumn[T any](ctx context.Context, db querier, q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// wrapErr adds the operation to an error unless it is one of the store's
// own, which already say what happened.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, e := range []error{store.ErrNotFound, store.ErrExists, store.ErrInvalid, store.ErrQuotaExceeded,
		store.ErrPreconditionFailed, store.ErrSyncTokenInvalid, store.ErrClosed, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return err
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }
