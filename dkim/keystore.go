package dkim

import "context"

// KeyEntry is one stored DKIM key as [Keys] persists it: ID is
// "domain/selector", Data the key's encoded form (dkim encodes and decodes
// it; a KeyStore keeps the bytes as they are), Version the record's
// version for optimistic locking, which grows with every write.
type KeyEntry struct {
	ID      string
	Data    []byte
	Version int64
}

// KeyStore persists the key records of [Keys]. dkim defines it so that
// signing and verification depend on no store; package dkim/dkimstore
// implements it over a store.Records namespace. Implementations must be
// safe for concurrent use.
type KeyStore interface {
	// GetKey returns the record id, or an error wrapping ErrKeyNotFound
	// if there is none.
	GetKey(ctx context.Context, id string) (KeyEntry, error)
	// ListKeys returns up to limit records with ID > after, ordered by ID.
	ListKeys(ctx context.Context, after string, limit int) ([]KeyEntry, error)
	// UpdateKeys runs fn in one transaction: every write fn makes is
	// committed together, or none if fn returns an error (which
	// UpdateKeys returns). fn may run more than once on conflicts, so it
	// must not keep side effects of a failed run; it should be quick.
	UpdateKeys(ctx context.Context, fn func(tx KeyTx) error) error
}

// KeyTx is the view of the key records inside [KeyStore.UpdateKeys].
type KeyTx interface {
	// Get returns the record id, or an error wrapping ErrKeyNotFound.
	Get(id string) (KeyEntry, error)
	// List returns up to limit records with ID > after, ordered by ID.
	List(after string, limit int) ([]KeyEntry, error)
	// Put writes data as the record id. expectVersion 0 means the record
	// must not exist yet (an error wrapping ErrKeyExists if it does); a
	// positive expectVersion must equal the record's current version,
	// else Put fails and the transaction with it.
	Put(id string, data []byte, expectVersion int64) error
	// Delete removes the record id.
	Delete(id string) error
}
