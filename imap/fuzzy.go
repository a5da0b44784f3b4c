package imap

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/mail"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/internal/fuzzy"
	"github.com/mailyard/mailyard/store"
)

// SEARCH=FUZZY (RFC 6203). The library gives the string keys inside
// FUZZY as fields of their own (imapserver.SearchKeyFuzzy*); compile
// takes them into compiled.fuzzy. How a fuzzy key matches (RFC 6203 §3
// leaves it to the server):
//
//   - FUZZY BODY and FUZZY TEXT: every word of the value (package
//     internal/fuzzy: letters and digits) must match a word of the
//     message's text (BODY: the text parts; TEXT: also the header
//     fields) exactly, as a prefix, or within one or two edits. With a
//     store.FuzzySearcher the backend's index answers (store/postgres
//     by pg_trgm word similarity instead, see its SearchFuzzy); the
//     messages it cannot decide, and every message without one, are
//     read as SEARCH BODY reads them.
//   - FUZZY on a header key (FROM, SUBJECT, HEADER name, ...): the same
//     word matching against the field's decoded values.
//   - FUZZY on any other key (dates, sizes, flags, numbers): matched
//     exactly, as RFC 6203 §5 allows.
//   - A string key with no words (only punctuation, say, or bytes
//     that are not UTF-8) matches no message, the rule of
//     store.FuzzySearcher (whose doc says why: RFC 6203 §3 leaves it to
//     the server, and Dovecot does the same), so the backend is not
//     asked. BODY "" (RFC 9051 §6.4.4, a substring) finds every
//     message; a fuzzy key that means nothing does not select the
//     whole mailbox. Under NOT it matches every message, as NOT of any
//     key that matches none does.
//
// Relevancy (RFC 6203 §4): each fuzzy key that matched scores 1 to 100
// (the backend's score, or fuzzy.Score of the words' best matches: 100
// exact, 80 prefix, 70 one edit, 50 two); a message's score is the mean
// of the keys that made it match, at the top level and in the branches
// of OR that matched (not under NOT), or 100 if none did (FUZZY only
// around keys without strings). SEARCH RETURN (RELEVANCY) gives the
// scores (§4), SORT (RELEVANCY) orders by them, highest first (§6).

// fuzzyKind is what a fuzzy key looks at.
type fuzzyKind int

const (
	fuzzyBody fuzzyKind = iota
	fuzzyText
	fuzzyHeader
)

// fuzzyKey is one string key inside FUZZY.
type fuzzyKey struct {
	kind  fuzzyKind
	name  string // the header field, for fuzzyHeader
	value string
	words []string // fuzzy.Words(value)
	// idx are the positions of words in matcher.fuzzyWords, which a
	// read of the text looks for (BODY and TEXT).
	idx []int
	// hits are the backend's answer (store.FuzzySearcher) by UID, for
	// BODY and TEXT; nil without one (every message is read).
	hits map[uint32]store.FuzzyHit
}

// takeFuzzyKeys moves the fuzzy keys of c.k to c.fuzzy.
func (c *compiled) takeFuzzyKeys() {
	var rest []imap.SearchCriteriaHeaderField
	found := false
	for _, f := range c.k.Header {
		k := &fuzzyKey{value: f.Value}
		switch {
		case f.Key == imapserver.SearchKeyFuzzy:
			found = true // FUZZY around keys without strings: no condition
			continue
		case f.Key == imapserver.SearchKeyFuzzyBody:
			k.kind = fuzzyBody
		case f.Key == imapserver.SearchKeyFuzzyText:
			k.kind = fuzzyText
		case strings.HasPrefix(f.Key, imapserver.SearchKeyFuzzyHeader):
			k.kind, k.name = fuzzyHeader, strings.TrimPrefix(f.Key, imapserver.SearchKeyFuzzyHeader)
		default:
			rest = append(rest, f)
			continue
		}
		found = true
		k.words = fuzzy.Words(f.Value)
		c.fuzzy = append(c.fuzzy, k)
	}
	if found {
		k := *c.k
		k.Header = rest
		c.k = &k
	}
}

// fuzzyKeys returns the fuzzy keys of ck and of the keys under it.
func fuzzyKeys(ck *compiled, out []*fuzzyKey) []*fuzzyKey {
	out = append(out, ck.fuzzy...)
	for _, n := range ck.not {
		out = fuzzyKeys(n, out)
	}
	for _, pair := range ck.or {
		out = fuzzyKeys(pair[1], fuzzyKeys(pair[0], out))
	}
	return out
}

// errTooManyFuzzyWords answers a search whose fuzzy keys have more
// words than fuzzy.MaxWords (RFC 6203 §8: servers MAY limit the
// resources a search uses).
func errTooManyFuzzyWords() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
		Text: "FUZZY keys have more than " + strconv.Itoa(fuzzy.MaxWords) + " words"}
}

// prepareFuzzy readies the fuzzy keys of ck: m learns the words a read
// of a message's text looks for, and each BODY and TEXT key gets the
// backend's hits when it is a store.FuzzySearcher. msgs are then the
// messages that every fuzzy BODY and TEXT key of the top level (which
// all must hold) may hold, by UID, and narrowed is true; narrowed is
// false when there is no such key or no index: every message is a
// candidate.
func (v *view) prepareFuzzy(m *matcher, ck *compiled) (msgs map[uint32]store.Message, narrowed bool, err error) {
	keys := fuzzyKeys(ck, nil)
	words := 0
	pos := make(map[string]int)
	for _, k := range keys {
		words += len(k.words)
		if k.kind == fuzzyHeader {
			continue
		}
		for _, w := range k.words {
			if _, ok := pos[w]; !ok {
				pos[w] = len(m.fuzzyWords)
				m.fuzzyWords = append(m.fuzzyWords, w)
			}
			k.idx = append(k.idx, pos[w])
		}
	}
	if words > fuzzy.MaxWords {
		return nil, false, errTooManyFuzzyWords()
	}
	fs, ok := v.s.srv.opts.Backend.(store.FuzzySearcher)
	if !ok {
		return nil, false, nil
	}
	type query struct {
		kind  fuzzyKind
		value string
	}
	asked := make(map[query]map[uint32]store.FuzzyHit)
	for _, k := range keys {
		if k.kind == fuzzyHeader {
			continue
		}
		if len(k.words) == 0 {
			k.hits = map[uint32]store.FuzzyHit{} // no words: no message
			continue
		}
		q := query{k.kind, k.value}
		if k.hits = asked[q]; k.hits != nil {
			continue
		}
		field := store.TextBody
		if k.kind == fuzzyText {
			field = store.TextAll
		}
		hits, err := fs.SearchFuzzy(v.s.ctx, v.s.account, v.name, []store.TextTerm{{Field: field, Value: k.value}}, nil)
		if err != nil {
			return nil, false, err
		}
		k.hits = make(map[uint32]store.FuzzyHit, len(hits))
		for _, h := range hits {
			k.hits[h.UID] = h
		}
		asked[q] = k.hits
	}
	for _, k := range ck.fuzzy {
		if k.hits == nil {
			continue
		}
		if !narrowed {
			narrowed, msgs = true, make(map[uint32]store.Message, len(k.hits))
			for uid, h := range k.hits {
				msgs[uid] = h.Message
			}
			continue
		}
		for uid := range msgs {
			if _, ok := k.hits[uid]; !ok {
				delete(msgs, uid)
			}
		}
	}
	return msgs, narrowed, nil
}

// byUID returns msgs in UID order.
func byUID(msgs map[uint32]store.Message) []store.Message {
	out := make([]store.Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b store.Message) int { return cmp.Compare(a.UID, b.UID) })
	return out
}

// matchFuzzy reports whether message c matches the fuzzy key k; its
// score is kept in c for relevancy.
func (m *matcher) matchFuzzy(c *candidate, k *fuzzyKey) (bool, error) {
	if s, ok := c.fuzzy[k]; ok {
		return s > 0, nil
	}
	s, err := m.fuzzyScore(c, k)
	if err != nil {
		return false, err
	}
	if c.fuzzy == nil {
		c.fuzzy = make(map[*fuzzyKey]int)
	}
	c.fuzzy[k] = s
	return s > 0, nil
}

// fuzzyScore is the score of c for k, 0 if it does not match.
func (m *matcher) fuzzyScore(c *candidate, k *fuzzyKey) (int, error) {
	if len(k.words) == 0 {
		return 0, nil // no words to find: no match (see the rules above)
	}
	hit, inIndex := k.hits[c.msg.UID]
	var best []fuzzy.Match
	switch {
	case k.kind == fuzzyHeader:
		h, err := m.header(c)
		if err != nil {
			return 0, err
		}
		best = fuzzy.Best(k.words, headerText(h, k.name))
	case k.hits != nil && !inIndex:
		return 0, nil // the index has no such text
	case hit.Sure:
		return hit.Score, nil
	default:
		if c.text == nil {
			if err := m.readText(c); err != nil {
				return 0, err
			}
		}
		best = make([]fuzzy.Match, len(k.words))
		for i, j := range k.idx {
			best[i] = c.text.fuzzyBody[j]
			if k.kind == fuzzyText {
				best[i] = max(best[i], c.text.fuzzyHeader[j])
			}
		}
	}
	if !fuzzy.Matched(best) {
		return 0, nil
	}
	return fuzzy.Score(best), nil
}

// headerText is the decoded values of the fields named key, one a line.
func headerText(h *mail.Header, key string) string {
	var sb strings.Builder
	fields := h.FieldsByKey(key)
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		sb.WriteString(v)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// relevancy is c's score (RFC 6203 §4) for the search m ran, which c
// matched: the mean of the scores of the fuzzy keys that made it match,
// at the top level and in the branches of OR that matched, 100 if none
// did.
func (m *matcher) relevancy(c *candidate) (uint32, error) {
	var scores []int
	if err := m.collectScores(c, m.ck, &scores); err != nil {
		return 0, err
	}
	if len(scores) == 0 {
		return 100, nil
	}
	sum := 0
	for _, s := range scores {
		sum += s
	}
	return uint32(max(1, min(100, (sum+len(scores)/2)/len(scores)))), nil
}

func (m *matcher) collectScores(c *candidate, ck *compiled, out *[]int) error {
	for _, k := range ck.fuzzy {
		if _, err := m.matchFuzzy(c, k); err != nil {
			return err
		}
		*out = append(*out, c.fuzzy[k])
	}
	for _, pair := range ck.or {
		ok, err := m.match(c, pair[0])
		if err != nil {
			return err
		}
		branch := pair[1]
		if ok {
			branch = pair[0]
		}
		if err := m.collectScores(c, branch, out); err != nil {
			return err
		}
	}
	return nil
}

// scoreAll sets the relevancy of every candidate found by m.
func (m *matcher) scoreAll(found []*candidate) error {
	for _, c := range found {
		var err error
		if c.rel, err = m.relevancy(c); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				c.rel = 1 // expunged since it matched: nothing left to score
				continue
			}
			return m.v.s.storeErr("search", err)
		}
	}
	return nil
}

// SearchRelevancy implements imapserver.SessionFuzzy.
func (s *session) SearchRelevancy(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, []uint32, error) {
	defer s.srv.begin()()
	return s.view.searchScored(kind, criteria, options, true)
}

var _ imapserver.SessionFuzzy = (*session)(nil)
