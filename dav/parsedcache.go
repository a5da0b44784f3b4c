package dav

import (
	"container/list"
	"sync"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

// parsedCacheBytes bounds what the Handler's parsed-object cache holds,
// by the estimate of parsedCost: with typical events of 300 to 2,000
// bytes, a few thousand objects, enough for the candidates of a month
// query over a 10,000-event calendar or a week's free/busy of 50 users
// to be parsed once and then read from memory.
const parsedCacheBytes = 32 << 20

// parsedCost estimates the memory a parsed object holds: go-ical's
// properties and parameters as maps and slices of strings, and the
// calendar package's recurrence data. Measured as live heap after a
// collection: 2,441 bytes for a 188-byte event (estimate 2,528), 4,809
// for a 528-byte weekly event with two attendees (estimate 5,248);
// VTIMEZONEs are shared through the ZoneCache and not counted.
func parsedCost(data []byte) int { return 8*len(data) + 1024 }

// parsedKey names one version of a stored object: a strong ETag
// (RFC 9110 §8.8.1) changes whenever the resource's bytes do, so a
// parsed object filed under the collection, name and ETag it was read
// with is the object those name the whole time it is cached.
type parsedKey struct {
	coll       int64
	name, etag string
}

// parsedCache is a bounded LRU of parsed calendar objects, shared by the
// REPORTs and free/busy of a Handler so that an object read again (the
// recurring events every month query and every free/busy meets) is not
// parsed again. A calendar.Object is safe for concurrent use and is
// never modified once parsed; the cache holds it as Parse returned it,
// before InZone, so callers in different floating zones share it. Only
// objects that parse are cached.
type parsedCache struct {
	mu       sync.Mutex
	max, cur int
	ll       *list.List // front: most recently used; values *parsedEntry
	m        map[parsedKey]*list.Element
}

type parsedEntry struct {
	key  parsedKey
	obj  *calendar.Object
	cost int
}

// newParsedCache returns a cache holding at most maxBytes by parsedCost.
func newParsedCache(maxBytes int) *parsedCache {
	return &parsedCache{max: maxBytes, ll: list.New(), m: map[parsedKey]*list.Element{}}
}

// parse returns the stored object o of collection coll parsed with lim,
// from the cache when this version of it was parsed before. A nil cache
// parses every time. The object's ETag must be the store's (filled by
// QueryObjects and GetObject); without one nothing is cached.
func (c *parsedCache) parse(coll int64, o *store.Object, lim calendar.Limits) (*calendar.Object, error) {
	if c == nil || o.ETag == "" {
		return calendar.Parse(o.Data, lim)
	}
	k := parsedKey{coll: coll, name: o.Name, etag: o.ETag}
	c.mu.Lock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		obj := e.Value.(*parsedEntry).obj
		c.mu.Unlock()
		return obj, nil
	}
	c.mu.Unlock()
	obj, err := calendar.Parse(o.Data, lim)
	if err != nil {
		return nil, err
	}
	cost := parsedCost(o.Data)
	if cost > c.max {
		return obj, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok { // parsed meanwhile by another request
		c.ll.MoveToFront(e)
		return obj, nil
	}
	c.m[k] = c.ll.PushFront(&parsedEntry{key: k, obj: obj, cost: cost})
	c.cur += cost
	for c.cur > c.max {
		e := c.ll.Back()
		pe := e.Value.(*parsedEntry)
		c.ll.Remove(e)
		delete(c.m, pe.key)
		c.cur -= pe.cost
	}
	return obj, nil
}

// len is the number of cached objects.
func (c *parsedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
