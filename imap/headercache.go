package imap

import "sync"

// headerCacheBytes bounds the header blocks the server keeps in memory.
// A header is a few hundred bytes to a few KiB, so this holds the headers
// of thousands of messages: the ones clients list again and again.
const headerCacheBytes = 16 << 20

// headerKey names one message forever: RFC 9051 §2.3.1.1 requires the
// combination of mailbox name, UIDVALIDITY and UID to refer to a single,
// immutable message.
type headerKey struct {
	recentKey
	uid uint32
}

// headerCache keeps the raw header blocks of recently fetched messages, so
// that ENVELOPE and BODY[HEADER] (what clients fetch to list a mailbox)
// cost no store query once a message has been seen. Entries are evicted
// first in, first out once the total passes max bytes. A message that is
// expunged only stays until evicted; it is never served again, as no view
// resolves its UID.
type headerCache struct {
	mu    sync.Mutex
	max   int
	size  int
	m     map[headerKey][]byte
	order []headerKey // insertion order; order[head:] are live
	head  int
}

func newHeaderCache(max int) *headerCache {
	return &headerCache{max: max, m: make(map[headerKey][]byte)}
}

// get returns the cached header block of k; it must not be modified.
func (c *headerCache) get(k headerKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[k]
	return h, ok
}

// put caches the header block h of k; h must not be modified afterwards.
func (c *headerCache) put(k headerKey, h []byte) {
	cost := len(h) + len(k.account) + len(k.mailbox) + 64
	if cost > c.max/16 {
		return // one huge header would push out many useful ones
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	c.m[k] = h
	c.order = append(c.order, k)
	c.size += cost
	for c.size > c.max && c.head < len(c.order) {
		old := c.order[c.head]
		c.order[c.head] = headerKey{}
		c.head++
		c.size -= len(c.m[old]) + len(old.account) + len(old.mailbox) + 64
		delete(c.m, old)
	}
	if c.head > len(c.order)/2 {
		c.order = append(c.order[:0], c.order[c.head:]...)
		c.head = 0
	}
}
