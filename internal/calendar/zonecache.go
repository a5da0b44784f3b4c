package calendar

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"sync"

	"github.com/emersion/go-ical"
)

// DefaultZoneCacheSize is how many VTIMEZONE definitions a ZoneCache made
// with size 0 keeps.
const DefaultZoneCacheSize = 64

// maxCachedTransitions: a cached zone whose computed transitions grew
// past this many (an object reaching centuries away) is dropped at its
// next use, so the cache's memory stays near size * this many
// transitions.
const maxCachedTransitions = 1024

// ZoneCache shares parsed VTIMEZONE definitions between objects (pass it
// in Limits.Zones): clients send the same few definitions with every
// object, and reading one (its observances, then the transitions its
// rules give, computed on demand) was two thirds of parsing and matching
// a typical object. Entries are keyed by a SHA-256 of everything
// parseVTimezone reads (every property of the VTIMEZONE and of its
// STANDARD and DAYLIGHT parts, with parameters), so two definitions share
// an entry only when they define the same zone. At most size entries are
// kept, the least recently used dropped first. Safe for concurrent use.
type ZoneCache struct {
	mu    sync.Mutex
	size  int
	order *list.List // of *zoneEntry, most recent first
	byKey map[[sha256.Size]byte]*list.Element
}

type zoneEntry struct {
	key [sha256.Size]byte
	v   *vtimezone
}

// NewZoneCache returns a cache of at most size definitions (0:
// DefaultZoneCacheSize).
func NewZoneCache(size int) *ZoneCache {
	if size <= 0 {
		size = DefaultZoneCacheSize
	}
	return &ZoneCache{size: size, order: list.New(), byKey: map[[sha256.Size]byte]*list.Element{}}
}

// zone returns the parsed definition of c, from the cache when it holds
// one (a nil cache parses every time).
func (zc *ZoneCache) zone(c *ical.Component) (*vtimezone, error) {
	if zc == nil {
		return parseVTimezone(c)
	}
	key := zoneKey(c)
	if v := zc.get(key); v != nil {
		return v, nil
	}
	v, err := parseVTimezone(c)
	if err != nil {
		return nil, err
	}
	zc.put(key, v)
	return v, nil
}

func (zc *ZoneCache) get(key [sha256.Size]byte) *vtimezone {
	zc.mu.Lock()
	defer zc.mu.Unlock()
	el, ok := zc.byKey[key]
	if !ok {
		return nil
	}
	e := el.Value.(*zoneEntry)
	if e.v.transitions() > maxCachedTransitions {
		zc.order.Remove(el)
		delete(zc.byKey, key)
		return nil
	}
	zc.order.MoveToFront(el)
	return e.v
}

func (zc *ZoneCache) put(key [sha256.Size]byte, v *vtimezone) {
	zc.mu.Lock()
	defer zc.mu.Unlock()
	if _, ok := zc.byKey[key]; ok {
		return
	}
	zc.byKey[key] = zc.order.PushFront(&zoneEntry{key: key, v: v})
	for zc.order.Len() > zc.size {
		last := zc.order.Back()
		zc.order.Remove(last)
		delete(zc.byKey, last.Value.(*zoneEntry).key)
	}
}

// Len is how many definitions the cache holds.
func (zc *ZoneCache) Len() int {
	zc.mu.Lock()
	defer zc.mu.Unlock()
	return zc.order.Len()
}

// transitions is how many transitions v has computed so far.
func (v *vtimezone) transitions() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.trans)
}

// zoneKey hashes a VTIMEZONE: its properties and those of its
// sub-components, names, parameters and values, each list in a fixed
// order and preceded by its length, every string by its length, so that
// different components never write the same bytes.
func zoneKey(c *ical.Component) [sha256.Size]byte {
	h := sha256.New()
	num := func(n int) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(n))
		h.Write(b[:])
	}
	word := func(s string) {
		num(len(s))
		h.Write([]byte(s))
	}
	var put func(c *ical.Component)
	put = func(c *ical.Component) {
		word(c.Name)
		num(len(c.Props))
		for _, name := range slices.Sorted(maps.Keys(c.Props)) {
			num(len(c.Props[name]))
			for _, p := range c.Props[name] {
				word(p.Name)
				word(p.Value)
				num(len(p.Params))
				for _, pn := range slices.Sorted(maps.Keys(p.Params)) {
					word(pn)
					num(len(p.Params[pn]))
					for _, pv := range p.Params[pn] {
						word(pv)
					}
				}
			}
		}
		num(len(c.Children))
		for _, ch := range c.Children {
			put(ch)
		}
	}
	put(c)
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}
