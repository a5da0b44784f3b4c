package imapserver

// mailyard: this file is ours, not upstream's.

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// mailyard: SEARCH=FUZZY (RFC 6203).
//
//	search-key         =/ "FUZZY" SP search-key
//	search-return-opt  =/ "RELEVANCY"
//	search-return-data =/ "RELEVANCY" SP score-list
//	score-list         =  "(" [score *(SP score)] ")"
//	score              =  1*3DIGIT ;; 1 <= n <= 100
//	sort-key           =/ "RELEVANCY"

// CapSearchFuzzy is the capability of RFC 6203 §7.
const CapSearchFuzzy imap.Cap = "SEARCH=FUZZY"

// SortRelevancy is the sort key of RFC 6203 §6: the highest score first.
const SortRelevancy SortKey = "RELEVANCY"

// The header field names under which the string keys inside FUZZY are
// given to the session in imap.SearchCriteria.Header (whose type has no
// field for them), as within.go does for OLDER and YOUNGER: BODY and
// TEXT under SearchKeyFuzzyBody and SearchKeyFuzzyText, a header key
// (FROM, SUBJECT, HEADER name, ...) under SearchKeyFuzzyHeader followed
// by the field's name, each with its value. SearchKeyFuzzy, with an
// empty value, marks a FUZZY key around keys without strings (RFC 6203
// §5: matched exactly); it selects every message. No HEADER key can
// name them: an IMAP string holds no NUL (RFC 9051 §4.3).
const (
	SearchKeyFuzzy       = "\x00FUZZY"
	SearchKeyFuzzyBody   = "\x00FUZZY BODY"
	SearchKeyFuzzyText   = "\x00FUZZY TEXT"
	SearchKeyFuzzyHeader = "\x00FUZZY HEADER "
)

// readFuzzy reads the search key after FUZZY (RFC 6203 §3) and adds it
// to criteria with its string keys made fuzzy; its other keys (dates,
// sizes, flags, numbers) are matched exactly, as RFC 6203 §5 allows.
func readFuzzy(criteria *imap.SearchCriteria, dec *imapwire.Decoder) error {
	if !dec.ExpectSP() {
		return dec.Err()
	}
	var inner imap.SearchCriteria
	if err := dec.Nest(func() error { return readSearchKey(&inner, dec) }); err != nil {
		return err
	}
	fuzzify(&inner)
	inner.Header = append(inner.Header, imap.SearchCriteriaHeaderField{Key: SearchKeyFuzzy})
	modSeq := inner.ModSeq // And does not carry it
	andCriteria(criteria, &inner)
	if modSeq != nil && (criteria.ModSeq == nil || modSeq.ModSeq > criteria.ModSeq.ModSeq) {
		criteria.ModSeq = modSeq
	}
	return nil
}

// andCriteria is criteria.And(other), whose SMALLER it keeps:
// imap.SearchCriteria.And sets SMALLER to other's even when other has
// none (0), which dropped "SMALLER n" before a LARGER or FUZZY key.
func andCriteria(criteria, other *imap.SearchCriteria) {
	smaller := criteria.Smaller
	criteria.And(other)
	switch {
	case smaller == 0:
		criteria.Smaller = other.Smaller
	case other.Smaller != 0:
		criteria.Smaller = min(smaller, other.Smaller)
	default:
		criteria.Smaller = smaller
	}
}

// fuzzify turns the BODY, TEXT and header keys of c, at every level of
// NOT and OR, into their fuzzy forms. Keys already given under a name
// of their own (OLDER, SAVEDBEFORE, EMAILID, a fuzzy key) stay.
func fuzzify(c *imap.SearchCriteria) {
	var hdr []imap.SearchCriteriaHeaderField
	for _, f := range c.Header {
		if strings.HasPrefix(f.Key, "\x00") {
			hdr = append(hdr, f)
			continue
		}
		hdr = append(hdr, imap.SearchCriteriaHeaderField{Key: SearchKeyFuzzyHeader + f.Key, Value: f.Value})
	}
	for _, b := range c.Body {
		hdr = append(hdr, imap.SearchCriteriaHeaderField{Key: SearchKeyFuzzyBody, Value: b})
	}
	for _, t := range c.Text {
		hdr = append(hdr, imap.SearchCriteriaHeaderField{Key: SearchKeyFuzzyText, Value: t})
	}
	c.Header, c.Body, c.Text = hdr, nil, nil
	for i := range c.Not {
		fuzzify(&c.Not[i])
	}
	for i := range c.Or {
		fuzzify(&c.Or[i][0])
		fuzzify(&c.Or[i][1])
	}
}

// HasFuzzyKey reports whether the FUZZY key occurs anywhere in c.
func HasFuzzyKey(c *imap.SearchCriteria) bool {
	for _, f := range c.Header {
		if strings.HasPrefix(f.Key, SearchKeyFuzzy) {
			return true
		}
	}
	for i := range c.Not {
		if HasFuzzyKey(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if HasFuzzyKey(&c.Or[i][0]) || HasFuzzyKey(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// SessionFuzzy is a session that supports SEARCH=FUZZY (RFC 6203): the
// FUZZY key in every search (given as the SearchKeyFuzzy fields), and
// the relevancy scores of the RELEVANCY return option (§4) and sort key
// (§6). Its Sort fills SortData.Scores when the criteria have a FUZZY
// key.
type SessionFuzzy interface {
	Session

	// SearchRelevancy is Search, and the relevancy score (1 to 100,
	// RFC 6203 §4) of each message data.All holds, in the ascending
	// order of their numbers.
	SearchRelevancy(kind NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, []uint32, error)
}

// errRelevancyWithoutFuzzy answers RELEVANCY given without a FUZZY key,
// which RFC 6203 §4 and §6 forbid ("MUST NOT be used unless a FUZZY
// search key is also given").
func errRelevancyWithoutFuzzy() error {
	return newClientBugError("RELEVANCY needs a FUZZY search key (RFC 6203 §4)")
}

// checkRelevancy checks RELEVANCY, as a return option (rel) or a sort
// key, against the criteria and the session, before anything runs.
func (c *Conn) checkRelevancy(rel bool, keys []SortCriterion, criteria *imap.SearchCriteria) error {
	sortRel := false
	for _, k := range keys {
		if k.Key == SortRelevancy {
			sortRel = true
		}
	}
	if !rel && !sortRel {
		return nil
	}
	if _, ok := c.session.(SessionFuzzy); !ok {
		return newClientBugError("RELEVANCY is not supported")
	}
	if !HasFuzzyKey(criteria) {
		return errRelevancyWithoutFuzzy()
	}
	return nil
}

// writeScores writes the RELEVANCY return data (RFC 6203 §4).
func writeScores(enc *responseEncoder, scores []uint32) {
	enc.SP().Atom("RELEVANCY").SP().Special('(')
	for i, s := range scores {
		if i > 0 {
			enc.SP()
		}
		enc.Number(s)
	}
	enc.Special(')')
}
