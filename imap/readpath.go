package imap

import (
	"context"
	"errors"
	"io"
	"reflect"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/store"
)

// The view already holds every message's UID and flags, kept current by
// the poll. While the store's change number says that nothing was
// committed to the mailbox since the view last took the store's changes
// in (storeCache.unchanged), those are the store's UIDs and flags, and a
// FETCH of UID, FLAGS, ENVELOPE, BODYSTRUCTURE and header or part
// sections, or a SEARCH by flags and numbers only, is answered from the
// view without a store listing (issue 16: the query and
// its rows were most of these commands' time). Anything else, or a view
// that may be behind, goes to the store as before.

// current reports whether the view holds the store's state of its
// mailbox: nothing committed since the last poll, no expunge held back,
// the mailbox not deleted under the session.
func (v *view) current() bool {
	return !v.dead && len(v.gone) == 0 && v.s.srv.cache.unchanged(v.polled, v.s.account, v.name)
}

// viewFetch reports whether o asks only for items that need no more of
// the store's listing than UID and flags: UID, FLAGS (without MODSEQ,
// which the view keeps none of per message), ENVELOPE, BODYSTRUCTURE,
// and PEEK sections other than the whole message (whose literal length
// is the listed size). Those read the body or the header cache, by UID.
// A FETCH item added later that reads another field of store.Message
// (MODSEQ, INTERNALDATE, size, blob) must make this false: the messages
// fetchFromView passes on carry only UID and flags.
func (v *view) viewFetch(o *imap.FetchOptions) bool {
	if o.Flags && v.s.condStore() {
		return false
	}
	for _, sec := range o.BodySection {
		if !sec.Peek || wholeMessage(sec) {
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
	rest.BodySection, rest.BinarySection, rest.BinarySectionSize = nil, nil, nil
	return reflect.ValueOf(rest).IsZero()
}

// fetchFromView answers a viewFetch of the messages at idxs from a
// current view: the listing fetch would read from the store is the
// view's UIDs and flags.
func (v *view) fetchFromView(w *imapserver.FetchWriter, idxs []int, o *imap.FetchOptions) error {
	msgs := make([]store.Message, len(idxs))
	for j, i := range idxs {
		msgs[j] = store.Message{UID: v.uids[i], Flags: v.flagSets[v.flags[i]]}
		if ref, ok := v.s.srv.bodies.get(headerKey{v.key, v.uids[i]}); ok {
			msgs[j].BlobID = ref.blobID // opened without a look-up (openBody)
		}
	}
	found, err := v.fetchListed(w, msgs, o, nil)
	if err != nil {
		return err
	}
	return v.fetchExpunged(w, idxs, found, o)
}

// flagsOnlySearch reports whether c selects by nothing but flags,
// sequence numbers and UIDs, at every level of NOT and OR: what the
// view knows of every message.
func flagsOnlySearch(c *imap.SearchCriteria) bool {
	if !c.Since.IsZero() || !c.Before.IsZero() || !c.SentSince.IsZero() || !c.SentBefore.IsZero() ||
		len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 ||
		c.Larger > 0 || c.Smaller > 0 || c.ModSeq != nil {
		return false
	}
	for i := range c.Not {
		if !flagsOnlySearch(&c.Not[i]) {
			return false
		}
	}
	for i := range c.Or {
		if !flagsOnlySearch(&c.Or[i][0]) || !flagsOnlySearch(&c.Or[i][1]) {
			return false
		}
	}
	return true
}

// viewMessages lists the view's messages with their UIDs and flags, the
// only fields a flagsOnlySearch reads.
func (v *view) viewMessages() []store.Message {
	msgs := make([]store.Message, len(v.uids))
	for i, uid := range v.uids {
		msgs[i] = store.Message{UID: uid, Flags: v.flagSets[v.flags[i]]}
	}
	return msgs
}

// MessageOpener is an optional interface of a [Backend]
// (store/sqlite.Store.OpenMessage): a message's index row and its body,
// opened, in one look-up, where ListMessages and OpenBody take one each.
// FETCH uses it for one message's whole body (BODY[], RFC822), the way
// a client opens a message. A message not there is an error wrapping
// store.ErrNotFound.
type MessageOpener interface {
	OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (store.Message, io.ReadCloser, error)
}

// openedBody is a body opened with its message's listing.
type openedBody struct {
	uid uint32
	rc  io.ReadCloser
}

// listForFetch lists the messages uids for a FETCH of o: from the
// server's bodyCache and the view when every one of them is there and
// the view is current (listCached), else from the store. One message
// whose whole body is asked for is listed and opened at once with a
// MessageOpener (the body left in v.opened for fetchOne; the caller
// calls dropOpened when done). Every message the store lists is kept in
// the bodyCache. extra: the FETCH asks for OBJECTID, SAVEDATE or PREVIEW
// items too.
func (v *view) listForFetch(uids []uint32, o *imap.FetchOptions, extra bool) ([]store.Message, error) {
	s := v.s
	if msgs, ok := v.listCached(uids, o, extra); ok { // see bodycache.go
		return msgs, nil
	}
	mo, ok := s.srv.opts.Backend.(MessageOpener)
	if !ok || len(uids) != 1 || !slices.ContainsFunc(o.BodySection, wholeMessage) {
		msgs, err := s.srv.opts.Backend.ListMessages(s.ctx, s.account, v.name, compressUIDs(uids))
		for _, m := range msgs {
			v.cacheBody(m)
		}
		return msgs, err
	}
	m, rc, err := mo.OpenMessage(s.ctx, s.account, v.name, uids[0])
	if errors.Is(err, store.ErrNoMessage) {
		return nil, nil // expunged: answered as ListMessages' empty listing is
	}
	if err != nil {
		return nil, err
	}
	v.opened = &openedBody{uid: m.UID, rc: rc}
	v.cacheBody(m)
	return []store.Message{m}, nil
}

// dropOpened closes a body listForFetch opened that fetchOne did not
// take.
func (v *view) dropOpened() {
	if v.opened != nil {
		v.opened.rc.Close()
		v.opened = nil
	}
}

// MessagesOpener is an optional interface of a [Backend]
// (store/postgres.Store.OpenMessages): the bodies of a set of messages
// opened together, in one look-up for many of them, where OpenBody
// takes one each. fn is called in UID order for each message of uids
// still in mailbox, with its body, which seeks and is valid until fn
// returns; a message expunged meanwhile is left out. An error of fn
// ends the walk and is returned. FETCH uses it when it reads the bodies
// of more than one message.
type MessagesOpener interface {
	OpenMessages(ctx context.Context, account, mailbox string, uids store.UIDSet, fn func(store.Message, io.ReadSeeker) error) error
}

// unlistedOpener returns the Backend's MessagesOpener when a FETCH of o
// (with the extra items x) of uids can be answered from the messages as
// opened, without listing them first: it reads the body of each (as
// batchOpener decides), and asks for nothing that must be known of all
// of them before the first response is written (FLAGS, whose new
// keywords are announced first, and a \Seen set by a non-PEEK section)
// nor an extra item. That is one statement less for such a FETCH.
func (v *view) unlistedOpener(uids []uint32, o *imap.FetchOptions, x imapserver.FetchExtra) MessagesOpener {
	mo, ok := v.s.srv.opts.Backend.(MessagesOpener)
	if !ok || len(uids) < 2 || o.Flags || setsSeen(o) || x.Any() || v.dead {
		return nil
	}
	if o.BodyStructure != nil || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0 ||
		slices.ContainsFunc(o.BodySection, func(sec *imap.FetchItemBodySection) bool { return !topHeaderSection(sec) }) {
		return mo
	}
	return nil
}

// batchOpener returns the Backend's MessagesOpener when a FETCH of o
// (with the extra items x) reads the bodies of more than one of msgs,
// and nil otherwise: ENVELOPE and the header sections read a body only
// for a header not in the server's cache.
func (v *view) batchOpener(msgs []store.Message, o *imap.FetchOptions, x imapserver.FetchExtra) MessagesOpener {
	mo, ok := v.s.srv.opts.Backend.(MessagesOpener)
	if !ok || len(msgs) < 2 {
		return nil
	}
	if o.BodyStructure != nil || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0 || x.Preview ||
		slices.ContainsFunc(o.BodySection, func(sec *imap.FetchItemBodySection) bool { return !topHeaderSection(sec) }) {
		return mo
	}
	if !o.Envelope && len(o.BodySection) == 0 {
		return nil
	}
	uncached := 0
	for _, m := range msgs {
		if _, ok := v.s.srv.headers.get(headerKey{v.key, m.UID}); !ok {
			if uncached++; uncached > 1 {
				return mo
			}
		}
	}
	return nil
}

// fetchOpened writes the FETCH responses for msgs as fetchListed does,
// their bodies opened by mo (a few statements for the whole set, where
// fetchOne's OpenBody is one per message), and adds to found the UIDs it
// answered. The flags, MODSEQ and the rest of each response come from
// msgs, as listed (the keywords announced were theirs); a message
// listed but no longer there when the bodies were opened is left for
// fetchExpunged, as with OpenBody. With msgs nil, the messages uids
// were not listed (unlistedOpener): each response comes from the
// message as opened.
func (v *view) fetchOpened(w *imapserver.FetchWriter, mo MessagesOpener, msgs []store.Message, uids []uint32, o *imap.FetchOptions, seenNow, found map[uint32]bool) error {
	s := v.s
	var listed map[uint32]store.Message
	if msgs != nil {
		listed = make(map[uint32]store.Message, len(msgs))
		uids = make([]uint32, 0, len(msgs))
		for _, m := range msgs {
			if v.seqOf(m.UID) != 0 && !v.gone[m.UID] {
				listed[m.UID] = m
				uids = append(uids, m.UID)
			}
		}
	} else {
		uids = slices.DeleteFunc(slices.Clone(uids), func(u uint32) bool { return v.seqOf(u) == 0 || v.gone[u] })
	}
	if len(uids) == 0 {
		return nil
	}
	var fnErr error
	err := mo.OpenMessages(s.ctx, s.account, v.name, compressUIDs(uids), func(opened store.Message, body io.ReadSeeker) error {
		m, ok := listed[opened.UID]
		if listed == nil {
			m, ok = opened, true
			v.cacheBody(m)
		}
		if !ok {
			return nil
		}
		v.opened = &openedBody{uid: m.UID, rc: seekNopCloser{body}}
		fnErr = v.fetchListedOne(w, m, o, seenNow, found)
		v.dropOpened()
		return fnErr
	})
	switch {
	case err == nil || fnErr != nil:
		return err
	case errors.Is(err, store.ErrNotFound):
		// The mailbox was deleted under the session: the messages not
		// answered yet are expunged (RFC 2180 §3), see fetchExpunged.
		return nil
	default:
		return s.storeErr("fetch", err)
	}
}

// seekNopCloser is a body a MessagesOpener gave, which its caller does
// not close; it keeps the Seek that messageBody rewinds with.
type seekNopCloser struct{ io.ReadSeeker }

func (seekNopCloser) Close() error { return nil }
