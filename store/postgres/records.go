package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

func validRecordKey(namespace, key string) error {
	if namespace == "" || key == "" {
		return errorf("%w: record namespace and key must not be empty", store.ErrInvalid)
	}
	return nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func getRecord(ctx context.Context, q querier, namespace, key, suffix string) (store.Record, error) {
	r := store.Record{Namespace: namespace, Key: key}
	err := q.QueryRow(ctx, `SELECT value, version FROM records WHERE namespace = $1 AND key = $2`+suffix, namespace, key).Scan(&r.Value, &r.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Record{}, errorf("record %s/%s: %w", namespace, key, store.ErrNotFound)
	}
	if r.Value == nil {
		r.Value = []byte{}
	}
	return r, err
}

func listRecords(ctx context.Context, q querier, namespace, after string, limit int) ([]store.Record, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := q.Query(ctx, `SELECT key, value, version FROM records WHERE namespace = $1 AND key > $2 ORDER BY key LIMIT $3`, namespace, after, lim)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Record, error) {
		r := store.Record{Namespace: namespace}
		err := row.Scan(&r.Key, &r.Value, &r.Version)
		if r.Value == nil {
			r.Value = []byte{}
		}
		return r, err
	})
}

// GetRecord implements store.Records. Its answers are cached while the
// store listens for record changes (see recordCache): a write through
// any Store on the database is seen once its notification arrived, one
// through this Store as soon as UpdateRecords returned.
func (s *Store) GetRecord(ctx context.Context, namespace, key string) (store.Record, error) {
	if err := s.checkOpen(ctx); err != nil {
		return store.Record{}, err
	}
	cached, found, hit, gen := s.records.get(namespace, key)
	if hit {
		if !found {
			return store.Record{}, errorf("record %s/%s: %w", namespace, key, store.ErrNotFound)
		}
		return cached, nil
	}
	r, err := getRecord(ctx, s.pool, namespace, key, "")
	notFound := errors.Is(err, store.ErrNotFound)
	s.records.done(gen, err == nil || notFound, namespace, key, r, err == nil)
	return r, wrapErr("get record", err)
}

// ListRecords implements store.Records. limit <= 0 means no limit.
func (s *Store) ListRecords(ctx context.Context, namespace, after string, limit int) ([]store.Record, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	out, err := listRecords(ctx, s.pool, namespace, after, limit)
	return out, wrapErr("list records", err)
}

// UpdateRecords implements store.Records. fn runs in a transaction in
// which Get locks the row it reads (SELECT ... FOR UPDATE), so a read,
// modify and write is safe against every node; two transactions that
// both create one key conflict, and fn is run again (up to 10 times). If
// fn returns an error nothing it wrote is kept and the error is returned
// unchanged.
func (s *Store) UpdateRecords(ctx context.Context, fn func(tx store.RecordTx) error) error {
	for attempt := 0; ; attempt++ {
		var fnErr error
		rt := &recordTx{missing: map[recordKey]bool{}}
		err := s.write(ctx, "update records", func(w *wtx) error {
			rt.w = w
			fnErr = fn(rt)
			return fnErr
		})
		if len(rt.written) > 0 {
			// Committed or not (a failed COMMIT's outcome is unknown),
			// the next read of these keys goes to the database.
			s.records.invalidate(rt.written)
		}
		if fnErr != nil {
			var rerr *retryErr
			if errors.As(fnErr, &rerr) && attempt < 10 {
				continue
			}
			if errors.As(fnErr, &rerr) {
				return errorf("update records: %w", rerr.err)
			}
			return fnErr
		}
		switch pgCode(err) {
		case codeUniqueViolation, codeSerialization, codeDeadlock:
			if attempt < 10 {
				continue
			}
		}
		return err
	}
}

// retryErr carries a conflict through fn, which may wrap it.
type retryErr struct{ err error }

func (e *retryErr) Error() string { return e.err.Error() }
func (e *retryErr) Unwrap() error { return e.err }

// recordTx implements store.RecordTx in a write transaction.
type recordTx struct {
	w *wtx
	// missing holds the keys Get found absent. Reading a missing row
	// locks nothing, so another node may create it before this
	// transaction writes it: a Put that then finds the row is a
	// conflict (fn runs again and reads it), not an overwrite of a
	// value fn never saw.
	missing map[recordKey]bool
	// written holds the keys Put and Delete wrote, which UpdateRecords
	// drops from the record cache after the transaction.
	written []recordKey
}

type recordKey struct{ namespace, key string }

func (t *recordTx) conflict(err error) error {
	switch pgCode(err) {
	case codeUniqueViolation, codeSerialization, codeDeadlock:
		return &retryErr{err}
	}
	return err
}

func (t *recordTx) Get(namespace, key string) (store.Record, error) {
	r, err := getRecord(t.w.ctx, t.w, namespace, key, " FOR UPDATE")
	if errors.Is(err, store.ErrNotFound) {
		t.missing[recordKey{namespace, key}] = true
	}
	return r, t.conflict(err)
}

func (t *recordTx) Put(namespace, key string, value []byte, expectVersion int64) error {
	if err := validRecordKey(namespace, key); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	var cur int64
	wasMissing := t.missing[recordKey{namespace, key}]
	if r, err := t.Get(namespace, key); err == nil {
		cur = r.Version
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if wasMissing && cur != 0 {
		return &retryErr{errorf("record %s/%s was created by another transaction after this one read it", namespace, key)}
	}
	if expectVersion >= 0 && cur != expectVersion {
		return errorf("record %s/%s is at version %d, not %d: %w", namespace, key, cur, expectVersion, store.ErrPreconditionFailed)
	}
	var err error
	t.written = append(t.written, recordKey{namespace, key})
	// The same statement notifies every node's record cache, at commit.
	if cur == 0 {
		_, err = t.w.Exec(t.w.ctx, `WITH w AS (INSERT INTO records (namespace, key, value, version) VALUES ($1, $2, $3, 1) RETURNING 1)
			SELECT pg_notify('`+recordsChannel+`', $4) FROM w`, namespace, key, value, recordPayload(namespace, key))
	} else {
		_, err = t.w.Exec(t.w.ctx, `WITH w AS (UPDATE records SET value = $3, version = $4 WHERE namespace = $1 AND key = $2 RETURNING 1)
			SELECT pg_notify('`+recordsChannel+`', $5) FROM w`, namespace, key, value, cur+1, recordPayload(namespace, key))
	}
	if err == nil {
		// This transaction's own row now: a later Put of it is no race.
		delete(t.missing, recordKey{namespace, key})
	}
	return t.conflict(err)
}

func (t *recordTx) Delete(namespace, key string) error {
	if _, err := t.Get(namespace, key); err != nil {
		return err
	}
	t.written = append(t.written, recordKey{namespace, key})
	_, err := t.w.Exec(t.w.ctx, `WITH d AS (DELETE FROM records WHERE namespace = $1 AND key = $2 RETURNING 1)
		SELECT pg_notify('`+recordsChannel+`', $3) FROM d`, namespace, key, recordPayload(namespace, key))
	return t.conflict(err)
}

func (t *recordTx) List(namespace, after string, limit int) ([]store.Record, error) {
	out, err := listRecords(t.w.ctx, t.w, namespace, after, limit)
	if out == nil && err == nil {
		out = []store.Record{}
	}
	return out, t.conflict(err)
}
