package imap

import (
	"errors"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"
)

// CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4).
//
// A SEARCH or SORT with RETURN (UPDATE) leaves a context in the view of
// the selected mailbox: its criteria and its result as the client was
// last told it, by UID. The per-command poll (view.poll), which already
// keeps the view current from the change feed, brings each context up
// to date after it has taken the store's changes in: it runs the search
// again over the view and writes what left the result (REMOVEFROM) and
// what joined it (ADDTO). The contexts end with the view (SELECT,
// EXAMINE, CLOSE, UNSELECT) or by CANCELUPDATE (§4.3.5).
//
// Ordering (§4.3.3, §4.3.4): ADDTO comes after the EXISTS that announced
// the messages it adds, since the poll writes EXISTS first; a REMOVEFROM
// of an expunged message comes before its EXPUNGE or VANISHED
// (reportExpunges calls contextsRemoveGone first), while its sequence
// number is still valid. Messages expunged by others but not yet
// reported (during FETCH, STORE, SEARCH) keep their sequence numbers in
// the view and are removed from the contexts by the poll, which is
// before their EXPUNGE too.

// searchContext is one context being updated.
type searchContext struct {
	tag  string
	kind imapserver.NumKind
	// keys are the sort criteria of a SORT; nil for a SEARCH, whose
	// result is kept in mailbox order (context position 0, §4.3.3).
	keys     []imapserver.SortCriterion
	criteria *imap.SearchCriteria
	// uids is the result as the client was last told it, in the
	// context's order.
	uids []uint32
	// fetch is UPDATE's fetch attributes (RFC 5465 §7), nil without.
	fetch *imapserver.UpdateFetch
}

// contextMark is what a context's result depends on besides time: when
// it is unchanged since the last evaluation, so is every result whose
// criteria do not depend on the clock (WITHIN).
type contextMark struct {
	modSeq   uint64
	messages int // sequence numbers shift when this changes
	gone     int
	saved    int // "$" (RFC 5182)
	dead     bool
}

func (v *view) contextMark() contextMark {
	return contextMark{modSeq: v.modSeq, messages: len(v.uids), gone: len(v.gone), saved: len(v.searchRes), dead: v.dead}
}

// contextWriter is what context updates are written to: the library's
// UpdateWriter, ExpungeWriter and MoveWriter.
type contextWriter interface {
	WriteContextUpdate(tag string, kind imapserver.NumKind, remove bool, pairs []imapserver.ContextPair) error
}

var _ imapserver.SessionContext = (*session)(nil)

// UpdateActive implements imapserver.SessionContext.
func (s *session) UpdateActive(tag string) bool {
	return s.view != nil && s.view.contextIndex(tag) >= 0
}

// CancelUpdate implements imapserver.SessionContext (RFC 5267 §4.3.5):
// the contexts are dropped with what they hold.
func (s *session) CancelUpdate(tags []string) error {
	v := s.view
	if v == nil {
		return nil
	}
	for _, tag := range tags {
		if i := v.contextIndex(tag); i >= 0 {
			v.contexts = slices.Delete(v.contexts, i, i+1)
		}
	}
	return nil
}

// SearchContext implements imapserver.SessionContext: SEARCH and SORT
// with the CONTEXT, UPDATE and PARTIAL return options. CONTEXT is a hint
// the server ignores (§4.2: every search runs over the view anyway).
func (s *session) SearchContext(req *imapserver.ContextRequest) (*imapserver.ContextResult, error) {
	defer s.srv.begin()()
	v := s.view
	found, err := v.evaluate(req.Sort, req.Criteria)
	if err != nil {
		return nil, err
	}
	res := &imapserver.ContextResult{Nums: make([]uint32, len(found))}
	if req.Relevancy {
		res.Scores = make([]uint32, len(found)) // RFC 6203 §4, §6
	}
	withModSeq := imapserver.HasModSeqKey(req.Criteria)
	if withModSeq {
		res.ModSeqs = make([]uint64, len(found))
	}
	uids := make([]uint32, len(found))
	for i, c := range found {
		uids[i] = c.msg.UID
		res.Nums[i] = numOf(req.Kind, c)
		if req.Relevancy {
			res.Scores[i] = c.rel // evaluate scored it
		}
		if withModSeq {
			res.ModSeqs[i] = c.msg.ModSeq
		}
	}
	if req.Save && req.Sort == nil {
		v.searchRes = slices.Clone(uids) // RFC 5182, in mailbox order
		v.contextsMark = contextMark{}   // "$" may have changed
	}
	if !req.Update {
		return res, nil
	}
	if len(v.contexts) >= s.srv.opts.MaxUpdateContexts {
		res.NoUpdate = true // §4.3.1
		return res, nil
	}
	v.contexts = append(v.contexts, &searchContext{
		tag: req.Tag, kind: req.Kind, keys: req.Sort, criteria: req.Criteria, uids: uids, fetch: req.UpdateFetch,
	})
	return res, nil
}

func (v *view) contextIndex(tag string) int {
	return slices.IndexFunc(v.contexts, func(c *searchContext) bool { return c.tag == tag })
}

// evaluate runs a SEARCH (keys nil) or SORT over the view: the matching
// messages in mailbox order or in the order keys give.
func (v *view) evaluate(keys []imapserver.SortCriterion, criteria *imap.SearchCriteria) ([]*candidate, error) {
	if keys != nil {
		return v.sorted(keys, criteria)
	}
	found, m, err := v.findFor(criteria, true)
	if err == nil && imapserver.HasFuzzyKey(criteria) {
		err = m.scoreAll(found) // for RELEVANCY (RFC 6203 §4), fuzzy.go
	}
	return found, err
}

// num is the number of uid for a context of kind: its UID or its
// sequence number in the view.
func (v *view) num(kind imapserver.NumKind, uid uint32) uint32 {
	if kind == imapserver.NumKindUID {
		return uid
	}
	return v.seqOf(uid)
}

// contextsRemoveGone writes REMOVEFROM for the messages of every context
// that are about to be reported expunged, before their EXPUNGE or
// VANISHED (RFC 5267 §4.3.4), and takes them out of the contexts.
func (v *view) contextsRemoveGone(w contextWriter) error {
	for _, c := range v.contexts {
		keep := make(map[uint32]bool, len(c.uids))
		for _, uid := range c.uids {
			if !v.gone[uid] {
				keep[uid] = true
			}
		}
		if err := v.writeRemovals(w, c, keep); err != nil {
			return err
		}
	}
	return nil
}

// syncContexts brings every context up to date with the view: it runs
// each search again and writes REMOVEFROM for what left the result and
// ADDTO for what joined it. It runs at the end of a poll, after EXISTS,
// so that the sequence numbers of new messages are valid (§4.3.3).
func (v *view) syncContexts(w contextWriter) error {
	if len(v.contexts) == 0 {
		return nil
	}
	mark := v.contextMark()
	if mark == v.contextsMark && !v.contextsTimed() {
		return nil
	}
	for _, c := range v.contexts {
		found, err := v.evaluate(c.keys, c.criteria)
		if err != nil {
			return err
		}
		fresh := make([]uint32, len(found))
		in := make(map[uint32]bool, len(found))
		for i, f := range found {
			fresh[i] = f.msg.UID
			in[f.msg.UID] = true
		}
		if err := v.writeRemovals(w, c, in); err != nil {
			return err
		}
		if err := v.writeAdditions(w, c, fresh); err != nil {
			return err
		}
	}
	v.contextsMark = mark
	return nil
}

// contextsTimed reports whether some context's criteria depend on the
// clock (WITHIN, RFC 5032): those are evaluated on every poll.
func (v *view) contextsTimed() bool {
	for _, c := range v.contexts {
		if hasWithin(c.criteria) {
			return true
		}
	}
	return false
}

func hasWithin(c *imap.SearchCriteria) bool {
	for _, h := range c.Header {
		if h.Key == imapserver.SearchKeyOlder || h.Key == imapserver.SearchKeyYounger {
			return true
		}
	}
	for i := range c.Not {
		if hasWithin(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if hasWithin(&c.Or[i][0]) || hasWithin(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// writeRemovals removes from c the messages not in keep and writes one
// REMOVEFROM for them (§4.3.4). A SEARCH context gives position 0 and
// the numbers in mailbox order; a SORT context one pair per run of
// adjacent removed results, at the position the run's first result has
// when the pair is processed (earlier pairs already applied).
func (v *view) writeRemovals(w contextWriter, c *searchContext, keep map[uint32]bool) error {
	var pairs []imapserver.ContextPair
	kept := c.uids[:0:0]
	var removed []uint32
	for i, uid := range c.uids {
		if keep[uid] {
			kept = append(kept, uid)
			continue
		}
		num := v.num(c.kind, uid)
		removed = append(removed, uid)
		switch {
		case c.keys == nil:
			if len(pairs) == 0 {
				pairs = append(pairs, imapserver.ContextPair{})
			}
			pairs[0].Nums = append(pairs[0].Nums, num)
		case i > 0 && len(removed) > 1 && !keep[c.uids[i-1]]:
			// The run goes on.
			pairs[len(pairs)-1].Nums = append(pairs[len(pairs)-1].Nums, num)
		default:
			pairs = append(pairs, imapserver.ContextPair{Pos: uint32(len(kept) + 1), Nums: []uint32{num}})
		}
	}
	if len(removed) == 0 {
		return nil
	}
	c.uids = kept
	if c.keys == nil && c.kind == imapserver.NumKindSeq {
		slices.Sort(pairs[0].Nums) // mailbox order
	}
	return w.WriteContextUpdate(c.tag, c.kind, true, pairs)
}

// writeAdditions makes c's result fresh (the new result, in the
// context's order) and writes one ADDTO for the messages that joined
// it (§4.3.3). A SEARCH context gives position 0 and the numbers in
// mailbox order; a SORT context one pair per run of adjacent new
// results, at the position the run has in fresh: pairs are processed in
// order, so everything before it is in place when it is inserted.
//
// What stayed keeps its relative order (sort keys do not change, and
// neither does the order of sequence numbers); should it not, the
// context is given anew: everything removed, then everything added.
func (v *view) writeAdditions(w contextWriter, c *searchContext, fresh []uint32) error {
	had := make(map[uint32]bool, len(c.uids))
	for _, uid := range c.uids {
		had[uid] = true
	}
	var stayed []uint32
	for _, uid := range fresh {
		if had[uid] {
			stayed = append(stayed, uid)
		}
	}
	if !slices.Equal(stayed, c.uids) {
		if err := v.writeRemovals(w, c, nil); err != nil {
			return err
		}
		had = nil
	}
	var pairs []imapserver.ContextPair
	for i, uid := range fresh {
		if had[uid] {
			continue
		}
		num := v.num(c.kind, uid)
		switch {
		case c.keys == nil:
			if len(pairs) == 0 {
				pairs = append(pairs, imapserver.ContextPair{})
			}
			pairs[0].Nums = append(pairs[0].Nums, num)
		case i > 0 && len(pairs) > 0 && !had[fresh[i-1]]:
			pairs[len(pairs)-1].Nums = append(pairs[len(pairs)-1].Nums, num)
		default:
			pairs = append(pairs, imapserver.ContextPair{Pos: uint32(i + 1), Nums: []uint32{num}})
		}
	}
	c.uids = fresh
	if len(pairs) == 0 {
		return nil
	}
	if err := v.fetchAdded(w, c, had, fresh); err != nil {
		return err
	}
	return w.WriteContextUpdate(c.tag, c.kind, false, pairs)
}

// fetchAdded writes the FETCH of UPDATE's attributes (RFC 5465 §7) for
// the new messages (those the poll just added, v.newFrom on) that joined
// c's result, before their ADDTO; not for messages that joined it by a
// flag change (§7: SHOULD NOT).
func (v *view) fetchAdded(w contextWriter, c *searchContext, had map[uint32]bool, fresh []uint32) error {
	uw, ok := w.(*imapserver.UpdateWriter)
	if c.fetch == nil || v.newFrom == 0 || !ok {
		return nil
	}
	var set imap.SeqSet
	for _, uid := range fresh {
		if !had[uid] && uid >= v.newFrom {
			set.AddNum(v.seqOf(uid))
		}
	}
	if len(set) == 0 {
		return nil
	}
	err := v.fetch(c.fetch.FetchWriter(uw), set, c.fetch.Options)
	var ie *imap.Error
	if errors.As(err, &ie) {
		return nil // expunged meanwhile
	}
	return err
}
