package imap

import (
	"cmp"
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
	// reads are the latest read of each mailbox's changes, shared by
	// the sessions polling it (see changes); upTo is the HIGHESTMODSEQ
	// the last completed read of each mailbox found.
	reads map[cacheKey]*changeRead
	upTo  map[cacheKey]uint64
	// listings are the mailboxes' message lists SELECT last read, each
	// brought forward by the changes since (see selectListing).
	listings map[cacheKey]*listingMemo
}

// listingMemo is a mailbox's messages as of mb (they may include later
// changes), in UID order; shared and never modified.
type listingMemo struct {
	mb   store.Mailbox
	msgs []listedMessage
}

// listedMessage is what SELECT needs of a message.
type listedMessage struct {
	uid    uint32
	modSeq uint64
	flags  []string
}

// Bounds of the listings: at most maxListings mailboxes, each of at
// most maxListedMessages messages (about 48 bytes each); a larger
// mailbox is listed by every SELECT.
const (
	maxListings       = 32
	maxListedMessages = 20000
)

// changeRead is one read of a mailbox and its changes since since, made
// under change number count.
type changeRead struct {
	count uint64
	at    time.Time
	since uint64
	done  chan struct{} // closed when floor, mb, cs and err are set
	// floor is the lowest since the read serves: since if it read the
	// changes, else the HIGHESTMODSEQ it found (nothing to read above).
	floor uint64
	mb    store.Mailbox
	cs    store.ChangeSet
	err   error
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
	return &storeCache{cc: cc, lc: lc, status: map[cacheKey]statusEntry{}, lists: map[string]listEntry{},
		reads: map[cacheKey]*changeRead{}, upTo: map[cacheKey]uint64{}, listings: map[cacheKey]*listingMemo{}}
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

// changes returns the mailbox (b.Mailbox) and, when its HIGHESTMODSEQ is
// above since, its changes (b.Changes) since since or earlier: the
// caller takes only the changed messages whose MODSEQ is above since
// (the expunged UIDs of an earlier since are ones it already knows gone).
// mark is the caller's pollMark, taken before this call. The sessions
// that poll one mailbox under the same change number share one read
// (issue 16: after every write to a mailbox shared by ten sessions, each
// of them read the same changes, 15% of the server's CPU in the 50-client
// mix). A read is shared with a session whose since is not below the
// read's; a read starts from the lowest of the caller's since and the
// HIGHESTMODSEQ the last read found, where the sessions that took that
// read in stand.
func (c *storeCache) changes(ctx context.Context, b Backend, account, name string, mark pollMark, since uint64) (store.Mailbox, store.ChangeSet, error) {
	if c.cc == nil || !mark.set {
		return readChanges(ctx, b, account, name, since)
	}
	k := cacheKey{account, name}
	c.mu.Lock()
	if r := c.reads[k]; r != nil && r.count == mark.count && r.since <= since && time.Since(r.at) < cacheMaxAge {
		c.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			return store.Mailbox{}, store.ChangeSet{}, ctx.Err()
		}
		if r.err == nil && r.floor <= since {
			return r.mb, r.cs, nil
		}
		c.mu.Lock()
		if r.err != nil || c.reads[k] != r {
			c.mu.Unlock()
			// The reader's failure may be its own (its session
			// ended): read apart.
			return readChanges(ctx, b, account, name, since)
		}
		// It found nothing new for itself and read no changes (the
		// session that wrote them, say): this read, from since,
		// takes its place, for the sessions that stand where this
		// one does (the other readers of the mailbox, and this
		// session's own poll after a FETCH that read the changes
		// first, see listCached).
	}
	from := since
	if last, ok := c.upTo[k]; ok && last < from {
		from = last
	}
	r := &changeRead{count: mark.count, at: time.Now(), since: from, done: make(chan struct{})}
	if len(c.reads) >= maxCachedStatus {
		clear(c.reads)
		clear(c.upTo)
	}
	c.reads[k] = r
	c.mu.Unlock()
	// The changes are read only if this caller needs them: then from
	// where the others need them.
	r.floor = from
	r.mb, r.err = b.Mailbox(ctx, account, name)
	switch {
	case r.err != nil:
	case r.mb.HighestModSeq <= since:
		r.floor = max(from, r.mb.HighestModSeq)
	default:
		// ErrNotFound here: deleted since the look-up.
		r.cs, r.err = b.Changes(ctx, account, name, from)
	}
	close(r.done)
	c.mu.Lock()
	if r.err == nil {
		c.upTo[k] = r.mb.HighestModSeq
	} else if c.reads[k] == r {
		delete(c.reads, k)
	}
	c.mu.Unlock()
	return r.mb, r.cs, r.err
}

// readChanges is b.Mailbox and, when its HIGHESTMODSEQ is above since,
// b.Changes since since.
func readChanges(ctx context.Context, b Backend, account, name string, since uint64) (store.Mailbox, store.ChangeSet, error) {
	mb, err := b.Mailbox(ctx, account, name)
	if err != nil || mb.HighestModSeq <= since {
		return mb, store.ChangeSet{}, err
	}
	// ErrNotFound here: deleted since the look-up.
	cs, err := b.Changes(ctx, account, name, since)
	return mb, cs, err
}

// selectListing returns the mailbox (b.Mailbox) and its messages in UID order,
// as SELECT opens it: the last listing of the mailbox brought forward by
// its changes since (read through changes, so shared with the sessions
// polling it), or b.ListMessages when there is none or the mailbox was
// re-created (another UIDVALIDITY). Issue 16: SELECT listed the whole
// mailbox every time, most of its time in the 50-client mix. The changes
// come from the store, so a write by another process is seen as by a
// listing. The slice is shared and must not be modified. listed is
// called with every message of a listing from the store (not of one
// brought forward) of at most maxListedMessages.
func (c *storeCache) selectListing(ctx context.Context, b Backend, account, name string, mark pollMark, listed func(store.Mailbox, store.Message)) (store.Mailbox, []listedMessage, error) {
	k := cacheKey{account, name}
	var memo *listingMemo
	if c.cc != nil {
		c.mu.Lock()
		memo = c.listings[k]
		c.mu.Unlock()
	}
	if memo != nil {
		mb, cs, err := c.changes(ctx, b, account, name, mark, memo.mb.HighestModSeq)
		if err != nil {
			return mb, nil, err
		}
		if mb.UIDValidity == memo.mb.UIDValidity && mb.ID == memo.mb.ID {
			if mb.HighestModSeq <= memo.mb.HighestModSeq {
				return mb, memo.msgs, nil
			}
			next := &listingMemo{mb: mb, msgs: rollForward(memo.msgs, memo.mb.HighestModSeq, cs)}
			c.remember(k, next)
			return mb, next.msgs, nil
		}
	}
	mb, err := b.Mailbox(ctx, account, name)
	if err != nil {
		return mb, nil, err
	}
	// Listed after the look-up: whatever commits in between is in the
	// listing, and the next roll forward applies it again, harmlessly.
	msgs, err := b.ListMessages(ctx, account, name, nil)
	if err != nil {
		return mb, nil, err
	}
	out := make([]listedMessage, len(msgs))
	for i, m := range msgs {
		out[i] = listedMessage{uid: m.UID, modSeq: m.ModSeq, flags: m.Flags}
		if len(msgs) <= maxListedMessages {
			listed(mb, m)
		}
	}
	if c.cc != nil {
		c.remember(k, &listingMemo{mb: mb, msgs: out})
	}
	return mb, out, nil
}

// remember keeps l as k's listing unless it is too large or older than
// the one kept.
func (c *storeCache) remember(k cacheKey, l *listingMemo) {
	if len(l.msgs) > maxListedMessages {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.listings[k]; old != nil && old.mb.UIDValidity == l.mb.UIDValidity && old.mb.HighestModSeq >= l.mb.HighestModSeq {
		return
	}
	if len(c.listings) >= maxListings {
		clear(c.listings)
	}
	c.listings[k] = l
}

// rollForward is msgs, a listing as of MODSEQ since, with cs applied:
// the changes since since or earlier (see changes). The messages cs says
// changed after since replace or join those listed; those it says were
// expunged leave.
func rollForward(msgs []listedMessage, since uint64, cs store.ChangeSet) []listedMessage {
	gone := make(map[uint32]bool, len(cs.Vanished))
	for _, uid := range cs.Vanished {
		gone[uid] = true
	}
	changed := make(map[uint32]store.Message)
	var added []listedMessage
	last := uint32(0)
	if n := len(msgs); n > 0 {
		last = msgs[n-1].uid
	}
	for _, m := range cs.Changed {
		if m.ModSeq <= since || gone[m.UID] {
			continue
		}
		if m.UID > last {
			added = append(added, listedMessage{uid: m.UID, modSeq: m.ModSeq, flags: m.Flags})
		} else {
			changed[m.UID] = m
		}
	}
	out := make([]listedMessage, 0, len(msgs)+len(added))
	for _, l := range msgs {
		if gone[l.uid] {
			continue
		}
		if m, ok := changed[l.uid]; ok {
			l = listedMessage{uid: m.UID, modSeq: m.ModSeq, flags: m.Flags}
		}
		out = append(out, l)
	}
	slices.SortFunc(added, func(a, b listedMessage) int { return cmp.Compare(a.uid, b.uid) })
	return append(out, added...)
}
