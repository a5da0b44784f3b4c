package directory

import (
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// GAL paging bounds.
const (
	// DefaultGALLimit is used when GALQuery.Limit is 0 or negative.
	DefaultGALLimit = 50
	// MaxGALLimit caps GALQuery.Limit.
	MaxGALLimit = 500
	// MaxGALMatches bounds the entries one query word may match before
	// the query is refused as too broad (ErrInvalid): a client typing
	// one letter into a huge organisation should type another.
	MaxGALMatches = 20000
)

// GALEntry is one entry of the global address list: what an address book
// shows for a user, a group (distribution list), a resource or an
// address-book contact synced from an external directory.
type GALEntry struct {
	Kind        EntryKind
	ID          string
	Tenant      string
	Address     string
	Aliases     []string `json:",omitempty"`
	DisplayName string
	GivenName   string `json:",omitempty"`
	Surname     string `json:",omitempty"`
	Title       string `json:",omitempty"`
	Department  string `json:",omitempty"`
	Company     string `json:",omitempty"`
	Office      string `json:",omitempty"`
	Phone       string `json:",omitempty"`
	Mobile      string `json:",omitempty"`
	// HasPhoto says whether builtin.Directory.Photo has a picture for ID.
	HasPhoto bool `json:",omitempty"`
	// ResourceKind, Capacity and Location describe resources.
	ResourceKind string `json:",omitempty"`
	Capacity     int    `json:",omitempty"`
	Location     string `json:",omitempty"`
	// Site is the linked site (package geo) that holds the entry; empty
	// for an entry of this installation.
	Site string `json:",omitempty"`
}

// GALQuery selects a page of a tenant's global address list.
type GALQuery struct {
	// Tenant whose list is searched (required).
	Tenant string
	// Text is matched word by word: every word must be the start of a
	// word of the display name, given name or surname, or the start of
	// an address or its local part, case-insensitively. Empty lists all.
	Text string
	// Contains lets each word of Text match anywhere inside such a word
	// or address ([GALEntry.MatchesInside]), not only at its start: the
	// substring match of a "contains" search (RFC 3744 §9.4, RFC 5689).
	Contains bool
	// Kinds restricts the result to users, groups, resources and/or
	// contacts (KindContact); empty means all.
	Kinds []EntryKind
	// After is the Next cursor of the previous page ("" from the start).
	After string
	// Limit is the page size; <= 0 means DefaultGALLimit, at most
	// MaxGALLimit.
	Limit int
}

// GALPage is one page of a GAL query, in display-name order.
type GALPage struct {
	Entries []GALEntry
	// Next is the cursor for the following page; empty on the last.
	Next string
}

// KindContact is the GALEntry kind of an address-book contact synced
// from a source: shown in the global address list, without a mailbox,
// login or routing (its address is usually elsewhere).
const KindContact EntryKind = KindResource + 1

// CleanGALToken drops control characters (the separator among them).
func CleanGALToken(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// galFold is the form names, addresses and query words are compared
// in, in the index and in queries alike: control characters dropped,
// full Unicode case folding (Unicode §3.13, CaseFolding.txt: "STRASSE"
// and "Straße" are both "strasse", a final sigma is σ), the Turkish
// dotted and dotless i (İ, ı) taken as i, so that "ISIK" and "isik"
// find "Işık" and "istanbul" finds "İstanbul" as it did under simple
// lower-casing, and NFC (RFC 5198), so a letter typed decomposed ("u"
// and U+0308) is the precomposed one an entry holds.
func galFold(s string) string {
	s = CleanGALToken(s)
	if isASCIIString(s) {
		return strings.ToLower(s) // the same result, without the allocations of Fold and NFC
	}
	return norm.NFC.String(turkicI.Replace(cases.Fold().String(s)))
}

// turkicI maps what folding leaves of the Turkish capital dotted I
// (i and a combining dot above) and the dotless ı to i.
var turkicI = strings.NewReplacer("i\u0307", "i", "ı", "i")

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// galWords splits a name into lowercase words at spaces and punctuation
// other than those inside names and addresses ('-', '.', '\”, '@', ...
// split too, so "Anne-Marie" matches "marie"); combining marks stay in
// their word.
func galWords(s string) []string {
	return strings.FieldsFunc(galFold(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	})
}

// Tokens returns the entry's searchable words, sorted and unique: the
// words of its names, its addresses, and the words of their local parts.
func (e *GALEntry) Tokens() []string {
	var out []string
	for _, s := range []string{e.DisplayName, e.GivenName, e.Surname} {
		out = append(out, galWords(s)...)
	}
	for _, a := range append([]string{e.Address}, e.Aliases...) {
		a = galFold(a)
		if a == "" {
			continue
		}
		out = append(out, a)
		if at := strings.LastIndexByte(a, '@'); at > 0 {
			out = append(out, galWords(a[:at])...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Matches reports whether every query word (of [GALQueryWords]) starts
// some token of e.
func (e *GALEntry) Matches(words []string) bool {
	toks := e.Tokens()
	for _, w := range words {
		if !slices.ContainsFunc(toks, func(t string) bool { return strings.HasPrefix(t, w) }) {
			return false
		}
	}
	return true
}

// MatchesInside reports whether every query word (of [GALQueryWords])
// occurs inside some token of e: the match of a [GALQuery] with
// Contains.
func (e *GALEntry) MatchesInside(words []string) bool {
	toks := e.Tokens()
	for _, w := range words {
		if !slices.ContainsFunc(toks, func(t string) bool { return strings.Contains(t, w) }) {
			return false
		}
	}
	return true
}

// GALInnerSuffixes returns the suffixes of a token that start after its
// first character, longest first: a word occurs inside the token exactly
// when it starts the token or one of these, which lets an index of
// prefixes answer a [GALQuery] with Contains.
func GALInnerSuffixes(token string) []string {
	var out []string
	for i := range token {
		if i > 0 {
			out = append(out, token[i:])
		}
	}
	return out
}

// GALQueryWords splits the text of a [GALQuery] into the words
// [GALEntry.Matches] takes: an address prefix is one word, anything else
// is split as names are.
func GALQueryWords(text string) []string {
	if t := strings.TrimSpace(galFold(text)); strings.Contains(t, "@") && !strings.ContainsAny(t, " \t") {
		return []string{t}
	}
	return galWords(text)
}
