package contact

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-vcard"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/textmatch"
)

// benchBook returns n parsed cards shaped like a company directory: FN,
// N, two EMAILs (one grouped), two TELs, ORG, TITLE.
func benchBook(b *testing.B, n int) []*Card {
	b.Helper()
	cards := make([]*Card, 0, n)
	surnames := []string{"Smith", "Müller", "García", "Nguyen", "Ivanova", "O'Brien", "Kowalski", "Tanaka"}
	for i := range n {
		e := directory.GALEntry{
			Kind: directory.KindUser, ID: fmt.Sprintf("u%05d", i),
			Address:     fmt.Sprintf("user%05d@example.com", i),
			Aliases:     []string{fmt.Sprintf("alias%05d@example.org", i)},
			GivenName:   fmt.Sprintf("Given%d", i),
			Surname:     surnames[i%len(surnames)],
			DisplayName: fmt.Sprintf("Given%d %s", i, surnames[i%len(surnames)]),
			Title:       "Engineer", Company: "Example", Department: fmt.Sprintf("Dept %d", i%40),
			Phone: fmt.Sprintf("+1 555 %04d", i), Mobile: fmt.Sprintf("+1 556 %04d", i),
		}
		var buf bytes.Buffer
		if err := vcard.NewEncoder(&buf).Encode(FromGAL(e, nil)); err != nil {
			b.Fatal(err)
		}
		c, err := Parse(buf.Bytes(), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		cards = append(cards, c)
	}
	return cards
}

// BenchmarkMatch10k runs an addressbook-query over 10,000 cards: the
// search a client sends when the user types a name (FN or EMAIL or N
// contains, i;unicode-casemap) and the same under the default
// i;ascii-casemap. ns/card is the cost per card.
func BenchmarkMatch10k(b *testing.B) {
	cards := benchBook(b, 10000)
	for _, collation := range []string{"i;ascii-casemap", "i;unicode-casemap", "i;octet"} {
		b.Run(collation, func(b *testing.B) {
			m, err := textmatch.New("MÜLLER", collation, textmatch.Contains, false)
			if err != nil {
				b.Fatal(err)
			}
			f := Filter{Props: []PropFilter{
				{Name: "FN", TextMatches: []*textmatch.Matcher{m}},
				{Name: "EMAIL", TextMatches: []*textmatch.Matcher{m}},
				{Name: "N", TextMatches: []*textmatch.Matcher{m}},
			}}
			b.ReportAllocs()
			iters, hits := 0, 0
			start := time.Now()
			for b.Loop() {
				hits = 0
				for _, c := range cards {
					if c.Match(f) {
						hits++
					}
				}
				iters++
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(iters*len(cards)), "ns/card")
			// "MÜLLER" is one surname in eight, written "Müller": only
			// i;unicode-casemap folds the Ü.
			if want := map[string]int{"i;unicode-casemap": len(cards) / 8}[collation]; hits != want {
				b.Fatalf("%d hits under %s, want %d", hits, collation, want)
			}
		})
	}
}

// BenchmarkParse measures Parse of one directory-shaped card.
func BenchmarkParse(b *testing.B) {
	var buf bytes.Buffer
	e := directory.GALEntry{Kind: directory.KindUser, ID: "u1", Address: "a@example.com", DisplayName: "A B", GivenName: "A", Surname: "B", Phone: "1", Title: "T", Company: "C"}
	if err := vcard.NewEncoder(&buf).Encode(FromGAL(e, pngPixel)); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
