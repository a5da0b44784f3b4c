// Package dkimstore keeps DKIM keys in a store: it implements
// [dkim.KeyStore] over a [store.Records] namespace, so package dkim's
// signing and verification import no store while every store backend
// keeps the keys.
package dkimstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/store"
)

// Store is a [dkim.KeyStore] over the [Namespace] of a store.Records.
type Store struct {
	records store.Records
}

// New returns a KeyStore keeping the keys in records; pass it to
// [dkim.NewKeys].
func New(records store.Records) *Store {
	return &Store{records: records}
}

var _ dkim.KeyStore = (*Store)(nil)

// GetKey implements [dkim.KeyStore].
func (s *Store) GetKey(ctx context.Context, id string) (dkim.KeyEntry, error) {
	rec, err := s.records.GetRecord(ctx, Namespace, id)
	if err != nil {
		return dkim.KeyEntry{}, mapErr(err, id)
	}
	return entry(rec), nil
}

// ListKeys implements [dkim.KeyStore].
func (s *Store) ListKeys(ctx context.Context, after string, limit int) ([]dkim.KeyEntry, error) {
	recs, err := s.records.ListRecords(ctx, Namespace, after, limit)
	if err != nil {
		return nil, err
	}
	return entries(recs), nil
}

// UpdateKeys implements [dkim.KeyStore] with one store.Records
// transaction, so a rotation's writes commit together.
func (s *Store) UpdateKeys(ctx context.Context, fn func(tx dkim.KeyTx) error) error {
	return s.records.UpdateRecords(ctx, func(rtx store.RecordTx) error {
		return fn(tx{rtx})
	})
}

// tx is a dkim.KeyTx over a store.RecordTx.
type tx struct{ rtx store.RecordTx }

func (t tx) Get(id string) (dkim.KeyEntry, error) {
	rec, err := t.rtx.Get(Namespace, id)
	if err != nil {
		return dkim.KeyEntry{}, mapErr(err, id)
	}
	return entry(rec), nil
}

func (t tx) List(after string, limit int) ([]dkim.KeyEntry, error) {
	recs, err := t.rtx.List(Namespace, after, limit)
	if err != nil {
		return nil, err
	}
	return entries(recs), nil
}

// Put maps a failed "must not exist" precondition to dkim.ErrKeyExists.
func (t tx) Put(id string, data []byte, expectVersion int64) error {
	err := t.rtx.Put(Namespace, id, data, expectVersion)
	if expectVersion == 0 && errors.Is(err, store.ErrPreconditionFailed) {
		return fmt.Errorf("%w: %s: %w", dkim.ErrKeyExists, id, err)
	}
	return err
}

func (t tx) Delete(id string) error {
	return mapErr(t.rtx.Delete(Namespace, id), id)
}

// mapErr makes a store.ErrNotFound a dkim.ErrKeyNotFound, keeping the
// store error in the chain.
func mapErr(err error, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s: %w", dkim.ErrKeyNotFound, id, err)
	}
	return err
}

func entry(rec store.Record) dkim.KeyEntry {
	return dkim.KeyEntry{ID: rec.Key, Data: rec.Value, Version: rec.Version}
}

func entries(recs []store.Record) []dkim.KeyEntry {
	out := make([]dkim.KeyEntry, len(recs))
	for i, rec := range recs {
		out[i] = entry(rec)
	}
	return out
}
