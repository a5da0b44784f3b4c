package imap

import (
	"reflect"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/store"
)

// The view already holds every message's UID and flags, kept current by
// the poll. While the store's change number says that nothing was
// committed to the mailbox since the view last took the store's changes
// in (storeCache.unchanged), those are the store's UIDs and flags, and a
// FETCH of only UID and FLAGS, or a SEARCH by flags and numbers only, is
// answered from the view without a store query (issue 16: the query and
// its rows were most of these commands' time). Anything else, or a view
// that may be behind, goes to the store as before.

// current reports whether the view holds the store's state of its
// mailbox: nothing committed since the last poll, no expunge held back,
// the mailbox not deleted under the session.
func (v *view) current() bool {
	return !v.dead && len(v.gone) == 0 && v.s.srv.cache.unchanged(v.polled, v.s.account, v.name)
}

// flagsOnlyFetch reports whether o asks for nothing but UID and FLAGS,
// with no MODSEQ (the view keeps none per message) and no CHANGEDSINCE.
func (v *view) flagsOnlyFetch(o *imap.FetchOptions) bool {
	if !o.Flags || v.s.condStore() {
		return false
	}
	rest := *o
	rest.UID, rest.Flags = false, false
	return reflect.ValueOf(rest).IsZero()
}

// fetchFlagsFromView answers a flagsOnlyFetch of the messages at idxs
// from a current view, in the form fetchOne writes.
func (v *view) fetchFlagsFromView(w *imapserver.FetchWriter, idxs []int, o *imap.FetchOptions) error {
	if err := v.announceKeywords(w); err != nil {
		return err
	}
	for _, i := range idxs {
		uid := v.uids[i]
		rw := w.CreateMessage(uint32(i + 1))
		if o.UID {
			rw.WriteUID(imap.UID(uid))
		}
		rw.WriteFlags(v.clientFlags(uid, v.flagSets[v.flags[i]]))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
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
