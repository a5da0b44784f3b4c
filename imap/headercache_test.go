package imap

import (
	"strings"
	"testing"
)

func TestHeaderCacheEvictsOldestBeyondLimit(t *testing.T) {
	c := newHeaderCache(16 << 10)
	key := func(uid uint32) headerKey { return headerKey{recentKey{"a", "INBOX", 1}, uid} }
	h := []byte(strings.Repeat("x", 900))
	for uid := uint32(1); uid <= 100; uid++ {
		c.put(key(uid), h)
	}
	if _, ok := c.get(key(1)); ok {
		t.Error("oldest entry still cached")
	}
	if got, ok := c.get(key(100)); !ok || len(got) != 900 {
		t.Error("newest entry not cached")
	}
	if c.size > c.max {
		t.Errorf("size %d > max %d", c.size, c.max)
	}
	if _, ok := c.get(headerKey{recentKey{"a", "INBOX", 2}, 100}); ok {
		t.Error("entry served for another UIDVALIDITY")
	}
	c.put(key(200), make([]byte, c.max)) // too big to be worth it
	if _, ok := c.get(key(200)); ok {
		t.Error("oversized entry cached")
	}
}
