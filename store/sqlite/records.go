package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mailyard/mailyard/store"
)

func validRecordKey(namespace, key string) error {
	if namespace == "" || key == "" {
		return fmt.Errorf("%w: record namespace and key must not be empty", store.ErrInvalid)
	}
	return nil
}

func getRecord(ctx context.Context, q querier, namespace, key string) (store.Record, error) {
	r := store.Record{Namespace: namespace, Key: key}
	err := q.QueryRowContext(ctx, "SELECT value, version FROM records WHERE namespace = ? AND key = ?", namespace, key).Scan(&r.Value, &r.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Record{}, fmt.Errorf("sqlite: record %s/%s: %w", namespace, key, store.ErrNotFound)
	}
	if err != nil {
		return store.Record{}, fmt.Errorf("sqlite: get record: %w", err)
	}
	return r, nil
}

func listRecords(ctx context.Context, q querier, namespace, after string, limit int) ([]store.Record, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := q.QueryContext(ctx, "SELECT key, value, version FROM records WHERE namespace = ? AND key > ? ORDER BY key LIMIT ?",
		namespace, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list records: %w", err)
	}
	defer rows.Close()
	out := []store.Record{}
	for rows.Next() {
		r := store.Record{Namespace: namespace}
		if err := rows.Scan(&r.Key, &r.Value, &r.Version); err != nil {
			return nil, fmt.Errorf("sqlite: list records: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list records: %w", err)
	}
	return out, nil
}

// GetRecord implements store.Records, with the read pool's prepared
// statement (see rstmt): a directory lookup reads two or three records.
func (s *Store) GetRecord(ctx context.Context, namespace, key string) (store.Record, error) {
	if err := s.checkOpen(); err != nil {
		return store.Record{}, err
	}
	return getRecord(ctx, rpool{s}, namespace, key)
}

// ListRecords implements store.Records. limit <= 0 means no limit.
func (s *Store) ListRecords(ctx context.Context, namespace, after string, limit int) ([]store.Record, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	return listRecords(ctx, rpool{s}, namespace, after, limit)
}

// UpdateRecords implements store.Records. fn runs once, in the writer
// goroutine, inside its own savepoint of a group commit: it sees its own
// writes, and if it returns an error (returned unchanged) or panics
// nothing it wrote is kept. Since there is a single writer there are no
// conflicts to retry. fn must not call other methods of the Store (the
// writer would wait for itself) and should be quick: other writes queue
// behind it.
func (s *Store) UpdateRecords(ctx context.Context, fn func(tx store.RecordTx) error) error {
	var fnErr error
	err := s.write(ctx, func(t *wtx) error {
		fnErr = fn(&recordTx{t: t})
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	return wrapErr("update records", err)
}

// recordTx implements store.RecordTx on the write transaction.
type recordTx struct{ t *wtx }

func (r *recordTx) Get(namespace, key string) (store.Record, error) {
	return getRecord(r.t.ctx, r.t, namespace, key)
}

// Put writes a record in one statement for each kind of expectVersion
// (a checkpoint writes one per copied message): an upsert that counts
// the version up, an insert that must not meet a row, an update that
// must meet the expected version; the current version is read only to
// word a failed precondition.
func (r *recordTx) Put(namespace, key string, value []byte, expectVersion int64) error {
	if err := validRecordKey(namespace, key); err != nil {
		return err
	}
	var res sql.Result
	var err error
	switch {
	case expectVersion < 0:
		_, err = r.t.exec(`INSERT INTO records (namespace, key, value, version) VALUES (?, ?, ?, 1)
			ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = records.version + 1`,
			namespace, key, nonNil(value))
		if err != nil {
			return fmt.Errorf("sqlite: put record: %w", err)
		}
		return nil
	case expectVersion == 0:
		res, err = r.t.exec(`INSERT INTO records (namespace, key, value, version) VALUES (?, ?, ?, 1)
			ON CONFLICT (namespace, key) DO NOTHING`, namespace, key, nonNil(value))
	default:
		res, err = r.t.exec(`UPDATE records SET value = ?, version = version + 1
			WHERE namespace = ? AND key = ? AND version = ?`, nonNil(value), namespace, key, expectVersion)
	}
	if err != nil {
		return fmt.Errorf("sqlite: put record: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var cur int64
	err = r.t.queryRow("SELECT version FROM records WHERE namespace = ? AND key = ?", namespace, key).Scan(&cur)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: put record: %w", err)
	}
	return fmt.Errorf("sqlite: record %s/%s is at version %d, not %d: %w", namespace, key, cur, expectVersion, store.ErrPreconditionFailed)
}

func (r *recordTx) Delete(namespace, key string) error {
	res, err := r.t.exec("DELETE FROM records WHERE namespace = ? AND key = ?", namespace, key)
	if err != nil {
		return fmt.Errorf("sqlite: delete record: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: record %s/%s: %w", namespace, key, store.ErrNotFound)
	}
	return nil
}

func (r *recordTx) List(namespace, after string, limit int) ([]store.Record, error) {
	return listRecords(r.t.ctx, r.t, namespace, after, limit)
}
