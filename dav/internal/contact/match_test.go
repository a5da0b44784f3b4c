package contact

import (
	"slices"
	"testing"

	"github.com/mailyard/mailyard/internal/textmatch"
)

// book is a small address book modelled on RFC 6352's examples (§6.1 and
// §8.6): resource names to vCards.
var bookCards = map[string][]byte{
	// RFC 6352 §6.1's example card.
	"cyrus.vcf": crlf("BEGIN:VCARD", "VERSION:3.0", "FN:Cyrus Daboo", "N:Daboo;Cyrus;;;",
		"ADR;TYPE=POSTAL:;2822 Email HQ;Suite 2821;RFCVille;PA;15213;USA",
		"EMAIL;TYPE=INTERNET,PREF:cyrus@example.com", "NICKNAME:me", "NOTE:Example VCard.",
		"ORG:Self Employed", "TEL;TYPE=WORK,VOICE:412 605 0499", "TEL;TYPE=FAX:412 605 0705",
		"URL:http://www.example.com", "UID:1234-5678-9000-1", "END:VCARD"),
	"eric.vcf": crlf("BEGIN:VCARD", "VERSION:3.0", "FN:Eric York", "N:York;Eric;;;",
		"item1.EMAIL;TYPE=INTERNET:eric@example.com", "item1.X-ABLABEL:_$!<Work>!$_",
		"item2.EMAIL;TYPE=INTERNET:daboo-fan@example.org", "NICKNAME:ME too",
		"ORG:Example\\, Inc.;Research", "UID:e-1", "END:VCARD"),
	"mueller.vcf": crlf("BEGIN:VCARD", "VERSION:4.0", "FN:Jürgen MÜLLER", "N:Müller;Jürgen;;;",
		"EMAIL;TYPE=home:jm@example.de", "TEL;VALUE=uri;TYPE=cell:tel:+49-30-1234",
		"UID:urn:uuid:m-1", "END:VCARD"),
	"room.vcf": crlf("BEGIN:VCARD", "VERSION:4.0", "KIND:location", "FN:Room Daboo",
		"UID:urn:uuid:r-1", "END:VCARD"),
}

func loadBook(t testing.TB) map[string]*Card {
	t.Helper()
	book := map[string]*Card{}
	for name, data := range bookCards {
		c, err := Parse(data, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		book[name] = c
	}
	return book
}

func tm(t testing.TB, text, collation string, mt textmatch.MatchType, negate bool) *textmatch.Matcher {
	t.Helper()
	m, err := textmatch.New(text, collation, mt, negate)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func matching(book map[string]*Card, f Filter) []string {
	var out []string
	for name, c := range book {
		if c.Match(f) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func TestMatchRFCExamples(t *testing.T) {
	book := loadBook(t)
	cases := []struct {
		name string
		f    Filter
		want []string
	}{
		{
			// RFC 6352 §8.6.4: NICKNAME equals "me" under i;unicode-casemap.
			name: "§8.6.4 NICKNAME equals me",
			f: Filter{Props: []PropFilter{{Name: "NICKNAME",
				TextMatches: []*textmatch.Matcher{tm(t, "me", "i;unicode-casemap", textmatch.Equals, false)}}}},
			want: []string{"cyrus.vcf"},
		},
		{
			// RFC 6352 §8.6.5: FN or EMAIL contains "daboo" (anyof).
			name: "§8.6.5 FN or EMAIL contains daboo",
			f: Filter{Props: []PropFilter{
				{Name: "FN", TextMatches: []*textmatch.Matcher{tm(t, "daboo", "i;unicode-casemap", textmatch.Contains, false)}},
				{Name: "EMAIL", TextMatches: []*textmatch.Matcher{tm(t, "daboo", "i;unicode-casemap", textmatch.Contains, false)}},
			}},
			want: []string{"cyrus.vcf", "eric.vcf", "room.vcf"},
		},
		{
			// The same with test="allof" (RFC 6352 §10.5).
			name: "allof FN and EMAIL contain daboo",
			f: Filter{AllOf: true, Props: []PropFilter{
				{Name: "FN", TextMatches: []*textmatch.Matcher{tm(t, "daboo", "", "", false)}},
				{Name: "EMAIL", TextMatches: []*textmatch.Matcher{tm(t, "daboo", "", "", false)}},
			}},
			want: nil,
		},
		{
			name: "allof FN contains daboo and KIND is not defined",
			f: Filter{AllOf: true, Props: []PropFilter{
				{Name: "FN", TextMatches: []*textmatch.Matcher{tm(t, "daboo", "", "", false)}},
				{Name: "KIND", IsNotDefined: true},
			}},
			want: []string{"cyrus.vcf"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := matching(book, tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("matched %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMatchSemantics(t *testing.T) {
	book := loadBook(t)
	all := []string{"cyrus.vcf", "eric.vcf", "mueller.vcf", "room.vcf"}
	prop := func(name string, ms ...*textmatch.Matcher) Filter {
		return Filter{Props: []PropFilter{{Name: name, TextMatches: ms}}}
	}
	cases := []struct {
		name string
		f    Filter
		want []string
	}{
		{"empty filter matches all", Filter{}, all},
		{"empty allof filter matches all", Filter{AllOf: true}, all},
		{"empty prop-filter: property exists", prop("NICKNAME"), []string{"cyrus.vcf", "eric.vcf"}},
		{"lower-case property name", prop("nickname"), []string{"cyrus.vcf", "eric.vcf"}},
		{"is-not-defined", Filter{Props: []PropFilter{{Name: "nickname", IsNotDefined: true}}}, []string{"mueller.vcf", "room.vcf"}},
		{"is-not-defined wins over text-match", Filter{Props: []PropFilter{{Name: "NICKNAME", IsNotDefined: true,
			TextMatches: []*textmatch.Matcher{tm(t, "me", "", "", false)}}}}, []string{"mueller.vcf", "room.vcf"}},
		// Collations (RFC 6352 §8.3).
		{"ascii-casemap is the default", prop("NICKNAME", tm(t, "me", "", textmatch.Equals, false)), []string{"cyrus.vcf"}},
		{"ascii-casemap folds ASCII", prop("FN", tm(t, "CYRUS", "", textmatch.StartsWith, false)), []string{"cyrus.vcf"}},
		{"octet is exact", prop("FN", tm(t, "CYRUS", "i;octet", textmatch.StartsWith, false)), nil},
		{"octet exact hit", prop("FN", tm(t, "Cyrus", "i;octet", textmatch.StartsWith, false)), []string{"cyrus.vcf"}},
		{"ascii-casemap leaves Ü", prop("FN", tm(t, "müller", "", "", false)), nil},
		{"unicode-casemap folds Ü", prop("FN", tm(t, "müller", "i;unicode-casemap", "", false)), []string{"mueller.vcf"}},
		{"unicode-casemap NFKD", prop("FN", tm(t, "ju\u0308rgen", "i;unicode-casemap", textmatch.StartsWith, false)), []string{"mueller.vcf"}},
		// Match types.
		{"ends-with", prop("EMAIL", tm(t, "example.org", "", textmatch.EndsWith, false)), []string{"eric.vcf"}},
		{"equals is the whole value", prop("FN", tm(t, "cyrus", "", textmatch.Equals, false)), nil},
		// negate-condition applies per instance: eric has an EMAIL not at example.com.
		{"negate", prop("EMAIL", tm(t, "example.com", "", "", true)), []string{"eric.vcf", "mueller.vcf"}},
		// Structured values: the whole text with ";" separators.
		{"N starts-with family name", prop("N", tm(t, "daboo", "", textmatch.StartsWith, false)), []string{"cyrus.vcf"}},
		{"N contains given name", prop("N", tm(t, ";eric;", "", "", false)), []string{"eric.vcf"}},
		{"N equals whole value", prop("N", tm(t, "york;eric;;;", "", textmatch.Equals, false)), []string{"eric.vcf"}},
		{"ORG unescaped comma", prop("ORG", tm(t, "example, inc.;research", "", textmatch.Equals, false)), []string{"eric.vcf"}},
		{"ORG unit", prop("ORG", tm(t, "research", "", textmatch.EndsWith, false)), []string{"eric.vcf"}},
		// Groups (RFC 6352 §10.5.1).
		{"bare name matches grouped properties", prop("EMAIL", tm(t, "daboo-fan", "", "", false)), []string{"eric.vcf"}},
		{"group name selects its group", prop("item2.EMAIL", tm(t, "daboo-fan", "", "", false)), []string{"eric.vcf"}},
		{"group name is case-insensitive", prop("ITEM2.email", tm(t, "daboo-fan", "", "", false)), []string{"eric.vcf"}},
		{"other group does not match", prop("item1.EMAIL", tm(t, "daboo-fan", "", "", false)), nil},
		{"group name does not match ungrouped", prop("item1.FN"), nil},
		{"group is-not-defined", Filter{Props: []PropFilter{{Name: "item3.EMAIL", IsNotDefined: true}}}, all},
		// Several text-matches in one prop-filter.
		{"prop anyof text-matches", Filter{Props: []PropFilter{{Name: "FN", TextMatches: []*textmatch.Matcher{
			tm(t, "eric", "", "", false), tm(t, "room", "", "", false)}}}}, []string{"eric.vcf", "room.vcf"}},
		{"prop allof text-matches", Filter{Props: []PropFilter{{Name: "FN", AllOf: true, TextMatches: []*textmatch.Matcher{
			tm(t, "room", "", "", false), tm(t, "daboo", "", "", false)}}}}, []string{"room.vcf"}},
		// allof is per instance: eric's two EMAILs each carry one of the words.
		{"prop allof is per instance", Filter{Props: []PropFilter{{Name: "EMAIL", AllOf: true, TextMatches: []*textmatch.Matcher{
			tm(t, "eric", "", "", false), tm(t, "example.org", "", "", false)}}}}, nil},
		// Param filters (RFC 6352 §10.5.2).
		{"param exists", Filter{Props: []PropFilter{{Name: "TEL", Params: []ParamFilter{{Name: "type"}}}}}, []string{"cyrus.vcf", "mueller.vcf"}},
		{"param value among several", Filter{Props: []PropFilter{{Name: "TEL", Params: []ParamFilter{{Name: "TYPE",
			TextMatch: tm(t, "voice", "", textmatch.Equals, false)}}}}}, []string{"cyrus.vcf"}},
		{"param value case", Filter{Props: []PropFilter{{Name: "EMAIL", Params: []ParamFilter{{Name: "TYPE",
			TextMatch: tm(t, "HOME", "", textmatch.Equals, false)}}}}}, []string{"mueller.vcf"}},
		{"param octet", Filter{Props: []PropFilter{{Name: "EMAIL", Params: []ParamFilter{{Name: "TYPE",
			TextMatch: tm(t, "HOME", "i;octet", textmatch.Equals, false)}}}}}, nil},
		{"param is-not-defined", Filter{Props: []PropFilter{{Name: "EMAIL", Params: []ParamFilter{{Name: "TYPE", IsNotDefined: true}}}}}, nil},
		{"param missing", Filter{Props: []PropFilter{{Name: "TEL", Params: []ParamFilter{{Name: "VALUE"}}}}}, []string{"mueller.vcf"}},
		{"param and text allof", Filter{Props: []PropFilter{{Name: "TEL", AllOf: true,
			TextMatches: []*textmatch.Matcher{tm(t, "0705", "", textmatch.EndsWith, false)},
			Params:      []ParamFilter{{Name: "TYPE", TextMatch: tm(t, "fax", "", textmatch.Equals, false)}}}}}, []string{"cyrus.vcf"}},
		// The fax line has TYPE=FAX but the voice line has the number: allof per instance fails.
		{"param and text allof per instance", Filter{Props: []PropFilter{{Name: "TEL", AllOf: true,
			TextMatches: []*textmatch.Matcher{tm(t, "0499", "", textmatch.EndsWith, false)},
			Params:      []ParamFilter{{Name: "TYPE", TextMatch: tm(t, "fax", "", textmatch.Equals, false)}}}}}, nil},
		{"param or text anyof", Filter{Props: []PropFilter{{Name: "TEL",
			TextMatches: []*textmatch.Matcher{tm(t, "nomatch", "", "", false)},
			Params:      []ParamFilter{{Name: "TYPE", TextMatch: tm(t, "cell", "", textmatch.Equals, false)}}}}}, []string{"mueller.vcf"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := matching(book, tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("matched %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMatchInstances pins down the per-instance readings of negated
// text-matches and the card-wide reading of a parameter's is-not-defined
// on cards with several instances of a property.
func TestMatchInstances(t *testing.T) {
	parse := func(lines ...string) *Card {
		c, err := Parse(crlf(append(append([]string{"BEGIN:VCARD", "VERSION:4.0", "FN:x", "UID:1"}, lines...), "END:VCARD")...), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	mixed := parse("TEL;TYPE=cell:1", "TEL:2", "EMAIL;TYPE=home:a@x", "EMAIL;TYPE=work:b@x", "EMAIL:c@x")
	untyped := parse("EMAIL:c@x")
	grouped := parse("item1.TEL:1", "TEL;TYPE=cell:2")
	notWork := tm(t, "work", "", textmatch.Equals, true)
	param := func(prop, name string, notDef bool, m *textmatch.Matcher) Filter {
		return Filter{Props: []PropFilter{{Name: prop, Params: []ParamFilter{{Name: name, IsNotDefined: notDef, TextMatch: m}}}}}
	}
	cases := []struct {
		name string
		c    *Card
		f    Filter
		want bool
	}{
		{"TYPE not defined on one TEL of two", mixed, param("TEL", "TYPE", true, nil), false},
		{"TYPE not defined on any EMAIL", untyped, param("EMAIL", "TYPE", true, nil), true},
		{"TYPE not defined within the group", grouped, param("item1.TEL", "TYPE", true, nil), true},
		{"TYPE defined outside the group", grouped, param("TEL", "TYPE", true, nil), false},
		{"negated TYPE: another EMAIL is home", mixed, param("EMAIL", "TYPE", false, notWork), true},
		{"negated TYPE needs the parameter", untyped, param("EMAIL", "TYPE", false, notWork), false},
		{"negated text: another EMAIL differs", mixed, Filter{Props: []PropFilter{{Name: "EMAIL",
			TextMatches: []*textmatch.Matcher{tm(t, "a@", "", textmatch.StartsWith, true)}}}}, true},
		{"negated text on the only EMAIL", untyped, Filter{Props: []PropFilter{{Name: "EMAIL",
			TextMatches: []*textmatch.Matcher{tm(t, "c@", "", textmatch.StartsWith, true)}}}}, false},
		{"negated text needs the property", untyped, Filter{Props: []PropFilter{{Name: "TEL",
			TextMatches: []*textmatch.Matcher{tm(t, "c@", "", "", true)}}}}, false},
	}
	for _, tc := range cases {
		if got := tc.c.Match(tc.f); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
