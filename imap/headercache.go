package imap

import (
	"sync"

	"github.com/mailyard/mailyard/imap/internal/imapserver"
)

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
// cost no store query once a message has been seen, and each one's
// ENVELOPE once parsed (as Dovecot caches it per message: parsing it was
// half of a FETCH ENVELOPE's time, issue 16). Entries are evicted
// first in, first out once the total passes max bytes. A message that is
// expunged only stays until evicted; it is never served again, as no view
// resolves its UID.
type headerCache struct {
	mu    sync.Mutex
	max   int
	size  int
	m     map[headerKey]*cachedHeader
	order []headerKey // insertion order; order[head:] are live
	head  int
}

// cachedHeader is one message's header block and, once parsed, its
// ENVELOPE.
type cachedHeader struct {
	block []byte
	env   *imapserver.Envelope // nil: not parsed yet, or over envBudget
	cost  int
}

// envBudget is what an entry's cost holds for its parsed ENVELOPE: the
// strings of an envelope come from the header block, so a parsed one
// larger than the block again (plus room for the address structs) is
// not kept.
func envBudget(h []byte) int { return len(h) + 256 }

func newHeaderCache(max int) *headerCache {
	return &headerCache{max: max, m: make(map[headerKey]*cachedHeader)}
}

// get returns the cached header block of k; it must not be modified.
func (c *headerCache) get(k headerKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	return e.block, true
}

// envelope returns the ENVELOPE of k, whose header block is h: the
// cached one, or parsed from h and kept with the block if that is still
// cached and the envelope fits its budget. The envelope is shared and
// must not be modified.
func (c *headerCache) envelope(k headerKey, h []byte) *imapserver.Envelope {
	c.mu.Lock()
	e, ok := c.m[k]
	if ok && e.env != nil {
		c.mu.Unlock()
		return e.env
	}
	c.mu.Unlock()
	env := imapserver.ExtractEnvelope(h)
	if envelopeSize(env) > envBudget(h) {
		return env
	}
	c.mu.Lock()
	if e, ok := c.m[k]; ok && e.env == nil {
		e.env = env
	}
	c.mu.Unlock()
	return env
}

// envelopeSize estimates the memory an envelope holds.
func envelopeSize(env *imapserver.Envelope) int {
	n := 64 + len(env.Date) + len(env.Subject) + len(env.InReplyTo) + len(env.MessageID)
	for _, l := range [][]imapserver.Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		for _, a := range l {
			n += 64 + len(a.Name) + len(a.ADL) + len(a.Mailbox) + len(a.Host)
		}
	}
	return n
}

// put caches the header block h of k; h must not be modified afterwards.
func (c *headerCache) put(k headerKey, h []byte) {
	cost := len(h) + envBudget(h) + len(k.account) + len(k.mailbox) + 64
	if len(h)+len(k.account)+len(k.mailbox)+64 > c.max/16 {
		return // one huge header would push out many useful ones
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	c.m[k] = &cachedHeader{block: h, cost: cost}
	c.order = append(c.order, k)
	c.size += cost
	for c.size > c.max && c.head < len(c.order) {
		old := c.order[c.head]
		c.order[c.head] = headerKey{}
		c.head++
		c.size -= c.m[old].cost
		delete(c.m, old)
	}
	if c.head > len(c.order)/2 {
		c.order = append(c.order[:0], c.order[c.head:]...)
		c.head = 0
	}
}
