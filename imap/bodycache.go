package imap

import (
	"context"
	"io"
	"reflect"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailyard/mailyard/store"
)

// A FETCH of one whole message (BODY.PEEK[], what a client sends to open
// a message) needs the body's blob and size besides the UID and flags
// the view holds. Both are immutable by mailbox, UIDVALIDITY and UID
// (RFC 9051 §2.3.1.1), so the server keeps them once listed, and while
// the view is current (readpath.go: nothing committed to the mailbox
// since the poll, so a UID in the view is a message in the store) such a
// FETCH opens the blob by its ID without an index look-up, as Dovecot
// opens the message's file (issue 16). The view being current is what
// makes an expunged message never served from the cache: an expunge
// changes the mailbox's change number, the view is then not current, and
// FETCH asks the store as before. A blob freed by an expunge that
// commits after that check fails to open, and FETCH then asks the store
// too; a shared blob (delivered to several mailboxes) that an expunge
// racing this FETCH did not free is served as if the FETCH had come
// first, as the expunging call has not returned yet.

// BlobOpener is an optional interface of a [Backend]
// (store/sqlite.Store.OpenBlob): a message body opened by the
// store.Message.BlobID a listing gave, without an index look-up. A blob
// no longer there (its last message expunged) is an error; FETCH then
// asks the store as it does without a BlobOpener.
type BlobOpener interface {
	OpenBlob(ctx context.Context, blobID string) (io.ReadCloser, error)
}

// bodyCacheEntries bounds the messages the server keeps the blob of:
// about 100 bytes each (the key's strings are shared with the views'),
// so a few MiB at most, whatever the number of sessions.
const bodyCacheEntries = 32 << 10

// bodyRef is what a FETCH of a whole message needs of its listing
// besides the UID and flags: immutable for the message's lifetime.
type bodyRef struct {
	blobID       string
	size         int64
	internalDate time.Time
}

// bodyCache maps messages (headerKey: account, mailbox, UIDVALIDITY,
// UID) to their bodyRef, first in, first out beyond max entries. One per
// server, shared by its sessions.
type bodyCache struct {
	mu    sync.Mutex
	max   int
	m     map[headerKey]bodyRef
	order []headerKey // insertion order; order[head:] are live
	head  int
}

func newBodyCache(max int) *bodyCache {
	return &bodyCache{max: max, m: make(map[headerKey]bodyRef)}
}

func (c *bodyCache) get(k headerKey) (bodyRef, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[k]
	return r, ok
}

func (c *bodyCache) put(k headerKey, r bodyRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	c.m[k] = r
	c.order = append(c.order, k)
	for len(c.m) > c.max && c.head < len(c.order) {
		delete(c.m, c.order[c.head])
		c.order[c.head] = headerKey{}
		c.head++
	}
	if c.head > len(c.order)/2 {
		c.order = append(c.order[:0], c.order[c.head:]...)
		c.head = 0
	}
}

// cachedFetch reports whether o asks for nothing of a message's listing
// but what the view and a bodyRef hold: UID, FLAGS (without CONDSTORE's
// MODSEQ), INTERNALDATE, RFC822.SIZE, ENVELOPE, BODYSTRUCTURE and PEEK
// sections (a non-PEEK one sets \Seen, a write). A FETCH item added
// later that reads another field of store.Message (MODSEQ, SAVEDATE)
// must make this false.
func (v *view) cachedFetch(o *imap.FetchOptions) bool {
	if o.ModSeq || o.ChangedSince > 0 || o.Flags && v.s.condStore() {
		return false
	}
	for _, sec := range o.BodySection {
		if !sec.Peek {
			return false
		}
	}
	for _, sec := range o.BinarySection {
		if !sec.Peek {
			return false
		}
	}
	rest := *o
	rest.UID, rest.Flags, rest.Envelope, rest.BodyStructure = false, false, false, nil
	rest.InternalDate, rest.RFC822Size = false, false
	rest.BodySection, rest.BinarySection, rest.BinarySectionSize = nil, nil, nil
	return reflect.ValueOf(rest).IsZero()
}

// openCached lists and opens message uid for a FETCH of o from the
// server's bodyCache and the view, without the store's index, when the
// view is current and the body's blob is cached and still there; ok is
// false otherwise, and the caller asks the store. extra: the FETCH also
// asks for OBJECTID, SAVEDATE or PREVIEW items, which read more of the
// listing.
func (v *view) openCached(uid uint32, o *imap.FetchOptions, extra bool) (m store.Message, ok bool) {
	s := v.s
	bo, isBO := s.srv.opts.Backend.(BlobOpener)
	if !isBO || extra || !v.cachedFetch(o) || v.seqOf(uid) == 0 || !v.current() {
		return store.Message{}, false
	}
	ref, hit := s.srv.bodies.get(headerKey{v.key, uid})
	if !hit {
		return store.Message{}, false
	}
	rc, err := bo.OpenBlob(s.ctx, ref.blobID)
	if err != nil {
		return store.Message{}, false // freed (expunged meanwhile) or failing: the store decides
	}
	v.opened = &openedBody{uid: uid, rc: rc}
	return store.Message{UID: uid, Flags: v.flagsOf(uid), InternalDate: ref.internalDate, Size: ref.size, BlobID: ref.blobID}, true
}

// cacheBody keeps m's bodyRef for later FETCHes of its whole body.
func (v *view) cacheBody(m store.Message) {
	if m.BlobID == "" {
		return
	}
	v.s.srv.bodies.put(headerKey{v.key, m.UID}, bodyRef{blobID: m.BlobID, size: m.Size, internalDate: m.InternalDate})
}
