package imap

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/internal/fuzzy"
	"github.com/mailyard/mailyard/internal/msgheader"
	"github.com/mailyard/mailyard/internal/msgtext"
	"github.com/mailyard/mailyard/store"
)

// search implements SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH
// results (RFC 4731) and SEARCHRES (RFC 5182). The library has parsed the
// criteria and checked the charset (US-ASCII and UTF-8; anything else is
// NO [BADCHARSET], RFC 9051 §6.4.4).
func (v *view) search(kind imapserver.NumKind, c *imap.SearchCriteria, o *imap.SearchOptions) (*imap.SearchData, error) {
	data, _, err := v.searchScored(kind, c, o, false)
	return data, err
}

// searchScored is search; scored: with the relevancy score of each
// message found (RFC 6203 §4, fuzzy.go), in the order of data.All.
func (v *view) searchScored(kind imapserver.NumKind, c *imap.SearchCriteria, o *imap.SearchOptions, scored bool) (*imap.SearchData, []uint32, error) {
	found, m, err := v.findFor(c, true)
	if err != nil {
		return nil, nil, err
	}
	var scores []uint32
	if scored {
		if err := m.scoreAll(found); err != nil {
			return nil, nil, err
		}
		for _, cand := range found {
			scores = append(scores, cand.rel)
		}
	}
	var (
		data   imap.SearchData
		seqSet imap.SeqSet
		uidSet imap.UIDSet
		saved  []uint32
		// MODSEQs of the MIN and MAX messages.
		minModSeq, maxModSeq uint64
	)
	for _, cand := range found {
		msg, seq := cand.msg, cand.seq
		saved = append(saved, msg.UID)
		num := seq
		if kind == imapserver.NumKindUID {
			num = msg.UID
			uidSet.AddNum(imap.UID(num))
		} else {
			seqSet.AddNum(num)
		}
		if data.Min == 0 || num < data.Min {
			data.Min, minModSeq = num, msg.ModSeq
		}
		if num > data.Max {
			data.Max, maxModSeq = num, msg.ModSeq
		}
		data.Count++
		data.ModSeq = max(data.ModSeq, msg.ModSeq)
	}
	switch {
	case !imapserver.HasModSeqKey(c):
		// RFC 7162 §3.1.6: the highest MODSEQ of the results is given
		// only for a search with the MODSEQ key.
		data.ModSeq = 0
	case !o.ReturnAll && !o.ReturnCount && (o.ReturnMin || o.ReturnMax):
		// RFC 7162 §3.1.10: of the messages returned, when only MIN
		// and/or MAX are.
		data.ModSeq = 0
		if o.ReturnMin {
			data.ModSeq = minModSeq
		}
		if o.ReturnMax {
			data.ModSeq = max(data.ModSeq, maxModSeq)
		}
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet
	} else {
		data.All = seqSet
	}
	if o.ReturnSave {
		v.searchRes = saved
		v.contextsMark = contextMark{} // "$" changed: contexts are evaluated again
	}
	return &data, scores, nil
}

// find returns the messages of the view that match c, in sequence
// order, with what was read of them, and the matcher that read it.
func (v *view) find(c *imap.SearchCriteria) ([]*candidate, *matcher, error) {
	return v.findFor(c, false)
}

// findFor is find; flagsOnly: the caller reads nothing of the found
// messages but their UIDs, flags and sequence numbers (SEARCH without
// MODSEQ), so a current view may list them (see readpath.go). SORT and
// THREAD read dates, sizes and headers.
func (v *view) findFor(c *imap.SearchCriteria, flagsOnly bool) ([]*candidate, *matcher, error) {
	s := v.s
	ck, err := v.compile(c, 0)
	if err != nil {
		return nil, nil, err
	}
	m := &matcher{v: v, ck: ck, maxBytes: s.srv.opts.MaxSearchBytes, patterns: textPatterns(ck, make(map[string]bool))}
	if len(m.patterns) > maxTextPatterns {
		return nil, nil, errTooManyTextPatterns()
	}
	// With a fuzzy index (fuzzy.go) and a full-text index, only the
	// messages they give are read.
	fuzzyMsgs, fuzzyNarrowed, err := v.prepareFuzzy(m, ck)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		var ie *imap.Error
		if errors.As(err, &ie) {
			return nil, nil, err
		}
		return nil, nil, s.storeErr("search", err)
	}
	var hits []store.TextHit
	narrowed, decides := false, false
	if err == nil {
		hits, narrowed, decides, err = v.textCandidates(c)
	}
	var msgs []store.Message
	switch {
	case err == nil && !narrowed && fuzzyNarrowed:
		msgs = byUID(fuzzyMsgs)
	case err == nil && !narrowed && flagsOnly && flagsOnlySearch(c) && v.current():
		msgs = v.viewMessages() // see readpath.go
	case err == nil && !narrowed:
		msgs, err = s.srv.opts.Backend.ListMessages(s.ctx, s.account, v.name, nil)
	}
	sure := make(map[uint32]bool)
	for _, h := range hits {
		if _, ok := fuzzyMsgs[h.UID]; fuzzyNarrowed && !ok {
			continue
		}
		msgs = append(msgs, h.Message)
		if h.Sure && decides {
			sure[h.UID] = true
		}
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, nil, s.storeErr("search", err)
	}
	// ErrNotFound: the selected mailbox was deleted under the session.
	// Its messages count as expunged (RFC 2180 §3, as in fetch), and an
	// expunged message is left out of the results (below).
	var found []*candidate
	for _, msg := range msgs {
		seq := v.seqOf(msg.UID)
		if seq == 0 || v.gone[msg.UID] {
			continue // not yet announced, or expunged
		}
		cand := &candidate{msg: msg, seq: seq}
		if sure[msg.UID] && msg.Size <= m.maxBytes {
			// The index read all the text a scan reads, and it
			// holds every BODY and TEXT key of ck.
			cand.textKnown = ck
		}
		ok, err := m.match(cand, ck)
		if errors.Is(err, store.ErrNotFound) {
			// Expunged (alone or with its mailbox) since the listing
			// above, before its text was read: it is not there to
			// match. RFC 2180 §4.3 lets the server leave expunged
			// messages out of the results or include them; leaving
			// them out answers what the mailbox holds.
			continue
		}
		if err != nil {
			return nil, nil, s.storeErr("search", err)
		}
		if ok {
			found = append(found, cand)
		}
	}
	return found, m, nil
}

// textCandidates narrows a search by the backend's full-text index
// (store.TextSearcher), when it has one: the messages that may hold
// every BODY and TEXT pattern of the top level of c (which all must
// hold; those under NOT and OR are not used), a superset of the
// matches. narrowed is false without an index or without a pattern long
// enough for it: every message is a candidate. decides reports whether
// the index's Sure messages hold every BODY and TEXT key of the top
// level: each was given to it, and none has a line feed (the index
// joins a message's texts with one, where the scan keeps them apart).
// The other candidates the matcher checks against the text.
func (v *view) textCandidates(c *imap.SearchCriteria) (hits []store.TextHit, narrowed, decides bool, err error) {
	ts, ok := v.s.srv.opts.Backend.(store.TextSearcher)
	if !ok {
		return hits, false, false, nil
	}
	var terms []store.TextTerm
	decides = true
	add := func(field store.TextField, ps []string) {
		for _, p := range ps {
			if utf8.RuneCountInString(p) < store.MinTextTerm || strings.ContainsRune(p, '\n') {
				decides = false
				continue
			}
			terms = append(terms, store.TextTerm{Field: field, Value: p})
		}
	}
	add(store.TextBody, c.Body)
	add(store.TextAll, c.Text)
	if len(terms) == 0 {
		return hits, false, false, nil
	}
	hits, err = ts.SearchText(v.s.ctx, v.s.account, v.name, terms, nil)
	return hits, err == nil, decides && err == nil, err
}

// candidate is one message being matched; its header and text are read
// once, on first need.
type candidate struct {
	msg store.Message
	seq uint32

	header *mail.Header
	text   *textHits // read on first need
	// textKnown is the key whose BODY and TEXT patterns the full-text
	// index found in the message, which need not be read for them.
	textKnown *compiled
	// fuzzy holds the score of each fuzzy key matched against the
	// message, 0 for no match (fuzzy.go); rel is its relevancy, once
	// scoreAll set it.
	fuzzy map[*fuzzyKey]int
	rel   uint32
}

// matcher evaluates search keys. Only what a key needs is read: flags,
// dates and sizes come from the index; HEADER, FROM, SUBJECT, ... and
// SENT* read the header block; BODY and TEXT read at most maxBytes of the
// message.
type matcher struct {
	v        *view
	ck       *compiled // the search
	maxBytes int64
	patterns []string // every BODY and TEXT pattern, lower-cased
	// fuzzyWords are the words of every fuzzy BODY and TEXT key, which
	// a read of the text looks for (fuzzy.go).
	fuzzyWords []string
}

// compiled is a search key with its message sets resolved once, so that
// matching each message does not resolve them again.
type compiled struct {
	k    *imap.SearchCriteria
	sets []uidRanges // the UIDs each SeqNum and UID set selects
	// OLDER and YOUNGER (RFC 5032, within.go): the INTERNALDATE must be
	// at or before olderBy, after youngerThan.
	olderBy, youngerThan time.Time
	ext                  extKeys     // SAVEDATE and OBJECTID, msgext.go
	fuzzy                []*fuzzyKey // FUZZY's string keys, fuzzy.go
	not                  []*compiled
	or                   [][2]*compiled
}

// compile resolves the message sets of k against the view: sequence
// numbers out of range select nothing (SEARCH is not failed for them),
// "$" is the saved result (RFC 5182).
func (v *view) compile(k *imap.SearchCriteria, depth int) (*compiled, error) {
	return v.compileSets(k, depth, make(map[string]uidRanges))
}

// compileSets is compile; sets holds the sets resolved so far, by their
// text, so that a set repeated ("$" a thousand times) is resolved once.
func (v *view) compileSets(k *imap.SearchCriteria, depth int, sets map[string]uidRanges) (*compiled, error) {
	if depth > maxSearchDepth {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug,
			Text: "Search keys nested too deeply"}
	}
	c := &compiled{k: k}
	if err := c.within(time.Now()); err != nil {
		return nil, err
	}
	if err := c.takeExtKeys(); err != nil {
		return nil, err
	}
	c.takeFuzzyKeys()
	add := func(set imap.NumSet) {
		key := set.String()
		sel, ok := sets[key]
		if !ok {
			sel = v.uidRanges(set)
			sets[key] = sel
		}
		c.sets = append(c.sets, sel)
	}
	for _, set := range k.SeqNum {
		add(set)
	}
	for _, set := range k.UID {
		add(set)
	}
	for i := range k.Not {
		n, err := v.compileSets(&k.Not[i], depth+1, sets)
		if err != nil {
			return nil, err
		}
		c.not = append(c.not, n)
	}
	for i := range k.Or {
		a, err := v.compileSets(&k.Or[i][0], depth+1, sets)
		if err != nil {
			return nil, err
		}
		b, err := v.compileSets(&k.Or[i][1], depth+1, sets)
		if err != nil {
			return nil, err
		}
		c.or = append(c.or, [2]*compiled{a, b})
	}
	return c, nil
}

// maxTextPatterns bounds the distinct BODY and TEXT strings of one
// search. Each is looked for in every window of every message read, so
// a search costs the text read times their number: 676 of them under
// OR (20 KiB) took 12.8 s of CPU against 15 MB of mail where one took
// 0.02 s, and 50 KiB hold thousands.
const maxTextPatterns = 32

// errTooManyTextPatterns answers a search with more than
// maxTextPatterns strings to find in the text (RFC 5530 §3: LIMIT, a
// limit of the server; RFC 9051 §6.4.4 lets it refuse a search it
// cannot do).
func errTooManyTextPatterns() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
		Text: fmt.Sprintf("SEARCH has more than %d BODY and TEXT strings", maxTextPatterns)}
}

// uidRange is the UIDs lo to hi of the view.
type uidRange struct{ lo, hi uint32 }

// uidRanges is a message set of SEARCH as UID ranges, sorted and
// disjoint. Its size is that of the set as the client wrote it, not
// that of the mailbox: a UID map per set let one SEARCH of 12,500 "1:*"
// keys (50 KiB) hold 60 MB against 300 messages, and gigabytes against
// a large mailbox.
type uidRanges []uidRange

func (rs uidRanges) contains(uid uint32) bool {
	_, ok := slices.BinarySearchFunc(rs, uid, func(r uidRange, uid uint32) int {
		switch {
		case r.hi < uid:
			return -1
		case r.lo > uid:
			return 1
		}
		return 0
	})
	return ok
}

// uidRanges resolves a SEARCH message set against the view as resolve
// does (a sequence number out of range makes the set select nothing,
// "$" is the saved result), without listing its messages. The ranges
// speak for the view's UIDs only: the messages searched are the view's.
func (v *view) uidRanges(set imap.NumSet) uidRanges {
	var rs uidRanges
	if imap.IsSearchRes(set) {
		for _, uid := range v.searchRes {
			rs = append(rs, uidRange{uid, uid})
		}
		return mergeUIDRanges(rs)
	}
	n := uint32(len(v.uids))
	switch set := set.(type) {
	case imap.SeqSet:
		for _, r := range set {
			star := r.Start == 0 || r.Stop == 0
			lo, hi := starRange(r.Start, r.Stop, n)
			if hi > n && !star || lo == 0 && !star {
				return nil // as resolve's error: nothing selected
			}
			lo, hi = max(lo, 1), min(hi, n)
			if lo <= hi {
				rs = append(rs, uidRange{v.uids[lo-1], v.uids[hi-1]})
			}
		}
	case imap.UIDSet:
		last := v.lastUID()
		for _, r := range set {
			lo, hi := starRange(uint32(r.Start), uint32(r.Stop), last)
			rs = append(rs, uidRange{lo, hi})
		}
	}
	return mergeUIDRanges(rs)
}

// mergeUIDRanges sorts rs and joins the ranges that overlap or touch.
func mergeUIDRanges(rs uidRanges) uidRanges {
	slices.SortFunc(rs, func(a, b uidRange) int { return cmp.Compare(a.lo, b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if l := len(out) - 1; l >= 0 && (r.lo <= out[l].hi || out[l].hi != math.MaxUint32 && r.lo == out[l].hi+1) {
			out[l].hi = max(out[l].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// maxSearchDepth bounds NOT/OR nesting; the library's 50 KiB command
// limit allows thousands of levels otherwise.
const maxSearchDepth = 100

func (m *matcher) match(c *candidate, ck *compiled) (bool, error) {
	k := ck.k
	for _, sel := range ck.sets {
		if !sel.contains(c.msg.UID) {
			return false, nil
		}
	}
	if !matchDate(c.msg.InternalDate, k.Since, k.Before) || !ck.matchWithin(c.msg.InternalDate) || !ck.matchExt(m.v.s.account, c.msg) {
		return false, nil
	}
	for _, f := range k.Flag {
		if !m.hasFlag(c, f) {
			return false, nil
		}
	}
	for _, f := range k.NotFlag {
		if m.hasFlag(c, f) {
			return false, nil
		}
	}
	if k.Larger > 0 && c.msg.Size <= k.Larger {
		return false, nil
	}
	if k.Smaller > 0 && c.msg.Size >= k.Smaller {
		return false, nil
	}
	// RFC 7162 §3.1.5: MODSEQ n matches a MODSEQ of at least n. We keep
	// one MODSEQ per message, so the entry name and type are ignored as
	// §3.1.5 allows for servers that do not store them per metadata item.
	if k.ModSeq != nil && c.msg.ModSeq < k.ModSeq.ModSeq {
		return false, nil
	}
	if len(k.Header) > 0 || !k.SentSince.IsZero() || !k.SentBefore.IsZero() {
		h, err := m.header(c)
		if err != nil {
			return false, err
		}
		for _, f := range k.Header {
			if !matchHeaderField(h, f.Key, f.Value) {
				return false, nil
			}
		}
		if !k.SentSince.IsZero() || !k.SentBefore.IsZero() {
			// RFC 9051 §6.4.4: SENT* compare the Date header's date,
			// ignoring time and zone; no usable Date matches nothing.
			t, err := h.Date()
			if err != nil || t.IsZero() || !matchDate(t, k.SentSince, k.SentBefore) {
				return false, nil
			}
		}
	}
	for _, fk := range ck.fuzzy {
		ok, err := m.matchFuzzy(c, fk)
		if err != nil || !ok {
			return false, err
		}
	}
	if c.textKnown == ck {
		k = &imap.SearchCriteria{} // no BODY and TEXT keys left
	}
	for _, p := range k.Body {
		ok, err := m.containsText(c, p, false)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, p := range k.Text {
		ok, err := m.containsText(c, p, true)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, n := range ck.not {
		ok, err := m.match(c, n)
		if err != nil || ok {
			return false, err
		}
	}
	for _, pair := range ck.or {
		ok, err := m.match(c, pair[0])
		if err != nil {
			return false, err
		}
		if !ok {
			if ok, err = m.match(c, pair[1]); err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

func (m *matcher) hasFlag(c *candidate, f imap.Flag) bool {
	if strings.EqualFold(string(f), `\Recent`) {
		return m.v.recent[c.msg.UID]
	}
	// The view's flags are what the client was told; the index row may
	// be newer, and RFC 9051 lets either be used. The index is the truth.
	return hasFlag(c.msg.Flags, string(f))
}

func (m *matcher) open(c *candidate) (io.ReadCloser, error) {
	s := m.v.s
	return s.srv.opts.Backend.OpenBody(s.ctx, s.account, m.v.name, c.msg.UID)
}

func (m *matcher) header(c *candidate) (*mail.Header, error) {
	if c.header != nil {
		return c.header, nil
	}
	hdr, err := m.v.headerBlock(c.msg.UID, func() (io.ReadCloser, error) { return m.open(c) })
	if err != nil {
		return nil, err
	}
	// Lines of a malformed header that are not fields are skipped (RFC
	// 9051 §7.5.2 asks for a best effort on malformed messages).
	h := msgheader.ParseHeader(hdr)
	c.header = &mail.Header{Header: gomessage.Header{Header: h}}
	return c.header, nil
}

// containsText reports whether the decoded text of the message contains
// pattern, case-insensitively. BODY looks at the text parts only; TEXT
// also at the header fields (RFC 9051 §6.4.4).
func (m *matcher) containsText(c *candidate, pattern string, withHeader bool) (bool, error) {
	if c.text == nil {
		if err := m.readText(c); err != nil {
			return false, err
		}
	}
	p := strings.ToLower(pattern)
	if p == "" {
		return true, nil // every text contains it
	}
	if withHeader && c.text.inHeader[p] {
		return true, nil
	}
	return c.text.inBody[p], nil
}

// textPatterns returns the lower-cased BODY and TEXT patterns of ck and
// of the keys under it, each once.
func textPatterns(ck *compiled, seen map[string]bool) []string {
	var out []string
	add := func(ps []string) {
		for _, p := range ps {
			if p = strings.ToLower(p); p != "" && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	add(ck.k.Body)
	add(ck.k.Text)
	for _, n := range ck.not {
		out = append(out, textPatterns(n, seen)...)
	}
	for _, pair := range ck.or {
		out = append(out, textPatterns(pair[0], seen)...)
		out = append(out, textPatterns(pair[1], seen)...)
	}
	return out
}

// readText reads at most maxBytes of the message once and notes which of
// the search's patterns its lower-cased decoded text (msgtext.Read)
// contains: in the header fields, or in the text (every text/* part,
// and the headers and text of nested messages). The text streams
// through a window (textScanner); it is never held whole.
func (m *matcher) readText(c *candidate) error {
	c.text = &textHits{inHeader: make(map[string]bool), inBody: make(map[string]bool),
		fuzzyHeader: make([]fuzzy.Match, len(m.fuzzyWords)), fuzzyBody: make([]fuzzy.Match, len(m.fuzzyWords))}
	r, err := m.open(c)
	if err != nil {
		return err
	}
	defer r.Close()
	// Header blocks are read within imapserver's bounds, as for FETCH.
	br := bufio.NewReader(io.LimitReader(r, m.maxBytes))
	hs := newTextScanner(m.patterns, c.text.inHeader)
	defer hs.Close()
	body := newTextScanner(m.patterns, c.text.inBody)
	defer body.Close()
	if len(m.fuzzyWords) == 0 {
		return msgtext.Read(br, hs, body)
	}
	fh, fb := fuzzy.NewScanner(m.fuzzyWords), fuzzy.NewScanner(m.fuzzyWords)
	err = msgtext.Read(br, bothSinks{hs, fh}, bothSinks{body, fb})
	fh.Close()
	fb.Close()
	c.text.fuzzyHeader, c.text.fuzzyBody = fh.Best(), fb.Best()
	return err
}

// textHits records which patterns a message's text contains, and the
// best match of each of the matcher's fuzzyWords in its header fields
// and its text.
type textHits struct {
	inHeader, inBody       map[string]bool
	fuzzyHeader, fuzzyBody []fuzzy.Match
}

// bothSinks writes a text to two sinks.
type bothSinks struct {
	a, b msgtext.Sink
}

func (s bothSinks) Write(p []byte) (int, error) {
	s.a.Write(p)
	return s.b.Write(p)
}

func (s bothSinks) Next() {
	s.a.Next()
	s.b.Next()
}

// textScanner is an io.Writer that lower-cases what is written to it and
// marks in hits each pattern found in it, keeping only a window: the
// bytes not yet lower-cased (a UTF-8 sequence cut by a write) and, of the
// lower-cased text, enough to find a pattern that straddles two writes.
// Next starts a new text: no match spans two texts.
type textScanner struct {
	patterns []string
	hits     map[string]bool
	longest  int
	pending  []byte // raw bytes of an incomplete UTF-8 sequence
	window   []byte // lower-cased text: the tail kept, then the new chunk
}

func newTextScanner(patterns []string, hits map[string]bool) *textScanner {
	s := &textScanner{patterns: patterns, hits: hits}
	for _, p := range patterns {
		s.longest = max(s.longest, len(p))
	}
	return s
}

// textChunk bounds how much is lower-cased and searched at once.
const textChunk = 32 << 10

func (s *textScanner) Write(p []byte) (int, error) {
	n := len(p)
	if len(s.patterns) == 0 {
		return n, nil
	}
	for len(p) > 0 {
		k := min(len(p), textChunk)
		chunk := append(s.pending, p[:k]...)
		p = p[k:]
		// Hold back an incomplete UTF-8 sequence at the end.
		cut := len(chunk)
		for i := len(chunk) - 1; i >= 0 && i >= len(chunk)-utf8.UTFMax; i-- {
			if utf8.RuneStart(chunk[i]) {
				if !utf8.FullRune(chunk[i:]) {
					cut = i
				}
				break
			}
		}
		s.search(chunk[:cut])
		// chunk's array is pending's: move the held-back bytes to its
		// start, to be reused by the next write.
		s.pending = chunk[:copy(chunk, chunk[cut:])]
	}
	return n, nil
}

// search lower-cases raw as strings.ToLower would (invalid UTF-8 becomes
// U+FFFD) onto the window, and looks for the patterns there.
func (s *textScanner) search(raw []byte) {
	for len(raw) > 0 {
		if c := raw[0]; c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			s.window = append(s.window, c)
			raw = raw[1:]
			continue
		}
		r, size := utf8.DecodeRune(raw)
		s.window = utf8.AppendRune(s.window, unicode.ToLower(r))
		raw = raw[size:]
	}
	for _, pat := range s.patterns {
		if !s.hits[pat] && bytes.Contains(s.window, []byte(pat)) {
			s.hits[pat] = true
		}
	}
	if keep := s.longest - 1; len(s.window) > keep {
		s.window = s.window[:copy(s.window, s.window[len(s.window)-keep:])]
	}
}

// Next ends the current text (searching what is held back) and starts
// another.
func (s *textScanner) Next() {
	if len(s.pending) > 0 {
		s.search(s.pending)
		s.pending = s.pending[:0]
	}
	s.window = s.window[:0]
}

// Close ends the last text.
func (s *textScanner) Close() error {
	s.Next()
	return nil
}

// matchHeaderField implements HEADER, FROM, TO, CC, BCC and SUBJECT: a
// case-insensitive substring of a field's decoded value; an empty
// value matches every message that has the field (RFC 9051 §6.4.4).
// FROM, TO, CC and BCC also match the envelope's address field
// (matchAddresses); the library gives HEADER FROM the same key as
// FROM, so both ways count.
func matchHeaderField(h *mail.Header, key, value string) bool {
	fields := h.FieldsByKey(key)
	if value == "" {
		return fields.Len() > 0
	}
	p := strings.ToLower(value)
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		if strings.Contains(strings.ToLower(v), p) {
			return true
		}
	}
	switch strings.ToLower(key) {
	case "from", "to", "cc", "bcc":
		// The envelope is built from the field's first occurrence.
		return matchAddresses(imapserver.ParseAddressList(h.Get(key)), p)
	}
	return false
}

// matchAddresses reports whether the lower-case pattern p is a substring
// of one of the addresses as the envelope gives them (RFC 9051 §6.4.4:
// "the envelope structure's FROM field"), rendered as
// "Display Name <mailbox@host>" with the name decoded, or the group's
// name for a group start. Comments and white space inside the header's
// addr-spec are thus not in the way.
func matchAddresses(l []imapserver.Address, p string) bool {
	dec := mime.WordDecoder{CharsetReader: gomessage.CharsetReader}
	for _, a := range l {
		name := a.Name
		if a.IsGroupStart() {
			name = a.Mailbox
		}
		if name != "" {
			if d, err := dec.DecodeHeader(name); err == nil {
				name = d
			}
		}
		s := a.Addr()
		switch {
		case name != "" && s != "":
			s = name + " <" + s + ">"
		case name != "":
			s = name
		}
		if s != "" && strings.Contains(strings.ToLower(s), p) {
			return true
		}
	}
	return false
}

// matchDate compares dates only, ignoring time and time zone (RFC 9051
// §6.4.4): t's calendar date in its own zone against since (inclusive)
// and before (exclusive), which the library gives as midnight UTC.
func matchDate(t, since, before time.Time) bool {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && d.Before(since) {
		return false
	}
	if !before.IsZero() && !d.Before(before) {
		return false
	}
	return true
}
