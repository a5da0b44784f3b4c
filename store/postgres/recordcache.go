package postgres

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mailyard/mailyard/store"
)

// recordsChannel is the NOTIFY channel of record writes. Every Put and
// Delete of UpdateRecords notifies it in the statement that writes the
// row (PostgreSQL delivers it at commit), with recordPayload of the
// key; an empty payload means "any record may have changed".
const recordsChannel = "mailyard_records"

// maxNotifyPayload is below PostgreSQL's 8000-byte NOTIFY payload limit.
const maxNotifyPayload = 7900

// Bounds of the record cache: the entries it keeps, the bytes of their
// namespaces, keys and values together, and the largest entry it keeps
// (larger ones, such as photos, are read every time; so are not-found
// answers for very long keys, which a client may choose). The keys
// invalidated while reads are in flight are bounded by
// recordCacheEntries too.
const (
	recordCacheEntries  = 16384
	recordCacheBytes    = 32 << 20
	recordCacheMaxEntry = 16 << 10
)

// recordPayload is the NOTIFY payload naming namespace/key: the length
// of the namespace in decimal, a space, the namespace and the key, so
// that neither needs escaping. A key too long for a payload gets "",
// which empties every node's cache.
func recordPayload(namespace, key string) string {
	p := strconv.Itoa(len(namespace)) + " " + namespace + key
	if len(p) > maxNotifyPayload {
		return ""
	}
	return p
}

// parseRecordPayload is the inverse of recordPayload; ok is false for
// "" or anything malformed, which the cache treats as "forget all".
func parseRecordPayload(p string) (k recordKey, ok bool) {
	sp := strings.IndexByte(p, ' ')
	if sp <= 0 {
		return k, false
	}
	n, err := strconv.Atoi(p[:sp])
	rest := p[sp+1:]
	if err != nil || n <= 0 || n >= len(rest) {
		return k, false
	}
	return recordKey{rest[:n], rest[n:]}, true
}

// recordCache keeps GetRecord's answers (found or not found), so that
// the directory's lookups on every SMTP recipient and login do not each
// cost a round trip. It is only used while the feed's connection
// LISTENs on recordsChannel: a write on any node, this one or another,
// notifies that channel at its commit, and the notification drops the
// key here; when the connection is lost the cache is emptied and turned
// off until LISTEN is back. So an entry outlives a change made on
// another node by at most the notification's delivery, and a write made
// through this Store is seen by the next read once UpdateRecords has
// returned (it drops its keys itself after its commit).
//
// A read that missed fills the cache only if its key was not
// invalidated while it ran: otherwise it might put back a value older
// than the write that invalidated. Every invalidation takes the next
// generation; a read notes the generation it started at, and touched
// remembers the last generation of each key invalidated while reads were
// in flight (emptied whenever none is; when it is full, every read in
// flight is taken as overtaken instead, as by a "forget all").
type recordCache struct {
	mu       sync.Mutex
	on       bool   // the feed connection LISTENs
	gen      uint64 // bumped by every invalidation and every on/off
	allGen   uint64 // the generation of the last "forget all" or on/off
	inflight int    // reads between get and done
	touched  map[recordKey]uint64
	entries  map[recordKey]cachedRecord
	bytes    int // the size of entries (entrySize)

	notes atomic.Int64 // notifications handled (tests wait for them)
}

// cachedRecord is one cached answer; found false caches ErrNotFound.
type cachedRecord struct {
	value   []byte
	version int64
	found   bool
}

// entrySize is what one entry counts against recordCacheBytes.
func entrySize(k recordKey, value []byte) int {
	return len(k.namespace) + len(k.key) + len(value)
}

func newRecordCache() *recordCache {
	return &recordCache{entries: make(map[recordKey]cachedRecord), touched: make(map[recordKey]uint64)}
}

// get returns the cached answer for namespace/key. On a miss it returns
// the generation the read starts at, and the caller must call done
// (fill or not) when the read ended.
func (c *recordCache) get(namespace, key string) (rec store.Record, found, hit bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[recordKey{namespace, key}]
	if !c.on || !ok {
		c.inflight++
		return rec, false, false, c.gen
	}
	if e.found {
		// The caller owns the Value it gets.
		rec = store.Record{Namespace: namespace, Key: key, Value: append([]byte{}, e.value...), Version: e.version}
	}
	return rec, e.found, true, 0
}

// done ends a read that missed and started at gen. With fill it stores
// the read's answer, unless the key was invalidated since gen.
func (c *recordCache) done(gen uint64, fill bool, namespace, key string, rec store.Record, found bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	k := recordKey{namespace, key}
	stale := c.allGen > gen || c.touched[k] > gen
	if c.inflight == 0 {
		clear(c.touched)
	}
	var value []byte
	if found {
		value = rec.Value
	}
	size := entrySize(k, value)
	if !fill || !c.on || stale || size > recordCacheMaxEntry {
		return
	}
	c.drop(k)
	for len(c.entries) >= recordCacheEntries || c.bytes+size > recordCacheBytes {
		// Drop an arbitrary entry (map order): simple, and a directory
		// larger than the cache still hits on its busy addresses.
		for k := range c.entries {
			c.drop(k)
			break
		}
	}
	e := cachedRecord{version: rec.Version, found: found}
	if found {
		e.value = append([]byte{}, value...)
	}
	c.entries[k] = e
	c.bytes += size
}

// drop removes k's entry, if any.
func (c *recordCache) drop(k recordKey) {
	if e, ok := c.entries[k]; ok {
		c.bytes -= entrySize(k, e.value)
		delete(c.entries, k)
	}
}

// invalidate drops the keys (all of them if keys is nil).
func (c *recordCache) invalidate(keys []recordKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if keys == nil {
		c.allGen = c.gen
		clear(c.entries)
		c.bytes = 0
		return
	}
	for _, k := range keys {
		c.drop(k)
		if c.inflight == 0 {
			continue
		}
		if len(c.touched) >= recordCacheEntries {
			// Reads stay in flight while keys keep changing (a busy
			// node): rather than remember every key, every read now in
			// flight is overtaken.
			c.allGen = c.gen
			clear(c.touched)
			continue
		}
		c.touched[k] = c.gen
	}
}

// notified handles a payload of recordsChannel.
func (c *recordCache) notified(payload string) {
	defer c.notes.Add(1)
	if k, ok := parseRecordPayload(payload); ok {
		c.invalidate([]recordKey{k})
		return
	}
	c.invalidate(nil)
}

// setOn turns the cache on (LISTEN is active) or off (the connection
// is lost: notifications may be missed), empty either way.
func (c *recordCache) setOn(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.allGen = c.gen
	c.on = on
	clear(c.entries)
	c.bytes = 0
}
