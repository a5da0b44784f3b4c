package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mailyard/mailyard/store"
)

// containsData are the data of testObjectQueryContains's objects: case
// variants, Cyrillic, a decomposed and a precomposed umlaut, a text split
// by a line fold, a zero byte before the text, bytes that are not UTF-8,
// and SQL LIKE's wildcards.
var containsData = map[string]string{
	"a": "FN:Zebra Crossing\r\n",
	"b": "FN:zebra\r\n",
	"c": "FN:ZEBRA\r\n",
	"d": "FN:Иван Петров\r\n",
	"e": "FN:ИВАН\r\n",
	"f": "FN:Ze\r\n bra\r\n",
	"g": "NOTE:\x00 then zebra\r\n",
	"h": "FN:Mu\u0308ller\r\n",
	"i": "FN:MÜLLER\r\n",
	"j": "FN:\xe9\xff zebra\r\n",
	"k": "NOTE:100% _x_\r\n",
	"l": "FN:plain\r\n",
	"m": "FN:back\\slash\r\n",
}

// regular reports whether data is UTF-8 without zero bytes and
// backslashes: the data on which a backend must apply Contains exactly
// (store.ObjectQuery).
func regular(data []byte) bool {
	return utf8.Valid(data) && !bytes.ContainsAny(data, "\x00\\")
}

// regularNames are the names of got whose data is regular, joined by
// spaces.
func regularNames(data map[string][]byte, got []string) string {
	var out []string
	for _, name := range got {
		if regular(data[name]) {
			out = append(out, name)
		}
	}
	return strings.Join(out, " ")
}

// checkContains checks the names a query with Contains returned against
// store.ContainsMatches: every object that satisfies the clauses is
// there, and none whose data is regular and does not.
func checkContains(t *testing.T, what string, data map[string][]byte, clauses []store.ContainsClause, got []string) {
	t.Helper()
	for name, d := range data {
		in := slices.Contains(got, name)
		want := store.ContainsMatches(d, clauses)
		if want && !in {
			t.Fatalf("%s: %q (data %q) satisfies %#v but was not returned (got %q)", what, name, d, clauses, got)
		}
		if !want && in && regular(d) {
			t.Fatalf("%s: %q (data %q) does not satisfy %#v but was returned", what, name, d, clauses)
		}
	}
}

// testObjectQueryContains checks ObjectQuery.Contains: texts found
// without regard to ASCII case wherever they are in the data (after a
// zero byte, in bytes that are not UTF-8, with SQL wildcards), non-ASCII
// text byte for byte, NonASCII, several clauses and several texts, with
// a time range and component, paging counting only the objects selected,
// QueryAccounts, the clauses CanonicalQuery drops or refuses, and random
// data and clauses against store.ContainsMatches.
func testObjectQueryContains(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	book := mustCollection(t, s, "u", store.KindAddressBook, "contacts")
	data := map[string][]byte{}
	for name, d := range containsData {
		data[name] = []byte(d)
		_, err := s.PutObject(ctx, book.ID, store.Object{Name: name, UID: "uid-" + name, Component: "VCARD", Data: []byte(d)}, store.PutOptions{})
		ok(t, err, "PutObject(%s)", name)
	}
	query := func(q store.ObjectQuery) []string {
		t.Helper()
		var names []string
		for {
			objs, err := s.QueryObjects(ctx, book.ID, q)
			ok(t, err, "QueryObjects(%+v)", q)
			for _, o := range objs {
				eq(t, string(o.Data), containsData[o.Name], "data of %s", o.Name)
				names = append(names, o.Name)
			}
			if q.Limit == 0 || len(objs) < q.Limit {
				return names
			}
			q.After = objs[len(objs)-1].Name
		}
	}
	anyOf := func(texts ...string) store.ContainsClause { return store.ContainsClause{Any: texts} }
	for _, c := range []struct {
		clauses []store.ContainsClause
		want    string // the regular objects returned, exactly; "-" for none
	}{
		{[]store.ContainsClause{anyOf("zebra")}, "a b c"},
		{[]store.ContainsClause{anyOf("ZeBrA")}, "a b c"},
		{[]store.ContainsClause{anyOf("zebra", "\n ")}, "a b c f"},
		{[]store.ContainsClause{anyOf("zebra"), anyOf("crossing")}, "a"},
		{[]store.ContainsClause{anyOf("Иван")}, "d"},
		{[]store.ContainsClause{anyOf("ИВАН")}, "e"},
		{[]store.ContainsClause{anyOf("иван")}, "-"},
		{[]store.ContainsClause{anyOf("u\u0308")}, "h"},
		{[]store.ContainsClause{anyOf("\xe9\xff")}, "-"},
		{[]store.ContainsClause{anyOf("%")}, "k"},
		{[]store.ContainsClause{anyOf("_x_")}, "k"},
		{[]store.ContainsClause{anyOf("0%_")}, "-"},
		{[]store.ContainsClause{anyOf("\x00 then")}, "-"},
		{[]store.ContainsClause{anyOf("k\\s")}, "-"},
		{[]store.ContainsClause{{Any: []string{"plain"}, NonASCII: true}}, "d e h i l"},
		{[]store.ContainsClause{{NonASCII: true}}, "d e h i"},
		{[]store.ContainsClause{anyOf("nowhere")}, "-"},
		{[]store.ContainsClause{anyOf("")}, "a b c d e f h i k l"}, // an empty text: every object
	} {
		for _, limit := range []int{0, 1, 2} {
			q := store.ObjectQuery{Contains: c.clauses, Limit: limit}
			got := query(q)
			what := fmt.Sprintf("Contains %#v, Limit %d", c.clauses, limit)
			checkContains(t, what, data, c.clauses, got)
			regulars := regularNames(data, got)
			want := c.want
			if want == "-" {
				want = ""
			}
			eq(t, regulars, want, "%s", what)
			if !slices.IsSorted(got) {
				t.Fatalf("%s: not in name order: %q", what, got)
			}
		}
	}
	// With a component and a time range, in one step with Contains.
	eq(t, regularNames(data, query(store.ObjectQuery{Component: "VCARD", From: at(0), To: at(hour), Contains: []store.ContainsClause{anyOf("zebra")}})),
		"a b c", "Contains with a component and a range")
	eq(t, len(query(store.ObjectQuery{Component: "VEVENT", Contains: []store.ContainsClause{anyOf("zebra")}})), 0, "Contains with another component")

	if aq, is := s.(store.AccountsQuerier); is {
		var got []string
		err := aq.QueryAccounts(ctx, []string{"u"}, store.KindAddressBook, store.ObjectQuery{Contains: []store.ContainsClause{anyOf("ZEBRA")}},
			func(c *store.Collection, o *store.Object) error {
				got = append(got, o.Name)
				return nil
			})
		ok(t, err, "QueryAccounts with Contains")
		slices.Sort(got)
		eq(t, regularNames(data, got), "a b c", "QueryAccounts with Contains")
	}

	for what, q := range map[string]store.ObjectQuery{
		"a clause without texts": {Contains: []store.ContainsClause{{}}},
		"too many texts":         {Contains: []store.ContainsClause{{Any: make([]string, store.MaxContainsTexts+1)}}},
	} {
		if _, err := s.QueryObjects(ctx, book.ID, q); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("QueryObjects with %s: %v, want ErrInvalid", what, err)
		}
	}

	testContainsRandom(t, s)
}

// containsPieces are what testContainsRandom builds data and texts of.
var containsPieces = []string{"a", "B", "ab", "Zé", "é", "И", "и", "\x00", "%", "_", "\n ", "\\", "x", "\xe9", "1"}

// testContainsRandom stores objects of random data and checks random
// clauses against store.ContainsMatches (checkContains).
func testContainsRandom(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	rng := rand.New(rand.NewPCG(6352, 8))
	book, err := s.CreateCollection(ctx, store.Collection{Account: "u", Kind: store.KindAddressBook, Name: "random"})
	ok(t, err, "create random address book")
	piece := func() string { return containsPieces[rng.IntN(len(containsPieces))] }
	data := map[string][]byte{}
	for i := range 150 {
		var b strings.Builder
		for range rng.IntN(9) {
			b.WriteString(piece())
		}
		name := fmt.Sprintf("r%03d", i)
		data[name] = []byte(b.String())
		_, err := s.PutObject(ctx, book.ID, store.Object{Name: name, UID: name, Component: "VCARD", Data: data[name]}, store.PutOptions{})
		ok(t, err, "PutObject(%s)", name)
	}
	for range 60 {
		var clauses []store.ContainsClause
		for range 1 + rng.IntN(2) {
			var c store.ContainsClause
			for range 1 + rng.IntN(3) {
				c.Any = append(c.Any, piece()+strings.Repeat(piece(), rng.IntN(2)))
			}
			c.NonASCII = rng.IntN(4) == 0
			clauses = append(clauses, c)
		}
		objs, err := s.QueryObjects(ctx, book.ID, store.ObjectQuery{Contains: clauses})
		ok(t, err, "QueryObjects(Contains %#v)", clauses)
		var got []string
		for _, o := range objs {
			if string(o.Data) != string(data[o.Name]) {
				t.Fatalf("data of %s: %q, want %q", o.Name, o.Data, data[o.Name])
			}
			got = append(got, o.Name)
		}
		checkContains(t, fmt.Sprintf("Contains %#v", clauses), data, clauses, got)
	}
}
