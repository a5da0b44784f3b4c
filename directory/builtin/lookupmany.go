package builtin

import (
	"context"
	"errors"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// LookupAddresses resolves each address as LookupAddress does: entries[i]
// and errs[i] are those of addresses[i]. The lookups share their reads:
// a record read for one address (a domain's main name, a user an alias
// and the address both point at, a missing record) is not read again for
// the next, so the fifty attendees of a meeting in one domain read the
// domain once instead of fifty times.
func (b *Directory) LookupAddresses(ctx context.Context, addresses []string) (entries []directory.Entry, errs []error) {
	r := &memoReader{r: storeReader{ctx, b.records}, got: map[recordKey]memoRecord{}}
	entries, errs = make([]directory.Entry, len(addresses)), make([]error, len(addresses))
	for i, a := range addresses {
		entries[i], errs[i] = lookupAddress(r, a)
	}
	return entries, errs
}

type recordKey struct{ ns, key string }

// memoRecord is a record read, or ErrNotFound.
type memoRecord struct {
	rec      store.Record
	notFound error
}

// memoReader reads each record once: a read that found it or found it
// missing is answered from memory afterwards; other errors are not kept.
// Lists are not remembered. It lives for one call, as a snapshot
// assembled from several reads would otherwise grow stale.
type memoReader struct {
	r   reader
	got map[recordKey]memoRecord
}

func (m *memoReader) get(ns, key string) (store.Record, error) {
	k := recordKey{ns, key}
	if g, ok := m.got[k]; ok {
		return g.rec, g.notFound
	}
	rec, err := m.r.get(ns, key)
	switch {
	case err == nil:
		m.got[k] = memoRecord{rec: rec}
	case errors.Is(err, store.ErrNotFound):
		m.got[k] = memoRecord{notFound: err}
	}
	return rec, err
}

func (m *memoReader) list(ns, after string, limit int) ([]store.Record, error) {
	return m.r.list(ns, after, limit)
}
