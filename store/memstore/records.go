package memstore

import (
	"context"
	"slices"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// recordKey names a record across namespaces.
type recordKey struct{ namespace, key string }

func validRecordKey(namespace, key string) error {
	if namespace == "" || key == "" {
		return errorf("%w: record namespace and key must not be empty", store.ErrInvalid)
	}
	return nil
}

// copyRecord returns r with a value the caller may keep and change.
func copyRecord(r store.Record) store.Record {
	r.Value = append([]byte{}, r.Value...)
	return r
}

// listRecords returns up to limit records of a namespace with Key > after,
// by key; limit <= 0 means no limit. staged, if not nil, overlays the
// committed records (a nil entry is a deletion).
func (s *Store) listRecords(namespace, after string, limit int, staged map[recordKey]*store.Record) []store.Record {
	out := []store.Record{}
	for k, r := range s.records[namespace] {
		if _, overlaid := staged[recordKey{namespace, k}]; k > after && !overlaid {
			out = append(out, copyRecord(r))
		}
	}
	for k, r := range staged {
		if k.namespace == namespace && k.key > after && r != nil {
			out = append(out, copyRecord(*r))
		}
	}
	slices.SortFunc(out, func(a, b store.Record) int { return strings.Compare(a.Key, b.Key) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// getRecord reads one record through staged (see listRecords).
func (s *Store) getRecord(namespace, key string, staged map[recordKey]*store.Record) (store.Record, error) {
	r, overlaid := staged[recordKey{namespace, key}]
	if !overlaid {
		if c, ok := s.records[namespace][key]; ok {
			r = &c
		}
	}
	if r == nil {
		return store.Record{}, errorf("record %s/%s: %w", namespace, key, store.ErrNotFound)
	}
	return copyRecord(*r), nil
}

// GetRecord implements store.Records.
func (s *Store) GetRecord(ctx context.Context, namespace, key string) (store.Record, error) {
	var out store.Record
	err := s.read(ctx, func() error {
		var err error
		out, err = s.getRecord(namespace, key, nil)
		return err
	})
	return out, err
}

// ListRecords implements store.Records. limit <= 0 means no limit.
func (s *Store) ListRecords(ctx context.Context, namespace, after string, limit int) ([]store.Record, error) {
	var out []store.Record
	err := s.read(ctx, func() error {
		out = s.listRecords(namespace, after, limit, nil)
		return nil
	})
	return out, err
}

// UpdateRecords implements store.Records. fn runs once, holding the
// store's lock, against a staging area: it sees its own writes, and if it
// returns an error (returned unchanged) or panics nothing it wrote is
// kept. Since writers are serialised there are no conflicts to retry. fn
// must not call methods of the Store (it would wait for itself) and
// should be quick: every other call waits for it.
func (s *Store) UpdateRecords(ctx context.Context, fn func(tx store.RecordTx) error) error {
	return s.write(ctx, func() error {
		tx := &recordTx{s: s, staged: make(map[recordKey]*store.Record)}
		if err := fn(tx); err != nil {
			return err
		}
		for k, r := range tx.staged {
			if r == nil {
				delete(s.records[k.namespace], k.key)
				if len(s.records[k.namespace]) == 0 {
					delete(s.records, k.namespace)
				}
				continue
			}
			if s.records[k.namespace] == nil {
				s.records[k.namespace] = make(map[string]store.Record)
			}
			s.records[k.namespace][k.key] = *r
		}
		return nil
	})
}

// recordTx implements store.RecordTx on a staging area over the
// committed records.
type recordTx struct {
	s      *Store
	staged map[recordKey]*store.Record // nil: deleted in this transaction
}

func (t *recordTx) Get(namespace, key string) (store.Record, error) {
	return t.s.getRecord(namespace, key, t.staged)
}

func (t *recordTx) Put(namespace, key string, value []byte, expectVersion int64) error {
	if err := validRecordKey(namespace, key); err != nil {
		return err
	}
	var cur int64
	if r, err := t.Get(namespace, key); err == nil {
		cur = r.Version
	}
	if expectVersion >= 0 && cur != expectVersion {
		return errorf("record %s/%s is at version %d, not %d: %w", namespace, key, cur, expectVersion, store.ErrPreconditionFailed)
	}
	t.staged[recordKey{namespace, key}] = &store.Record{
		Namespace: namespace, Key: key, Value: append([]byte{}, value...), Version: cur + 1,
	}
	return nil
}

func (t *recordTx) Delete(namespace, key string) error {
	if _, err := t.Get(namespace, key); err != nil {
		return err
	}
	t.staged[recordKey{namespace, key}] = nil
	return nil
}

func (t *recordTx) List(namespace, after string, limit int) ([]store.Record, error) {
	return t.s.listRecords(namespace, after, limit, t.staged), nil
}
