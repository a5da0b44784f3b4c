package contact

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/internal/textmatch"
	"github.com/mailyard/mailyard/store"
)

// TestCannotMatchNeverHidesAMatch: for random cards (folded anywhere,
// with escapes, groups, parameters, non-ASCII text and stray carriage
// returns) and random filters, CannotMatch is true only for cards that
// Parse rejects or Match rejects: the prefilter equals the full path.
// And the store's prefilter (ContainsClauses, as store.ContainsMatches
// reads it) never leaves out a match.
func TestCannotMatchNeverHidesAMatch(t *testing.T) {
	excluded, matched, storeExcluded := 0, 0, 0
	rapid.Check(t, func(t *rapid.T) {
		data := genCard(t)
		f := genFilter(t)
		full := false
		if c, err := Parse(data, Limits{}); err == nil {
			full = c.Match(f)
		}
		if full {
			matched++
		}
		if CannotMatch(data, f) {
			excluded++
			if full {
				t.Fatalf("CannotMatch hid a match:\n%q\nfilter %+v", data, f)
			}
		}
		// The store's prefilter keeps every card that matches.
		clauses := ContainsClauses(f)
		if !store.ContainsMatches(data, clauses) {
			storeExcluded++
			if full {
				t.Fatalf("ContainsClauses hid a match:\n%q\nfilter %+v\nclauses %#v", data, f, clauses)
			}
		}
	})
	t.Logf("%d excluded, %d by the store's clauses, %d matched", excluded, storeExcluded, matched)
	if excluded == 0 || matched == 0 {
		t.Fatalf("the generators never exercised both sides: %d excluded, %d matched", excluded, matched)
	}
}

// cardWords and the names are few, so that random filters often name
// the property and the text a random card holds.
var cardWords = []string{"Zebra", "zeb", "a,b", "x\\y", "Mü", ";", "Ｚ", "\r", "\xe9", "\xbc"}

var cardProps = []string{"FN", "EMAIL", "item1.EMAIL", "NOTE"}

func genCard(t *rapid.T) []byte {
	lines := []string{"BEGIN:VCARD", "VERSION:" + rapid.SampledFrom([]string{"3.0", "4.0"}).Draw(t, "version"), "UID:u-1"}
	n := rapid.IntRange(1, 5).Draw(t, "props")
	hasN := false
	for range n {
		name := rapid.SampledFrom(append([]string{"N"}, cardProps...)).Draw(t, "name")
		if name == "N" {
			if hasN {
				continue
			}
			hasN = true
		}
		if rapid.Bool().Draw(t, "param") {
			name += ";TYPE=" + rapid.SampledFrom([]string{"work", "home", "WORK,voice"}).Draw(t, "type")
		}
		var v strings.Builder
		for range rapid.IntRange(1, 3).Draw(t, "words") {
			w := rapid.SampledFrom(cardWords).Draw(t, "word")
			if rapid.Bool().Draw(t, "escape") {
				w = strings.NewReplacer(",", "\\,", "\\", "\\\\").Replace(w)
			}
			v.WriteString(w)
		}
		lines = append(lines, name+":"+v.String())
	}
	if !hasN {
		lines = append(lines, "N:Doe;Jo;;;")
	}
	lines = append(lines, "FN:Someone", "END:VCARD")
	s := strings.Join(lines, "\r\n") + "\r\n"
	// Fold at random byte positions (RFC 6350 §3.2 allows it anywhere,
	// even inside a UTF-8 sequence, which then fails to parse).
	for range rapid.IntRange(0, 8).Draw(t, "folds") {
		at := rapid.IntRange(1, len(s)-1).Draw(t, "at")
		fold := rapid.SampledFrom([]string{"\r\n ", "\r\n\t", "\n ", "\r\r\n "}).Draw(t, "fold")
		s = s[:at] + fold + s[at:]
	}
	return []byte(s)
}

func genFilter(t *rapid.T) Filter {
	f := Filter{AllOf: rapid.Bool().Draw(t, "allof")}
	for range rapid.IntRange(1, 3).Draw(t, "pfs") {
		pf := PropFilter{
			Name:         rapid.SampledFrom(cardProps).Draw(t, "pname"),
			AllOf:        rapid.Bool().Draw(t, "pallof"),
			IsNotDefined: rapid.IntRange(0, 9).Draw(t, "notdef") == 0,
		}
		for range rapid.IntRange(0, 2).Draw(t, "tms") {
			pf.TextMatches = append(pf.TextMatches, genMatcher(t))
		}
		if rapid.IntRange(0, 3).Draw(t, "params") == 0 {
			pf.Params = append(pf.Params, ParamFilter{Name: "TYPE", TextMatch: genMatcher(t)})
		}
		f.Props = append(f.Props, pf)
	}
	return f
}

func genMatcher(t *rapid.T) *textmatch.Matcher {
	m, err := textmatch.New(rapid.SampledFrom([]string{"", "zebra", "eb", "MÜ", "a,b", "x\\y", "\n", "z", ",", "\r", "\ufffd", "\ufffdz"}).Draw(t, "text"),
		rapid.SampledFrom([]string{"", "i;octet", "i;unicode-casemap"}).Draw(t, "collation"),
		rapid.SampledFrom([]textmatch.MatchType{textmatch.Contains, textmatch.Equals, textmatch.StartsWith, textmatch.EndsWith}).Draw(t, "type"),
		rapid.IntRange(0, 4).Draw(t, "negate") == 0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCannotMatchCases: the prefilter skips a card that lacks the text
// and keeps one whose text is split by a fold or carried by an escape.
func TestCannotMatchCases(t *testing.T) {
	card := func(fn string) []byte {
		return crlf("BEGIN:VCARD", "VERSION:3.0", "UID:u", "N:Doe;Jo;;;", "FN:"+fn, "END:VCARD")
	}
	fnContains := func(text string) Filter {
		m, err := textmatch.New(text, "", textmatch.Contains, false)
		if err != nil {
			t.Fatal(err)
		}
		return Filter{Props: []PropFilter{{Name: "FN", TextMatches: []*textmatch.Matcher{m}}}}
	}
	for _, c := range []struct {
		data []byte
		f    Filter
		want bool
	}{
		{card("Person 00001"), fnContains("zebra"), true},
		{card("Zebra 01000"), fnContains("zebra"), false},
		{card("Ze\r\n bra"), fnContains("zebra"), false},
		{card("Ze\r\n\tbra"), fnContains("zebra"), false},
		{card("Example\\, Inc."), fnContains("e, i"), false},
		{card("Person"), fnContains(""), false},
	} {
		if got := CannotMatch(c.data, c.f); got != c.want {
			t.Errorf("CannotMatch(%q) = %v, want %v", c.data, got, c.want)
		}
	}
}

// TestContainsClausesCases: the clauses of typical filters: a text and
// the two fold texts; NonASCII only for i;unicode-casemap; allof as
// several clauses, anyof as one; nothing for a negated text-match, a
// text an escape may produce, is-not-defined in an anyof, or an anyof
// prop-filter with a param-filter.
func TestContainsClausesCases(t *testing.T) {
	tm := func(text, collation string, negate bool) *textmatch.Matcher {
		m, err := textmatch.New(text, collation, textmatch.Contains, negate)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	fn := func(ms ...*textmatch.Matcher) PropFilter { return PropFilter{Name: "FN", TextMatches: ms} }
	clause := func(nonASCII bool, texts ...string) store.ContainsClause {
		return store.ContainsClause{Any: append(texts, "\n ", "\n\t"), NonASCII: nonASCII}
	}
	for _, c := range []struct {
		what string
		f    Filter
		want []store.ContainsClause
	}{
		{"no prop-filter", Filter{}, nil},
		{"FN contains", Filter{Props: []PropFilter{fn(tm("Zebra", "", false))}}, []store.ContainsClause{clause(false, "zebra")}},
		{"octet keeps case", Filter{Props: []PropFilter{fn(tm("Zebra", "i;octet", false))}}, []store.ContainsClause{clause(false, "Zebra")}},
		{"unicode", Filter{Props: []PropFilter{fn(tm("Иван", "i;unicode-casemap", false))}}, []store.ContainsClause{clause(true, "иван")}},
		{"negated", Filter{Props: []PropFilter{fn(tm("zebra", "", true))}}, nil},
		{"an escape's text", Filter{Props: []PropFilter{fn(tm("a,b", "", false))}}, nil},
		{"anyof of two texts", Filter{Props: []PropFilter{fn(tm("zebra", "", false), tm("lion", "", false))}},
			[]store.ContainsClause{{Any: []string{"zebra", "\n ", "\n\t", "lion"}}}},
		{"allof of two texts", Filter{Props: []PropFilter{{Name: "FN", AllOf: true, TextMatches: []*textmatch.Matcher{tm("zebra", "", false), tm("lion", "", false)}}}},
			[]store.ContainsClause{clause(false, "zebra"), clause(false, "lion")}},
		{"allof of two prop-filters", Filter{AllOf: true, Props: []PropFilter{fn(tm("zebra", "", false)), {Name: "EMAIL", IsNotDefined: true}}},
			[]store.ContainsClause{clause(false, "zebra")}},
		{"anyof of two prop-filters", Filter{Props: []PropFilter{fn(tm("zebra", "", false)), {Name: "EMAIL", TextMatches: []*textmatch.Matcher{tm("lion", "i;unicode-casemap", false)}}}},
			[]store.ContainsClause{{Any: []string{"zebra", "\n ", "\n\t", "lion"}, NonASCII: true}}},
		{"anyof with is-not-defined", Filter{Props: []PropFilter{fn(tm("zebra", "", false)), {Name: "EMAIL", IsNotDefined: true}}}, nil},
		{"anyof prop-filter with a param-filter", Filter{Props: []PropFilter{{Name: "FN", TextMatches: []*textmatch.Matcher{tm("zebra", "", false)},
			Params: []ParamFilter{{Name: "TYPE"}}}}}, nil},
	} {
		got := ContainsClauses(c.f)
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", c.want) {
			t.Errorf("%s: %#v, want %#v", c.what, got, c.want)
		}
	}
}
