package contact

import (
	"bytes"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mailyard/mailyard/internal/textmatch"
	"github.com/mailyard/mailyard/store"
)

// CannotMatch reports whether the vCard resource data cannot satisfy f
// whatever it parses to, judged from its raw text without parsing it:
// when it says true, Parse(data) either fails or gives a card that
// [Match] rejects, so an addressbook-query can skip the resource. When it
// says false nothing is known and the caller parses and matches.
//
// The argument: go-vcard joins a folded line by dropping the line break
// and the one space or tab after it, and then replaces only the escapes
// "\\", "\n" and "\," in a value. So every property value, read back
// without those three escapes, is a contiguous substring of the data
// with its folds undone (unfold). A text-match whose folded text holds
// none of the characters the escapes produce ("\", newline, ",") can
// therefore be satisfied by some value only if the unfolded data
// contains its text, which textmatch.Matcher.Excludes tests. From there:
// a prop-filter that needs such a text-match and cannot have it fails, and
// the filter's anyof/allof over its prop-filters decides (RFC 6352
// §10.5). Negated text-matches, is-not-defined and param-filters never
// exclude.
func CannotMatch(data []byte, f Filter) bool {
	if len(f.Props) == 0 {
		return false
	}
	text := unfold(data)
	for i := range f.Props {
		out := propCannotMatch(text, &f.Props[i])
		if out == f.AllOf {
			// allof: one impossible prop-filter decides; anyof: one
			// possible one keeps the card.
			return out
		}
	}
	return !f.AllOf
}

// propCannotMatch reports whether no property instance of text can
// satisfy pf (see CannotMatch).
func propCannotMatch(text string, pf *PropFilter) bool {
	if pf.IsNotDefined || len(pf.TextMatches) == 0 {
		return false
	}
	if !pf.AllOf && len(pf.Params) > 0 {
		// anyof: a param-filter alone may satisfy it.
		return false
	}
	for _, tm := range pf.TextMatches {
		out := excludes(tm, text)
		if out && pf.AllOf {
			// allof: every instance needs this text-match.
			return true
		}
		if !out && !pf.AllOf {
			return false
		}
	}
	return !pf.AllOf
}

// excludes is tm.Excludes for a text-match that go-vcard's escapes
// cannot satisfy on their own (see CannotMatch).
func excludes(tm *textmatch.Matcher, text string) bool {
	if strings.ContainsAny(tm.Needle(), "\\\n,") {
		return false
	}
	return tm.Excludes(text)
}

// unfold returns data with every line fold undone the way go-vcard's
// decoder undoes it: a line break (a "\n" and the carriage returns
// before it) followed by a space or a tab is removed together with that
// space or tab.
func unfold(data []byte) string {
	if !bytes.Contains(data, []byte("\n ")) && !bytes.Contains(data, []byte("\n\t")) {
		return string(data)
	}
	b := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		if data[i] == '\n' && i+1 < len(data) && (data[i+1] == ' ' || data[i+1] == '\t') {
			b = bytes.TrimRight(b, "\r")
			i++
			continue
		}
		b = append(b, data[i])
	}
	return string(b)
}

// foldTexts are what a line fold leaves in the raw text (see unfold):
// data holding neither has no fold, and its unfolded text is itself.
var foldTexts = []string{"\n ", "\n\t"}

// ContainsClauses returns the store prefilter of f, CannotMatch's test
// in store.ContainsClause terms, so that the store reads only cards that
// may match: every card that Parse and Match accept satisfies the
// clauses (store.ContainsMatches), and a card that satisfies them is
// still tested by CannotMatch, parsed and matched. Nil when f needs no
// text of the card.
//
// Only cards that Parse accepts can match: UTF-8 (RFC 6350 §3.1)
// without zero bytes, so the store's reading of text up to a zero byte
// loses nothing of them. Each text-match CannotMatch can exclude by
// becomes a clause: the card's raw data contains its folded text (ASCII
// letters without case, textmatch.Matcher.Required) or a line fold (then
// the text may be split by it, and the card is read), or, for
// i;unicode-casemap, holds a multi-byte UTF-8 sequence (NonASCII): case
// folding and NFKD may then make the text out of other characters;
// without one, the card is ASCII and folds as ASCII. (A text holding
// U+FFFD is not used, which also keeps the argument independent of how
// folding treats bytes that are not UTF-8.) The anyof and allof of
// CannotMatch become OR and AND of those clauses. An anyof of prop-filters that
// need several clauses each keeps one clause of each (OR of ANDs,
// weakened: a card that satisfies one prop-filter satisfies its first
// clause), and clauses beyond store.MaxContainsTexts texts are dropped:
// both select more cards, never fewer.
func ContainsClauses(f Filter) []store.ContainsClause {
	var out []store.ContainsClause
	for i := range f.Props {
		cs, always := propClauses(&f.Props[i])
		switch {
		case always && !f.AllOf:
			return nil // this prop-filter may hold for any card
		case always:
		case f.AllOf || i == 0:
			out = append(out, cs...)
		default:
			out = []store.ContainsClause{orClauses(out[0], cs[0])}
		}
	}
	n := 0
	for i, c := range out {
		if n += len(c.Any); n > store.MaxContainsTexts {
			return out[:i]
		}
	}
	return out
}

// propClauses is the prefilter of one prop-filter: clauses that all
// hold for any card propCannotMatch keeps, or always when there are
// none.
func propClauses(pf *PropFilter) (cs []store.ContainsClause, always bool) {
	if pf.IsNotDefined || len(pf.TextMatches) == 0 || (!pf.AllOf && len(pf.Params) > 0) {
		return nil, true
	}
	for _, tm := range pf.TextMatches {
		c, ok := textClause(tm)
		switch {
		case !ok && !pf.AllOf:
			return nil, true
		case !ok:
		case pf.AllOf || len(cs) == 0:
			cs = append(cs, c)
		default:
			cs[0] = orClauses(cs[0], c)
		}
	}
	return cs, len(cs) == 0
}

// textClause is the clause of one text-match, ok false when excludes
// could never exclude by it.
func textClause(tm *textmatch.Matcher) (store.ContainsClause, bool) {
	needle, nonASCII, ok := tm.Required()
	if !ok || len(needle) > store.MaxContainsTextLen || strings.ContainsAny(needle, "\\\n,"+string(utf8.RuneError)) {
		return store.ContainsClause{}, false
	}
	return store.ContainsClause{Any: append([]string{needle}, foldTexts...), NonASCII: nonASCII}, true
}

// orClauses is one clause satisfied when a or b is.
func orClauses(a, b store.ContainsClause) store.ContainsClause {
	out := store.ContainsClause{Any: slices.Clone(a.Any), NonASCII: a.NonASCII || b.NonASCII}
	for _, s := range b.Any {
		if !slices.Contains(out.Any, s) {
			out.Any = append(out.Any, s)
		}
	}
	return out
}
