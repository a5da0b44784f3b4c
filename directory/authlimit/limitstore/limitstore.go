// Package limitstore keeps the shared state of directory/authlimit
// limiters (authlimit.Shared) in a store's records, so that every node
// of a cluster on one database limits password checks together. On
// store/postgres a record transaction locks the row it reads, so each
// update is atomic against every node.
//
// The entries are records of the namespace [Namespace], keyed by the
// limiter's keys, each value the JSON object {"e": expiry, "v": value}.
// An expired entry reads as absent; [Store.SweepShared] deletes expired
// entries a page at a time.
package limitstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/store"
)

// Namespace is the store.Records namespace of the limiters' entries;
// this package owns it.
const Namespace = "authlimit"

// Namespaces returns the store.Records namespaces this package owns, for
// the check that no two owners claim one.
func Namespaces() []string { return []string{Namespace} }

// Store implements authlimit.Shared on store.Records.
type Store struct {
	rs store.Records
}

var _ authlimit.Shared = (*Store)(nil)

// New returns the shared state kept in rs.
func New(rs store.Records) *Store { return &Store{rs: rs} }

// entry is a record's value.
type entry struct {
	Expires time.Time `json:"e"`
	Value   []byte    `json:"v"`
}

// sweepPage is how many records one sweep step reads.
const sweepPage = 500

// maxRaces bounds how often an update is retried because another node
// created the entry between its read and its write.
const maxRaces = 10

func decode(r store.Record) (entry, error) {
	var e entry
	if err := store.DecodeJSON(r, &e); err != nil {
		return entry{}, fmt.Errorf("limitstore: %w", err)
	}
	return e, nil
}

// GetShared implements authlimit.Shared.
func (s *Store) GetShared(ctx context.Context, key string, now time.Time) ([]byte, error) {
	r, err := s.rs.GetRecord(ctx, Namespace, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e, err := decode(r)
	if err != nil || !now.Before(e.Expires) {
		return nil, err
	}
	return e.Value, nil
}

// UpdateShared implements authlimit.Shared.
func (s *Store) UpdateShared(ctx context.Context, key string, now time.Time, fn func(cur []byte) ([]byte, time.Time, error)) error {
	var err error
	for range maxRaces {
		err = s.rs.UpdateRecords(ctx, func(tx store.RecordTx) error {
			var cur []byte
			var version int64
			r, err := tx.Get(Namespace, key)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return err
			default:
				version = r.Version
				e, err := decode(r)
				if err != nil {
					return err
				}
				if now.Before(e.Expires) {
					cur = e.Value
				}
			}
			next, expires, err := fn(cur)
			if err != nil {
				return err
			}
			if next == nil {
				if version == 0 {
					return nil
				}
				return tx.Delete(Namespace, key)
			}
			// The version read: an entry another node created after that
			// read (a missing row is not locked by reading it) fails the
			// write instead of being overwritten, and is read again.
			return store.PutJSON(tx, Namespace, key, entry{Expires: expires, Value: next}, version)
		})
		if !errors.Is(err, store.ErrPreconditionFailed) {
			return err
		}
	}
	return err
}

// SweepShared implements authlimit.Shared: it reads the namespace a page
// at a time and deletes the entries that expired, each page in one
// transaction (an entry renewed meanwhile stays).
func (s *Store) SweepShared(ctx context.Context, now time.Time) (int, error) {
	deleted := 0
	after := ""
	for {
		recs, err := s.rs.ListRecords(ctx, Namespace, after, sweepPage)
		if err != nil {
			return deleted, err
		}
		var expired []string
		for _, r := range recs {
			if e, err := decode(r); err != nil || !now.Before(e.Expires) {
				expired = append(expired, r.Key)
			}
		}
		if len(expired) > 0 {
			n := 0
			err := s.rs.UpdateRecords(ctx, func(tx store.RecordTx) error {
				n = 0
				for _, k := range expired {
					r, err := tx.Get(Namespace, k)
					if errors.Is(err, store.ErrNotFound) {
						continue
					}
					if err != nil {
						return err
					}
					if e, err := decode(r); err == nil && now.Before(e.Expires) {
						continue
					}
					if err := tx.Delete(Namespace, k); err != nil {
						return err
					}
					n++
				}
				return nil
			})
			if err != nil {
				return deleted, err
			}
			deleted += n
		}
		if len(recs) < sweepPage {
			return deleted, nil
		}
		after = recs[len(recs)-1].Key
	}
}
