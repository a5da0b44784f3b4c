package imap

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/mailyard/mailyard/store"
)

// ChangeCounter is an optional interface of a [Backend]
// (store/sqlite.Store.ChangeCount): a number per mailbox (and, for
// mailbox "", per account) that changes whenever a write affecting it
// commits, before the writing call returns. With it the server answers
// from memory what has not changed since it last asked the store: the
// poll after every command, STATUS and LIST (issue 16). Writes the
// Backend does not count (another process on the same data) are seen
// once the cached answer is cacheMaxAge old.
type ChangeCounter interface {
	ChangeCount(account, mailbox string) uint64
}

// ListChangeCounter is an optional interface of a [Backend]
// (store/sqlite.Store.ListChangeCount): a number per account that
// changes whenever its mailbox list or subscriptions change, and not
// when a message is written. With it LIST is answered from memory
// across message writes (ChangeCount(account, "") changes with every
// one of them).
type ListChangeCounter interface {
	ListChangeCount(account string) uint64
}

// cacheMaxAge bounds how long an answer cached by change numbers is
// used even though the numbers say nothing changed.
const cacheMaxAge = time.Second

// Bounds of the caches: past them a cache starts over empty.
const (
	maxCachedStatus = 4096
	maxCachedLists  = 1024
)

// storeCache holds STATUS and LIST answers of the store, each with the
// change number it was read under. Without a [ChangeCounter] it passes
// every call through.
type storeCache struct {
	cc ChangeCounter
	lc ListChangeCounter // nil: LIST goes by cc's account number

	mu     sync.Mutex
	status map[cacheKey]statusEntry
	lists  map[string]listEntry // by account
}

type cacheKey struct{ account, mailbox string }

type statusEntry struct {
	count uint64
	at    time.Time
	st    store.MailboxStatus
}

type listEntry struct {
	count uint64
	at    time.Time
	mbs   []store.Mailbox
	subs  []string // nil: not read yet
}

func newStoreCache(b Backend) *storeCache {
	cc, _ := b.(ChangeCounter)
	lc, _ := b.(ListChangeCounter)
	return &storeCache{cc: cc, lc: lc, status: map[cacheKey]statusEntry{}, lists: map[string]listEntry{}}
}

// fresh reports whether an entry read under count at t is still good.
func (c *storeCache) fresh(count uint64, at time.Time, now uint64) bool {
	return count == now && time.Since(at) < cacheMaxAge
}

// mailboxStatus is b.Status, from the cache when nothing changed.
func (c *storeCache) mailboxStatus(ctx context.Context, b Backend, account, name string) (store.MailboxStatus, error) {
	if c.cc == nil {
		return b.Status(ctx, account, name)
	}
	k := cacheKey{account, name}
	// The number is read before the store: a write committing meanwhile
	// changes it, and the next call asks the store again.
	n := c.cc.ChangeCount(account, name)
	c.mu.Lock()
	e, ok := c.status[k]
	c.mu.Unlock()
	if ok && c.fresh(e.count, e.at, n) {
		return e.st, nil
	}
	at := time.Now()
	st, err := b.Status(ctx, account, name)
	if err != nil {
		return st, err
	}
	c.mu.Lock()
	if len(c.status) >= maxCachedStatus {
		clear(c.status)
	}
	c.status[k] = statusEntry{count: n, at: at, st: st}
	c.mu.Unlock()
	return st, nil
}

// listing is b.ListMailboxes and, when subsFn is not nil, subsFn (the
// subscription list): from the cache when nothing of the account
// changed. The slices are the caller's.
func (c *storeCache) listing(ctx context.Context, b Backend, account string,
	subsFn func([]store.Mailbox) ([]string, error)) ([]store.Mailbox, []string, error) {
	if c.cc == nil {
		mbs, err := b.ListMailboxes(ctx, account)
		if err != nil {
			return nil, nil, err
		}
		subs, err := subsFn(mbs)
		return mbs, subs, err
	}
	n := c.listCount(account)
	c.mu.Lock()
	e, ok := c.lists[account]
	c.mu.Unlock()
	if ok && c.fresh(e.count, e.at, n) {
		return slices.Clone(e.mbs), slices.Clone(e.subs), nil
	}
	at := time.Now()
	mbs, err := b.ListMailboxes(ctx, account)
	if err != nil {
		return nil, nil, err
	}
	subs, err := subsFn(mbs)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if len(c.lists) >= maxCachedLists {
		clear(c.lists)
	}
	c.lists[account] = listEntry{count: n, at: at, mbs: slices.Clone(mbs), subs: slices.Clone(subs)}
	c.mu.Unlock()
	return mbs, subs, nil
}

// listCount is the number LIST answers are cached by.
func (c *storeCache) listCount(account string) uint64 {
	if c.lc != nil {
		return c.lc.ListChangeCount(account)
	}
	return c.cc.ChangeCount(account, "")
}

// pollMark is what a view remembers of its last look at the store: the
// mailbox's change number then, and when.
type pollMark struct {
	count uint64
	at    time.Time
	set   bool
}

// unchanged reports whether the store cannot have changed the view's
// mailbox since mark, so that a poll need not ask it.
func (c *storeCache) unchanged(mark pollMark, account, mailbox string) bool {
	return c.cc != nil && mark.set && c.fresh(mark.count, mark.at, c.cc.ChangeCount(account, mailbox))
}

// mark returns the pollMark for a look at the store about to begin.
func (c *storeCache) mark(account, mailbox string) pollMark {
	if c.cc == nil {
		return pollMark{}
	}
	return pollMark{count: c.cc.ChangeCount(account, mailbox), at: time.Now(), set: true}
}
