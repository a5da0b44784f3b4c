package dav

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/dav/internal/contact"
	"github.com/mailyard/mailyard/store"
)

// bruteCards are the vCards of TestAddressbookQueryEqualsBruteForce:
// case variants, Cyrillic, full-width letters, a decomposed and a
// precomposed umlaut, ß, an accent that NFKD splits off, a Latin-1 byte
// that is not UTF-8, an escaped comma, text split by line folds (one
// with a stray carriage return before the fold), parameters, and a card
// that does not parse.
var bruteCards = []struct{ fn, email, note string }{
	{"Zebra Crossing", "zebra@example.org", ""},
	{"zebra", "z@example.org", "striped"},
	{"ZEBRA", "", "Иван was here"},
	{"Иван Петров", "ivan@example.ru", ""},
	{"ИВАН", "", ""},
	{"иван", "", "zebra"},
	{"Ｚｅｂｒａ", "", ""},
	{"Mu\u0308ller", "", ""},
	{"MÜLLER", "", "Straße"},
	{"a\\,b", "", ""},
	{"Ze\r\n bra", "", ""},
	{"Ив\r\r\n ан", "", ""},
	{"Plain Person", "plain@example.org", "nothing"},
	{"Jos\xe9 Latin-1", "", ""},
	{"José", "", ""},
}

// TestAddressbookQueryEqualsBruteForce: for random filters (text-matches
// of every collation and match type, negated or not, allof and anyof,
// is-not-defined and param-filters), addressbook-query over the store
// (its Contains prefilter, then CannotMatch, Parse and Match) answers
// exactly the cards a brute-force Parse and Match of every card selects.
func TestAddressbookQueryEqualsBruteForce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, err := e.st.Collection(ctx, e.aliceID, store.KindAddressBook, "contacts")
	if err != nil {
		t.Fatal(err)
	}
	cards := map[string][]byte{}
	for i, bc := range bruteCards {
		lines := []string{"BEGIN:VCARD", "VERSION:4.0", fmt.Sprintf("UID:b%02d", i), "FN:" + bc.fn}
		if bc.email != "" {
			lines = append(lines, "EMAIL;TYPE=work:"+bc.email)
		}
		if bc.note != "" {
			lines = append(lines, "NOTE:"+bc.note)
		}
		data := []byte(strings.Join(append(lines, "END:VCARD"), "\r\n") + "\r\n")
		name := fmt.Sprintf("b%02d.vcf", i)
		cards[name] = data
		if _, err := e.st.PutObject(ctx, c.ID, store.Object{Name: name, UID: fmt.Sprintf("b%02d", i), Data: data, Component: "VCARD"}, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	matched, narrowed := 0, 0
	rapid.Check(t, func(rt *rapid.T) {
		filterXML := genCardFilterXML(rt)
		n, err := parseXML(strings.NewReader(`<CR:addressbook-query `+reportNS+`>`+filterXML+`</CR:addressbook-query>`), e.h.opts.Limits)
		if err != nil {
			rt.Fatalf("filter %s: %v", filterXML, err)
		}
		f, err := parseCardFilter(n.child(nsCardDAV, "filter"))
		if err != nil {
			rt.Skip("filter refused: " + err.Error())
		}
		var want []string
		for name, data := range cards {
			card, err := contact.Parse(data, contact.Limits{MaxSize: len(data) + 1})
			if err == nil && card.Match(f) {
				want = append(want, name)
			}
			if !store.ContainsMatches(data, contact.ContainsClauses(f)) {
				narrowed++
			}
		}
		slices.Sort(want)
		matched += len(want)
		body := `<CR:addressbook-query ` + reportNS + `><D:prop><D:getetag/></D:prop>` + filterXML + `</CR:addressbook-query>`
		r := e.do("REPORT", "/dav/addressbooks/"+e.aliceID+"/contacts/", body, "Depth", "1")
		if r.StatusCode != http.StatusMultiStatus {
			rt.Fatalf("status %d: %s", r.StatusCode, r.body)
		}
		got := responseNames(rt, r.body)
		if !slices.Equal(got, want) {
			rt.Fatalf("filter %s:\nREPORT %q\nbrute force %q", filterXML, got, want)
		}
	})
	t.Logf("%d matches, %d cards the store's prefilter left out", matched, narrowed)
	if matched == 0 || narrowed == 0 {
		t.Fatalf("the generator never exercised both sides: %d matches, %d left out", matched, narrowed)
	}
}

// responseNames are the last path segments of a multistatus's hrefs,
// sorted.
func responseNames(t interface{ Fatalf(string, ...any) }, body []byte) []string {
	var ms struct {
		Responses []struct {
			Href string `xml:"href"`
		} `xml:"response"`
	}
	if err := xml.Unmarshal(body, &ms); err != nil {
		t.Fatalf("multistatus %s: %v", body, err)
	}
	names := []string{}
	for _, r := range ms.Responses {
		names = append(names, path.Base(r.Href))
	}
	slices.Sort(names)
	return names
}

// genCardFilterXML draws a CARDDAV:filter element.
func genCardFilterXML(t *rapid.T) string {
	return `<CR:filter` + testAttr(t, "test") + `>` + genPropFiltersXML(t) + `</CR:filter>`
}

func genPropFiltersXML(t *rapid.T) string {
	var b strings.Builder
	for range rapid.IntRange(1, 3).Draw(t, "pfs") {
		name := rapid.SampledFrom([]string{"FN", "EMAIL", "NOTE", "N"}).Draw(t, "pname")
		fmt.Fprintf(&b, `<CR:prop-filter name="%s"%s>`, name, testAttr(t, "ptest"))
		if rapid.IntRange(0, 9).Draw(t, "notdef") == 0 {
			b.WriteString(`<CR:is-not-defined/>`)
		}
		for range rapid.IntRange(0, 2).Draw(t, "tms") {
			b.WriteString(genTextMatchXML(t))
		}
		if rapid.IntRange(0, 4).Draw(t, "param") == 0 {
			b.WriteString(`<CR:param-filter name="TYPE">` + genTextMatchXML(t) + `</CR:param-filter>`)
		}
		b.WriteString(`</CR:prop-filter>`)
	}
	return b.String()
}

func testAttr(t *rapid.T, label string) string {
	return rapid.SampledFrom([]string{"", ` test="anyof"`, ` test="allof"`}).Draw(t, label)
}

func genTextMatchXML(t *rapid.T) string {
	text := rapid.SampledFrom([]string{"zebra", "ZEB", "иван", "ИВАН", "Иван", "ｚｅｂ", "mü", "MU\u0308", "strasse", "a,b", "", "ll", "ра", "work", "\ufffd", "jose", "JOS"}).Draw(t, "text")
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(text))
	attrs := ""
	if c := rapid.SampledFrom([]string{"", "i;octet", "i;ascii-casemap", "i;unicode-casemap"}).Draw(t, "collation"); c != "" {
		attrs += ` collation="` + c + `"`
	}
	if m := rapid.SampledFrom([]string{"", "contains", "equals", "starts-with", "ends-with"}).Draw(t, "match"); m != "" {
		attrs += ` match-type="` + m + `"`
	}
	if rapid.IntRange(0, 4).Draw(t, "negate") == 0 {
		attrs += ` negate-condition="yes"`
	}
	return `<CR:text-match` + attrs + `>` + esc.String() + `</CR:text-match>`
}
