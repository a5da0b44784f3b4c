// Package textmatch evaluates the text-match element of CalDAV and
// CardDAV queries: a substring or anchored comparison of a property or
// parameter value under a named collation.
//
// Collations (RFC 4790 §9 and RFC 5051):
//
//   - "i;octet": bytes compared as they are;
//   - "i;ascii-casemap" (the default, RFC 4791 §7.5.1, RFC 6352 §8.3):
//     ASCII letters compared without case, other bytes as they are;
//   - "i;unicode-casemap" (RFC 6352 §8.3, a CardDAV server MUST support
//     it): both strings case-folded and put in NFKD form (RFC 5051 §2)
//     before an octet comparison.
//
// An unknown collation is an error: the server answers it with the
// CALDAV:supported-collation or CARDDAV:supported-collation precondition
// (RFC 4791 §7.5.1, RFC 6352 §8.3).
package textmatch

import (
	"errors"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// ErrUnsupportedCollation: the query names a collation this package does
// not implement.
var ErrUnsupportedCollation = errors.New("textmatch: unsupported collation")

// MatchType is how a text-match compares (RFC 6352 §10.5.4). CalDAV's
// text-match is always Contains (RFC 4791 §9.7.5).
type MatchType string

// Match types.
const (
	Equals     MatchType = "equals"
	Contains   MatchType = "contains"
	StartsWith MatchType = "starts-with"
	EndsWith   MatchType = "ends-with"
)

// Default is the collation a query gets when it names none.
const Default = "i;ascii-casemap"

// Matcher is one text-match element, ready to be applied to many values.
// The zero value is not usable; build one with [New].
type Matcher struct {
	text      string // already folded by fold
	fold      func(string) string
	unicode   bool // fold is unicodeFold
	matchType MatchType
	negate    bool
}

// New prepares a text-match of text under collation (empty: [Default])
// and matchType (empty: Contains). With negate the result is inverted
// (negate-condition="yes").
func New(text, collation string, matchType MatchType, negate bool) (*Matcher, error) {
	fold, err := folder(collation)
	if err != nil {
		return nil, err
	}
	switch matchType {
	case "":
		matchType = Contains
	case Equals, Contains, StartsWith, EndsWith:
	default:
		return nil, errors.New("textmatch: unknown match-type " + string(matchType))
	}
	return &Matcher{text: fold(text), fold: fold, unicode: collation == "i;unicode-casemap", matchType: matchType, negate: negate}, nil
}

// Supported reports whether collation is one this package implements.
func Supported(collation string) bool {
	_, err := folder(collation)
	return err == nil
}

// Match reports whether value satisfies the text-match.
func (m *Matcher) Match(value string) bool {
	v := m.fold(value)
	var ok bool
	switch m.matchType {
	case Equals:
		ok = v == m.text
	case StartsWith:
		ok = strings.HasPrefix(v, m.text)
	case EndsWith:
		ok = strings.HasSuffix(v, m.text)
	default:
		ok = strings.Contains(v, m.text)
	}
	return ok != m.negate
}

// Excludes reports whether no value that occurs in text as a contiguous
// substring can satisfy m, so that a caller may skip parsing a resource
// whose every value is such a substring of its raw text. It is true only
// when m is not negated, its text is not empty and text, folded as m
// folds, does not contain m's folded text: every match type (equals,
// starts-with, ends-with, contains) needs the folded value to contain the
// folded text, and ASCII folding and the identity fold map a substring to
// a substring. Unicode folding does too for ASCII text (it is ASCII
// folding there); for other text (where NFKD may reorder combining marks
// across a substring's edge) Excludes says false.
func (m *Matcher) Excludes(text string) bool {
	if m.negate || m.text == "" || (m.unicode && !isASCII(text)) {
		return false
	}
	return !strings.Contains(m.fold(text), m.text)
}

// Needle is m's text as folded by its collation.
func (m *Matcher) Needle() string { return m.text }

// Required tells what a text must hold for Excludes(text) to be false,
// in terms a byte-wise search can test: ok is false when nothing is
// required (m is negated or its text empty); otherwise the text contains
// needle with ASCII letters compared without case, or, when nonASCII is
// true (i;unicode-casemap), holds a byte above 0x7F (Excludes then says
// false). Ignoring case is exact for i;ascii-casemap and the ASCII text
// of i;unicode-casemap, and only admits more for i;octet.
func (m *Matcher) Required() (needle string, nonASCII, ok bool) {
	if m.negate || m.text == "" {
		return "", false, false
	}
	return m.text, m.unicode, true
}

func folder(collation string) (func(string) string, error) {
	switch collation {
	case "", Default:
		return asciiFold, nil
	case "i;octet":
		return func(s string) string { return s }, nil
	case "i;unicode-casemap":
		return unicodeFold, nil
	}
	return nil, ErrUnsupportedCollation
}

// asciiFold maps ASCII upper-case letters to lower case and leaves every
// other byte alone (RFC 4790 §9.2).
func asciiFold(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// unicodeFold is RFC 5051 §2's canonicalisation: full case folding, then
// decomposition to NFKD. (RFC 5051 titlecases; case folding makes the
// same pairs of strings equal for the scripts clients send, and is what
// x/text provides, with one difference mended here: the dotless ı, which
// folding keeps and titlecasing makes I, as it does i. Full folding also
// equates "ß" with "ss", which RFC 5051's simple titlecase mapping does
// not: a search for "STRASSE" finds "Straße".)
func unicodeFold(s string) string {
	if isASCII(s) {
		// Folding and NFKD leave ASCII as ASCII folding does, without
		// the allocations (a GAL query folds every card's values).
		return asciiFold(s)
	}
	return norm.NFKD.String(strings.ReplaceAll(cases.Fold().String(s), "ı", "i"))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
