package imapserver

// mailyard: this file is ours, not upstream's.

import (
	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// mailyard: CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): the CONTEXT,
// UPDATE and PARTIAL return options of SEARCH and SORT, the ADDTO and
// REMOVEFROM updates of a context, NOUPDATE and CANCELUPDATE.

// The capabilities of RFC 5267 §4.1.
const (
	CapContextSearch imap.Cap = "CONTEXT=SEARCH"
	CapContextSort   imap.Cap = "CONTEXT=SORT"
)

// ContextOptions are the return options RFC 5267 §4 adds to SEARCH and
// SORT.
type ContextOptions struct {
	// Context is the hint of §4.2; the server may ignore it.
	Context bool
	// Update asks for ADDTO and REMOVEFROM updates of the result as the
	// mailbox changes (§4.3).
	Update bool
	// Partial is the range of results asked for (§4.4); nil if not given.
	Partial *PartialRange
	// UpdateFetch is UPDATE's fetch attributes (RFC 5465 §7), nil
	// without them.
	UpdateFetch *UpdateFetch
	// notify is the connection when it announces NOTIFY, which extends
	// UPDATE with fetch attributes; nil otherwise.
	notify *Conn
}

func (o *ContextOptions) any() bool {
	return o.Context || o.Update || o.Partial != nil
}

// PartialRange is the argument of the PARTIAL return option (RFC 5267
// §4.4): result positions, counted from 1, as the client wrote them
// (500:400 is the same range as 400:500).
type PartialRange struct {
	First, Last uint32
}

// bounds returns the range's ends, lower first.
func (r PartialRange) bounds() (uint32, uint32) {
	return min(r.First, r.Last), max(r.First, r.Last)
}

// ContextRequest is a SEARCH or SORT with one of RFC 5267's return
// options, for SessionContext.SearchContext.
type ContextRequest struct {
	// Tag is the command's tag: the correlator of its updates (§4.3).
	Tag  string
	Kind NumKind
	// Sort is the sort criteria of a SORT; nil for a SEARCH.
	Sort     []SortCriterion
	Criteria *imap.SearchCriteria
	// Update asks the session to keep the result up to date.
	Update bool
	// Save is SEARCHRES's SAVE (RFC 5182), for a SEARCH.
	Save bool
	// UpdateFetch is UPDATE's fetch attributes (RFC 5465 §7), nil
	// without them.
	UpdateFetch *UpdateFetch
	// Relevancy asks for the relevancy scores of the results (RFC 6203
	// §4, §6; the session is a SessionFuzzy).
	Relevancy bool
}

// ContextResult is the result of a ContextRequest.
type ContextResult struct {
	// Nums are the matching messages' numbers (sequence numbers or
	// UIDs as the request's Kind says): in mailbox order for a SEARCH
	// (RFC 5267 §4.4), in the requested order for a SORT.
	Nums []uint32
	// ModSeqs are the MODSEQs of Nums, one each, when the criteria have
	// the MODSEQ key (RFC 7162 §3.1.5); nil otherwise.
	ModSeqs []uint64
	// NoUpdate reports that the session refused to keep the result up
	// to date (RFC 5267 §4.3.1): the command answers NO [NOUPDATE]
	// untagged and still gives the other return options.
	NoUpdate bool
	// Scores are the relevancy scores of Nums, one each, when the
	// request asked for them.
	Scores []uint32
}

// SessionContext is an IMAP session which supports CONTEXT=SEARCH and
// CONTEXT=SORT (RFC 5267 §4). The session keeps the contexts it agreed
// to update and writes their ADDTO and REMOVEFROM updates to the
// writers of its polls and expunges (WriteContextUpdate).
type SessionContext interface {
	SessionSort

	// UpdateActive reports whether tag names a context being updated:
	// such a tag may not be used again for an UPDATE (§4.3).
	UpdateActive(tag string) bool
	// SearchContext runs a SEARCH or SORT with RFC 5267 return options.
	SearchContext(req *ContextRequest) (*ContextResult, error)
	// CancelUpdate stops the updates of the contexts of tags (§4.3.5).
	// Tags that name no context are ignored: their updates have
	// stopped already.
	CancelUpdate(tags []string) error
}

// ContextPair is one pair of an ADDTO or REMOVEFROM return data item
// (RFC 5267 §4.3.3, §4.3.4): a context position (0 for a SEARCH, where
// the result is kept in mailbox order) and the numbers added there or
// removed from there, in the context's order.
type ContextPair struct {
	Pos  uint32
	Nums []uint32
}

// addContextCaps adds CONTEXT=SEARCH and CONTEXT=SORT to caps for a
// session that supports them.
func (c *Conn) addContextCaps(caps *[]imap.Cap, available imap.CapSet) {
	if _, ok := c.session.(SessionContext); ok {
		addAvailableCaps(caps, available, []imap.Cap{CapContextSearch, CapContextSort})
	}
}

// contextOptions returns where the return options of a SEARCH (sort
// false) or SORT may put RFC 5267's options: nil when the session or
// the server does not support them, so that they are unknown options.
func (c *Conn) contextOptions(sort bool) *ContextOptions {
	if _, ok := c.session.(SessionContext); !ok {
		return nil
	}
	capName := CapContextSearch
	if sort {
		capName = CapContextSort
	}
	if !c.server.options.caps().Has(capName) {
		return nil
	}
	o := &ContextOptions{}
	if c.notifySession() != nil {
		o.notify = c
	}
	return o
}

// readContextReturnOpt reads one of RFC 5267's return options (§5):
//
//	modifier-context = "CONTEXT"
//	modifier-partial = "PARTIAL" SP partial-range
//	modifier-update  = "UPDATE"
//	partial-range    = nz-number ":" nz-number
//
// It reports false if name is none of them.
func readContextReturnOpt(dec *imapwire.Decoder, name string, o *ContextOptions, opts *imap.SearchOptions) (bool, error) {
	if o == nil {
		return false, nil
	}
	switch name {
	case "CONTEXT":
		o.Context = true
	case "UPDATE":
		o.Update = true
		// RFC 5465 §7: modifier-update = "UPDATE" ["(" fetch-att
		// *(SP fetch-att) ")"]; its example puts SP before "(".
		if o.notify != nil && (dec.SPList() || dec.ListNext()) {
			opts, wo, err := o.notify.readFetchAttList(dec)
			if err != nil {
				return true, err
			}
			o.UpdateFetch = &UpdateFetch{Options: opts, writer: wo}
		}
	case "PARTIAL":
		var r PartialRange
		if !dec.ExpectSP() || !dec.ExpectNumber(&r.First) || !dec.ExpectSpecial(':') || !dec.ExpectNumber(&r.Last) {
			return true, dec.Err()
		}
		if r.First == 0 || r.Last == 0 {
			return true, newClientBugError("PARTIAL range starts at 1")
		}
		// §4.4: "either one PARTIAL, one ALL, or neither" (ALL after
		// PARTIAL is caught by readSearchReturnOpts).
		if o.Partial != nil || opts.ReturnAll {
			return true, errPartialAll
		}
		o.Partial = &r
	default:
		return false, nil
	}
	return true, nil
}

// searchContext answers a SEARCH (keys nil) or SORT with RFC 5267
// return options: one ESEARCH response, and an untagged NO [NOUPDATE]
// when the session refuses to keep the result updated (§4.3.1).
//
// relevancy: with RFC 6203's RELEVANCY return option: the scores of the
// results returned (PARTIAL's, or all of them), in their order. The
// ADDTO and REMOVEFROM updates of a context carry none (RFC 6203 gives
// them no place).
func (c *Conn) searchContext(tag string, numKind NumKind, keys []SortCriterion, criteria *imap.SearchCriteria, options *imap.SearchOptions, o *ContextOptions, relevancy bool) error {
	sess := c.session.(SessionContext) // contextOptions checked
	// §4.3: "An attempt to use UPDATE where a tag is already in use
	// with a previous searching command that itself used UPDATE SHALL
	// result in the server rejecting the searching command with a BAD
	// response."
	if o.Update && sess.UpdateActive(tag) {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Tag reuse"}
	}
	if !options.ReturnMin && !options.ReturnMax && !options.ReturnAll && !options.ReturnCount && o.Partial == nil && !relevancy {
		options.ReturnAll = true // RFC 4731 §3.1, as for the other SEARCH and SORT
	}
	res, err := sess.SearchContext(&ContextRequest{
		Tag: tag, Kind: numKind, Sort: keys, Criteria: criteria,
		Update: o.Update, Save: options.ReturnSave, UpdateFetch: o.UpdateFetch, Relevancy: relevancy,
	})
	if err != nil {
		return err
	}
	if res == nil {
		return errNoData("SEARCH")
	}
	if res.ModSeqs != nil && len(res.ModSeqs) != len(res.Nums) {
		return errNoData("MODSEQ")
	}
	if relevancy && len(res.Scores) != len(res.Nums) {
		return errNoData("RELEVANCY")
	}
	if err := c.writeContextESearch(tag, numKind, res, options, o, relevancy); err != nil {
		return err
	}
	if o.Update && res.NoUpdate {
		return c.writeNoUpdate(tag)
	}
	return nil
}

// writeContextESearch writes the ESEARCH response of a SEARCH or SORT
// with RFC 5267 return options. MIN and MAX are the first and last
// result (for a SEARCH, whose results are in mailbox order, the lowest
// and highest, RFC 4731 §3.1; for a SORT, RFC 5267 §3.1). PARTIAL gives
// the results at the positions of its range that exist, NIL if none
// does (§4.4). MODSEQ is the highest of the results returned (RFC 7162
// §3.1.10): of all of them with ALL, COUNT or PARTIAL's whole, else of
// MIN and MAX.
func (c *Conn) writeContextESearch(tag string, numKind NumKind, res *ContextResult, options *imap.SearchOptions, o *ContextOptions, relevancy bool) error {
	n := uint32(len(res.Nums))
	var modSeq uint64
	note := func(i uint32) {
		if res.ModSeqs != nil {
			modSeq = max(modSeq, res.ModSeqs[i])
		}
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ESEARCH").SP().Special('(').Atom("TAG").SP().String(tag).Special(')')
	if numKind == NumKindUID {
		enc.SP().Atom("UID")
	}
	if options.ReturnMin && n > 0 {
		enc.SP().Atom("MIN").SP().Number(res.Nums[0])
		note(0)
	}
	if options.ReturnMax && n > 0 {
		enc.SP().Atom("MAX").SP().Number(res.Nums[n-1])
		note(n - 1)
	}
	if options.ReturnAll && n > 0 {
		enc.SP().Atom("ALL").SP().Atom(orderedSet(res.Nums))
		for i := range n {
			note(i)
		}
	}
	if options.ReturnCount {
		enc.SP().Atom("COUNT").SP().Number(n)
		for i := range n {
			note(i)
		}
	}
	scores := res.Scores
	if r := o.Partial; r != nil {
		lo, hi := r.bounds()
		enc.SP().Atom("PARTIAL").SP().Special('(').Number(r.First).Special(':').Number(r.Last).SP()
		if lo > n {
			enc.Atom("NIL")
			scores = nil
		} else {
			hi = min(hi, n)
			enc.Atom(orderedSet(res.Nums[lo-1 : hi]))
			for i := lo - 1; i < hi; i++ {
				note(i)
			}
			if relevancy {
				scores = scores[lo-1 : hi]
			}
		}
		enc.Special(')')
	}
	if relevancy {
		writeScores(enc, scores) // RFC 6203 §4, §6
	}
	if modSeq != 0 {
		enc.SP().Atom("MODSEQ").SP().ModSeq(modSeq)
	}
	return enc.CRLF()
}

// writeNoUpdate writes the untagged NO [NOUPDATE "tag"] of RFC 5267
// §4.3.1: the context of tag is not (or no longer) updated.
func (c *Conn) writeNoUpdate(tag string) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("NO").SP().Special('[').Atom("NOUPDATE").SP().String(tag).Special(']')
	enc.SP().Text("Too many contexts")
	return enc.CRLF()
}

// handleCancelUpdate reads (RFC 5267 §5)
//
//	command-select =/ "CANCELUPDATE" 1*(SP quoted)
func (c *Conn) handleCancelUpdate(dec *imapwire.Decoder) error {
	var tags []string
	for dec.SP() {
		var tag string
		if !dec.Expect(dec.Quoted(&tag), "quoted") {
			return dec.Err()
		}
		// A tag is at most a line long; the number of them is bounded
		// by the line limit too.
		tags = append(tags, tag)
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if len(tags) == 0 {
		return newClientBugError("CANCELUPDATE needs at least one tag")
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	sess, ok := c.session.(SessionContext)
	if !ok || !c.server.options.caps().Has(CapContextSearch) && !c.server.options.caps().Has(CapContextSort) {
		return newClientBugError("Unknown command")
	}
	return sess.CancelUpdate(tags)
}

// writeContextUpdate writes an ESEARCH response with the ADDTO (remove
// false) or REMOVEFROM return data item of the context of tag (RFC 5267
// §4.3.3, §4.3.4).
func (c *Conn) writeContextUpdate(tag string, kind NumKind, remove bool, pairs []ContextPair) error {
	if len(pairs) == 0 {
		return nil
	}
	item := "ADDTO"
	if remove {
		item = "REMOVEFROM"
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ESEARCH").SP().Special('(').Atom("TAG").SP().String(tag).Special(')')
	if kind == NumKindUID {
		enc.SP().Atom("UID")
	}
	enc.SP().Atom(item).SP().Special('(')
	for i, p := range pairs {
		if i > 0 {
			enc.SP()
		}
		enc.Number(p.Pos).SP().Atom(orderedSet(p.Nums))
	}
	enc.Special(')')
	return enc.CRLF()
}

// WriteContextUpdate writes the ADDTO (remove false) or REMOVEFROM
// update of the context of tag (RFC 5267 §4.3). ESEARCH responses may
// be sent at any time (§4.3.2); the session orders them with EXISTS and
// EXPUNGE so that sequence numbers in them are valid (§4.3.3, §4.3.4).
func (w *UpdateWriter) WriteContextUpdate(tag string, kind NumKind, remove bool, pairs []ContextPair) error {
	return w.conn.writeContextUpdate(tag, kind, remove, pairs)
}

// WriteContextUpdate is UpdateWriter.WriteContextUpdate for EXPUNGE: a
// REMOVEFROM of expunged messages comes before their EXPUNGE (RFC 5267
// §4.3.4). CLOSE's writer writes nothing.
func (w *ExpungeWriter) WriteContextUpdate(tag string, kind NumKind, remove bool, pairs []ContextPair) error {
	if w.conn == nil {
		return nil
	}
	return w.conn.writeContextUpdate(tag, kind, remove, pairs)
}

// WriteContextUpdate is UpdateWriter.WriteContextUpdate for MOVE.
func (w *MoveWriter) WriteContextUpdate(tag string, kind NumKind, remove bool, pairs []ContextPair) error {
	return w.conn.writeContextUpdate(tag, kind, remove, pairs)
}

// errPartialAll answers a command with more than one PARTIAL or ALL
// return option (RFC 5267 §4.4).
var errPartialAll = newClientBugError("At most one PARTIAL or ALL return option")
