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

// A FETCH of whole messages (BODY.PEEK[], what a client sends to open a
// message) or of their INTERNALDATE and RFC822.SIZE needs the body's
// blob, size and date besides the UID and flags the view holds. All
// three are immutable by mailbox, UIDVALIDITY and UID (RFC 9051
// §2.3.1.1), so the server keeps them from every listing it reads (a
// SELECT's, a FETCH's, the new messages of a poll), and such a FETCH
// opens the blobs by their IDs without an index look-up, as Dovecot opens
// the message's file (issue 16). The view must hold the store's state of
// these messages: it is current (readpath.go: nothing committed to the
// mailbox since the poll, so a UID in the view is a message in the
// store), or the changes since its poll, read once for all the sessions
// of the mailbox, say which were expunged and which flags changed
// (listCached). That is what makes an expunged message never served from
// the cache. A blob freed by an expunge that commits after that check
// fails to open, and FETCH then asks the store too; a shared blob
// (delivered to several mailboxes) that an expunge racing this FETCH did
// not free is served as if the FETCH had come first, as the expunging
// call has not returned yet.

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

// listCached lists the messages uids for a FETCH of o from the server's
// bodyCache and the view, without a listing from the store's index, when
// every one of them is cached; ok is false otherwise, and the caller asks
// the store. A view that is not current is first brought up to the
// store's state for these messages by the changes since its last poll,
// read once for all the sessions polling the mailbox (storeCache.changes,
// which the poll after this command then takes too): a message expunged
// since is left out (answered as expunged, as a listing leaves it out),
// one whose flags changed carries its new flags. The bodies are opened
// by their blobs (openBody); a blob freed meanwhile fails to open and the
// store is asked then. extra: the FETCH also asks for OBJECTID, SAVEDATE
// or PREVIEW items, which read more of the listing.
func (v *view) listCached(uids []uint32, o *imap.FetchOptions, extra bool) (msgs []store.Message, ok bool) {
	s := v.s
	if _, isBO := s.srv.opts.Backend.(BlobOpener); !isBO || extra || v.dead || len(uids) == 0 || !v.cachedFetch(o) {
		return nil, false
	}
	refs := make([]bodyRef, len(uids))
	for i, uid := range uids {
		ref, hit := s.srv.bodies.get(headerKey{v.key, uid})
		if !hit || v.seqOf(uid) == 0 {
			return nil, false
		}
		refs[i] = ref
	}
	var newFlags map[uint32][]string
	var vanished map[uint32]bool
	if !v.current() {
		mark := s.srv.cache.mark(s.account, v.name)
		mb, cs, err := s.srv.cache.changes(s.ctx, s.srv.opts.Backend, s.account, v.name, mark, v.modSeq)
		if err != nil || mb.UIDValidity != v.uidValidity {
			return nil, false // the store's listing says what happened
		}
		vanished = make(map[uint32]bool, len(cs.Vanished))
		for _, uid := range cs.Vanished {
			vanished[uid] = true
		}
		newFlags = make(map[uint32][]string)
		for _, m := range cs.Changed {
			// Changes at or below the view's MODSEQ are in the view
			// already (the read may be shared from an earlier one).
			if m.ModSeq > v.modSeq {
				newFlags[m.UID] = m.Flags
			}
		}
	}
	msgs = make([]store.Message, 0, len(uids))
	for i, uid := range uids {
		if v.gone[uid] || vanished[uid] {
			continue // expunged in the store
		}
		flags, ok := newFlags[uid]
		if !ok {
			flags = v.flagsOf(uid)
		}
		msgs = append(msgs, store.Message{UID: uid, Flags: flags, InternalDate: refs[i].internalDate, Size: refs[i].size, BlobID: refs[i].blobID})
	}
	return msgs, true
}

// cacheBody keeps m, listed from the view's mailbox, in the server's
// bodyCache.
func (v *view) cacheBody(m store.Message) { v.s.srv.bodies.keep(v.key, m) }

// keep keeps the bodyRef of m, listed from the mailbox mb (account,
// name, UIDVALIDITY), for later FETCHes; a listing without a BlobID (a
// backend that does not give it) is not kept.
func (c *bodyCache) keep(mb recentKey, m store.Message) {
	if m.BlobID == "" {
		return
	}
	c.put(headerKey{mb, m.UID}, bodyRef{blobID: m.BlobID, size: m.Size, internalDate: m.InternalDate})
}
