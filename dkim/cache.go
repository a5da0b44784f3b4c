package dkim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// CachingResolver remembers the answers of another [Resolver] for a while,
// so that a stream of mail from one sender domain costs one DKIM key, SPF
// and DMARC lookup per TTL instead of one per message. The stdlib resolver
// does not expose record TTLs, so answers are kept for a fixed TTL (and
// "no such name" answers for NegativeTTL); temporary failures are never
// cached. At most MaxEntries answers are kept; when full, expired entries
// are dropped first, then the oldest tenth, so that a flood of distinct
// names costs one sweep per many insertions rather than one per lookup.
// Every call returns its own copy of the answer: a caller that modifies
// it does not change what other callers get.
type CachingResolver struct {
	Resolver Resolver
	// TTL for answers; zero means 5 minutes.
	TTL time.Duration
	// NegativeTTL for "no such name/record" answers; zero means 1 minute.
	NegativeTTL time.Duration
	// MaxEntries bounds the cache; zero means 10000.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
}

type cacheKey struct{ kind, name string }

type cacheEntry struct {
	value   any
	err     error
	expires time.Time
	added   time.Time
}

func (c *CachingResolver) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// lookup answers from the cache or through fetch.
func (c *CachingResolver) lookup(key cacheKey, fetch func() (any, error)) (any, error) {
	now := c.now()
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.value, e.err
	}
	c.mu.Unlock()

	v, err := fetch()
	ttl := c.TTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	if err != nil {
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			return v, err // temporary trouble: ask again next time
		}
		ttl = c.NegativeTTL
		if ttl <= 0 {
			ttl = time.Minute
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[cacheKey]cacheEntry)
	}
	limit := c.MaxEntries
	if limit <= 0 {
		limit = 10000
	}
	if len(c.entries) >= limit {
		c.evict(now, limit)
	}
	c.entries[key] = cacheEntry{value: v, err: err, expires: now.Add(ttl), added: now}
	return v, err
}

// evict drops expired entries, then, if the cache is still full, the
// oldest entries until it is at most nine tenths full.
func (c *CachingResolver) evict(now time.Time, limit int) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	if len(c.entries) < limit {
		return
	}
	type aged struct {
		key   cacheKey
		added time.Time
	}
	all := make([]aged, 0, len(c.entries))
	for k, e := range c.entries {
		all = append(all, aged{k, e.added})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.added.Compare(b.added) })
	for _, a := range all[:len(all)-limit*9/10] {
		delete(c.entries, a.key)
	}
}

// LookupTXT implements [Resolver].
func (c *CachingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	v, err := c.lookup(cacheKey{"txt", name}, func() (any, error) { return c.Resolver.LookupTXT(ctx, name) })
	txt, _ := v.([]string)
	return slices.Clone(txt), err
}

// LookupMX implements [Resolver].
func (c *CachingResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	v, err := c.lookup(cacheKey{"mx", name}, func() (any, error) { return c.Resolver.LookupMX(ctx, name) })
	mx, _ := v.([]*net.MX)
	if mx == nil {
		return nil, err
	}
	out := make([]*net.MX, len(mx))
	for i, m := range mx {
		if m != nil {
			cp := *m
			m = &cp
		}
		out[i] = m
	}
	return out, err
}

// LookupIPAddr implements [Resolver].
func (c *CachingResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	v, err := c.lookup(cacheKey{"ip", host}, func() (any, error) { return c.Resolver.LookupIPAddr(ctx, host) })
	ips, _ := v.([]net.IPAddr)
	if ips == nil {
		return nil, err
	}
	out := make([]net.IPAddr, len(ips))
	for i, ip := range ips {
		out[i] = net.IPAddr{IP: slices.Clone(ip.IP), Zone: ip.Zone}
	}
	return out, err
}

// LookupAddr implements [Resolver].
func (c *CachingResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	v, err := c.lookup(cacheKey{"ptr", addr}, func() (any, error) { return c.Resolver.LookupAddr(ctx, addr) })
	names, _ := v.([]string)
	return slices.Clone(names), err
}

// KeyRecordResolver is an optional interface of a [Resolver]: it returns
// the DKIM key record published at name (selector._domainkey.domain),
// parsed. [CachingResolver] implements it so that a key is parsed once per
// TTL rather than once per message; a Resolver that wraps another should
// implement it by calling [LookupKeyRecord] on the wrapped one.
type KeyRecordResolver interface {
	LookupKeyRecord(ctx context.Context, name string) (KeyRecord, error)
}

// LookupKeyRecord returns the DKIM key record at name through r: r's own
// LookupKeyRecord if it is a [KeyRecordResolver], else a TXT lookup and
// [ParseKeyRecord]. DNS failures are returned as the resolver gave them
// (a *net.DNSError); a name with no record, several records (RFC 6376
// §3.6.2.2 leaves them undefined) or one that does not parse is an error
// wrapping [ErrMalformed].
func LookupKeyRecord(ctx context.Context, r Resolver, name string) (KeyRecord, error) {
	if kr, ok := r.(KeyRecordResolver); ok {
		return kr.LookupKeyRecord(ctx, name)
	}
	return fetchKeyRecord(ctx, r, name)
}

func fetchKeyRecord(ctx context.Context, r Resolver, name string) (KeyRecord, error) {
	txts, err := r.LookupTXT(ctx, name)
	if err != nil {
		return KeyRecord{}, err
	}
	switch len(txts) {
	case 0:
		return KeyRecord{}, fmt.Errorf("%w: no key record at %s", ErrMalformed, name)
	case 1:
		return ParseKeyRecord(txts[0])
	}
	return KeyRecord{}, fmt.Errorf("%w: %d TXT records at %s", ErrMalformed, len(txts), name)
}

// keyAnswer is a cached key lookup: a record, or why the published
// record is unusable (an answer too, cached like one).
type keyAnswer struct {
	rec KeyRecord
	err error
}

// LookupKeyRecord implements [KeyRecordResolver]: the parsed record is
// cached like the TXT answer it comes from. The record's slices are the
// caller's own; its PublicKey is shared and must not be modified.
func (c *CachingResolver) LookupKeyRecord(ctx context.Context, name string) (KeyRecord, error) {
	v, err := c.lookup(cacheKey{"dkimkey", name}, func() (any, error) {
		rec, err := fetchKeyRecord(ctx, c.Resolver, name)
		if errors.Is(err, ErrMalformed) {
			return keyAnswer{err: err}, nil
		}
		if err != nil {
			return nil, err
		}
		return keyAnswer{rec: rec}, nil
	})
	if err != nil {
		return KeyRecord{}, err
	}
	a, _ := v.(keyAnswer)
	rec := a.rec
	rec.HashAlgorithms = slices.Clone(rec.HashAlgorithms)
	rec.Services = slices.Clone(rec.Services)
	rec.Flags = slices.Clone(rec.Flags)
	return rec, a.err
}
