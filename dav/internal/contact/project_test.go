package contact

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	"github.com/emersion/go-vcard"
)

func TestProjectRFC(t *testing.T) {
	book := loadBook(t)
	src := book["cyrus.vcf"].VCard()
	// RFC 6352 §8.6.4 asks for VERSION, UID, NICKNAME, EMAIL and FN.
	got := Project(src, []string{"VERSION", "UID", "NICKNAME", "EMAIL", "FN"})
	keys := slices.Sorted(maps.Keys(got))
	if want := []string{"EMAIL", "FN", "NICKNAME", "UID", "VERSION"}; !slices.Equal(keys, want) {
		t.Fatalf("properties %v, want %v", keys, want)
	}
	var buf bytes.Buffer
	if err := vcard.NewEncoder(&buf).Encode(got); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(buf.Bytes(), Limits{}); err == nil {
		t.Fatal("a 3.0 card without N parsed") // the projection is a view, not a resource
	}
	want := "BEGIN:VCARD\r\nVERSION:3.0\r\nEMAIL;TYPE=INTERNET;TYPE=PREF:cyrus@example.com\r\nFN:Cyrus Daboo\r\nNICKNAME:me\r\nUID:1234-5678-9000-1\r\nEND:VCARD\r\n"
	if buf.String() != want {
		t.Errorf("encoded\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestProject(t *testing.T) {
	book := loadBook(t)
	eric := book["eric.vcf"].VCard()
	cases := []struct {
		name  string
		props []string
		want  map[string]int // property -> instances
	}{
		{"VERSION always kept", []string{"fn"}, map[string]int{"VERSION": 1, "FN": 1}},
		{"UID not added", []string{"EMAIL"}, map[string]int{"VERSION": 1, "EMAIL": 2}},
		{"group selects its instances", []string{"item2.EMAIL"}, map[string]int{"VERSION": 1, "EMAIL": 1}},
		{"named twice, returned once", []string{"EMAIL", "item1.EMAIL", "email"}, map[string]int{"VERSION": 1, "EMAIL": 2}},
		{"unknown property", []string{"X-NOPE", "BDAY"}, map[string]int{"VERSION": 1}},
		{"empty group", []string{".EMAIL"}, map[string]int{"VERSION": 1}},
		{"all", nil, map[string]int{"VERSION": 1, "FN": 1, "N": 1, "EMAIL": 2, "X-ABLABEL": 1, "NICKNAME": 1, "ORG": 1, "UID": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Project(eric, tc.props)
			counts := map[string]int{}
			for k, v := range got {
				counts[k] = len(v)
			}
			if !maps.Equal(counts, tc.want) {
				t.Errorf("got %v, want %v", counts, tc.want)
			}
		})
	}
	// The projection shares nothing with its source.
	p := Project(eric, []string{"EMAIL"})
	p["EMAIL"][0].Value = "changed"
	p["EMAIL"][0].Params["TYPE"][0] = "changed"
	if e := eric["EMAIL"][0]; e.Value == "changed" || e.Params["TYPE"][0] == "changed" {
		t.Fatal("Project shares fields with its input")
	}
	if got := Project(eric, []string{"item2.EMAIL"})["EMAIL"][0].Value; got != "daboo-fan@example.org" {
		t.Fatalf("item2.EMAIL = %q", got)
	}
}
