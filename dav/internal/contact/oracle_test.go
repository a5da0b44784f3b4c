package contact

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav/carddav"

	"github.com/mailyard/mailyard/internal/textmatch"
)

// The differential test compares Match with go-webdav v0.6.0's
// carddav.Match on random cards and filters inside the fragment where
// both implement RFC 6352 §10.5 the same way:
//
//   - collation i;octet only: carddav.Match ignores the collation
//     attribute and always compares octets;
//   - at most one instance of each property: carddav.Match looks at the
//     first instance only (its own TODO), Match at every instance;
//   - no param-filter: carddav.Match ignores them;
//   - at least one prop-filter: carddav.Match answers false to an empty
//     anyof filter, Match (like sabre/dav) matches every card;
//   - upper-case names without group: carddav.Match looks the name up
//     as given.
//
// TestOracleDifferences pins each of these differences down.

var (
	oracleProps    = []string{"FN", "N", "NICKNAME", "EMAIL", "TEL", "ORG", "NOTE", "TITLE"}
	oracleAlphabet = []rune("abAB ;-é")
)

func randText(r *rand.Rand, max int) string {
	n := r.IntN(max + 1)
	var b strings.Builder
	for range n {
		b.WriteRune(oracleAlphabet[r.IntN(len(oracleAlphabet))])
	}
	return b.String()
}

// randCard builds a valid card, encodes it with go-vcard and parses it
// back, so both sides see what a client's PUT would store.
func randCard(t *testing.T, r *rand.Rand, i int) *Card {
	card := vcard.Card{}
	card.SetValue("VERSION", "4.0")
	if r.IntN(2) == 0 {
		card.SetValue("VERSION", "3.0")
		card.SetValue("N", randText(r, 4)+";"+randText(r, 3)+";;;")
	}
	card.SetValue("UID", "uid-"+string(rune('a'+i%26)))
	for _, p := range oracleProps {
		if p == "N" {
			continue // set above for 3.0, left out of 4.0
		}
		if p == "FN" || r.IntN(2) == 0 {
			card.SetValue(p, randText(r, 6))
		}
	}
	var buf bytes.Buffer
	if err := vcard.NewEncoder(&buf).Encode(card); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(buf.Bytes(), Limits{})
	if err != nil {
		t.Fatalf("random card: %v\n%s", err, buf.String())
	}
	return c
}

var matchTypes = []textmatch.MatchType{textmatch.Equals, textmatch.Contains, textmatch.StartsWith, textmatch.EndsWith}

// randFilter returns the same random filter in both representations.
func randFilter(t *testing.T, r *rand.Rand) (Filter, *carddav.AddressBookQuery) {
	var f Filter
	q := &carddav.AddressBookQuery{FilterTest: carddav.FilterAnyOf}
	if r.IntN(2) == 0 {
		f.AllOf, q.FilterTest = true, carddav.FilterAllOf
	}
	for range 1 + r.IntN(3) {
		name := oracleProps[r.IntN(len(oracleProps))]
		if r.IntN(8) == 0 {
			name = "X-NONE"
		}
		pf := PropFilter{Name: name}
		qpf := carddav.PropFilter{Name: name, Test: carddav.FilterAnyOf}
		if r.IntN(2) == 0 {
			pf.AllOf, qpf.Test = true, carddav.FilterAllOf
		}
		if r.IntN(5) == 0 {
			pf.IsNotDefined, qpf.IsNotDefined = true, true
		} else {
			for range r.IntN(4) {
				text, mt, neg := randText(r, 2), matchTypes[r.IntN(len(matchTypes))], r.IntN(3) == 0
				m, err := textmatch.New(text, "i;octet", mt, neg)
				if err != nil {
					t.Fatal(err)
				}
				pf.TextMatches = append(pf.TextMatches, m)
				qpf.TextMatches = append(qpf.TextMatches, carddav.TextMatch{Text: text, MatchType: carddav.MatchType(mt), NegateCondition: neg})
			}
		}
		f.Props = append(f.Props, pf)
		q.PropFilters = append(q.PropFilters, qpf)
	}
	return f, q
}

func TestOracleGoWebDAV(t *testing.T) {
	r := rand.New(rand.NewPCG(6352, 105))
	const cards, filtersPerCard = 500, 40
	var agreedTrue, agreedFalse int
	for i := range cards {
		c := randCard(t, r, i)
		ao := &carddav.AddressObject{Card: c.VCard()}
		for range filtersPerCard {
			f, q := randFilter(t, r)
			want, err := carddav.Match(q, ao)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Match(f)
			if got != want {
				var buf bytes.Buffer
				_ = vcard.NewEncoder(&buf).Encode(c.VCard())
				t.Fatalf("Match %v, carddav.Match %v\nfilter %+v\ncard\n%s", got, want, q, buf.String())
			}
			if got {
				agreedTrue++
			} else {
				agreedFalse++
			}
		}
	}
	// Both outcomes must be well represented, or the test proves little.
	if agreedTrue < cards || agreedFalse < cards {
		t.Fatalf("lopsided sample: %d true, %d false", agreedTrue, agreedFalse)
	}
	t.Logf("%d agreements (%d true, %d false)", agreedTrue+agreedFalse, agreedTrue, agreedFalse)
}

// TestOracleDifferences records where Match and carddav.Match differ on
// purpose, each a case go-webdav v0.6.0 does not implement.
func TestOracleDifferences(t *testing.T) {
	c, err := Parse(crlf("BEGIN:VCARD", "VERSION:4.0", "FN:Jane Doe", "UID:1",
		"EMAIL;TYPE=home:jane@home.example", "EMAIL;TYPE=work:jane@work.example", "END:VCARD"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ao := &carddav.AddressObject{Card: c.VCard()}
	text := func(name, s, collation string) (Filter, *carddav.AddressBookQuery) {
		return Filter{Props: []PropFilter{{Name: name, TextMatches: []*textmatch.Matcher{tm(t, s, collation, "", false)}}}},
			&carddav.AddressBookQuery{PropFilters: []carddav.PropFilter{{Name: name, TextMatches: []carddav.TextMatch{{Text: s}}}}}
	}
	type diff struct {
		name      string
		f         Filter
		q         *carddav.AddressBookQuery
		ours, lib bool
	}
	var cases []diff
	add := func(name string, f Filter, q *carddav.AddressBookQuery, ours, lib bool) {
		cases = append(cases, diff{name, f, q, ours, lib})
	}
	f, q := text("FN", "jane", "")
	add("default collation i;ascii-casemap", f, q, true, false)
	f, q = text("EMAIL", "work", "i;octet")
	add("second instance", f, q, true, false)
	f, q = text("fn", "Jane", "i;octet")
	add("lower-case property name", f, q, true, false)
	add("empty filter", Filter{}, &carddav.AddressBookQuery{}, true, false)
	add("param-filter", Filter{Props: []PropFilter{{Name: "FN", Params: []ParamFilter{{Name: "TYPE"}}}}},
		&carddav.AddressBookQuery{PropFilters: []carddav.PropFilter{{Name: "FN", Params: []carddav.ParamFilter{{Name: "TYPE"}}}}}, false, true)
	for _, d := range cases {
		lib, err := carddav.Match(d.q, ao)
		if err != nil {
			t.Fatal(err)
		}
		if ours := c.Match(d.f); ours != d.ours || lib != d.lib {
			t.Errorf("%s: Match %v (want %v), carddav.Match %v (want %v)", d.name, ours, d.ours, lib, d.lib)
		}
	}
}

// TestMatchLaws checks, on random cards and filters, the algebra RFC 6352
// §10.5 implies beyond what go-webdav can judge: a filter is the OR (anyof)
// or AND (allof) of its prop-filters taken alone, is-not-defined is the
// negation of an empty prop-filter, and on a property with one instance
// negate-condition inverts the result.
func TestMatchLaws(t *testing.T) {
	r := rand.New(rand.NewPCG(6352, 1054))
	for i := range 300 {
		c := randCard(t, r, i)
		for range 30 {
			f, _ := randFilter(t, r)
			anyOK, allOK := false, true
			for _, pf := range f.Props {
				one := c.Match(Filter{Props: []PropFilter{pf}})
				anyOK, allOK = anyOK || one, allOK && one
				exists := c.Match(Filter{Props: []PropFilter{{Name: pf.Name}}})
				if notDef := c.Match(Filter{Props: []PropFilter{{Name: pf.Name, IsNotDefined: true}}}); notDef == exists {
					t.Fatalf("%s: is-not-defined %v and exists %v", pf.Name, notDef, exists)
				}
				if !exists || len(pf.TextMatches) != 1 || pf.IsNotDefined {
					continue
				}
				text, mt := randText(r, 2), matchTypes[r.IntN(len(matchTypes))]
				pos, neg := tm(t, text, "i;octet", mt, false), tm(t, text, "i;octet", mt, true)
				p := c.Match(Filter{Props: []PropFilter{{Name: pf.Name, TextMatches: []*textmatch.Matcher{pos}}}})
				n := c.Match(Filter{Props: []PropFilter{{Name: pf.Name, TextMatches: []*textmatch.Matcher{neg}}}})
				if p == n {
					t.Fatalf("%s %q %s: match %v and negated %v", pf.Name, text, mt, p, n)
				}
			}
			want := anyOK
			if f.AllOf {
				want = allOK
			}
			if got := c.Match(f); got != want {
				t.Fatalf("filter allof=%v: %v, its prop-filters give %v", f.AllOf, got, want)
			}
		}
	}
}
