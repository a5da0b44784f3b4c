package contact

import (
	"bytes"
	"errors"
	"testing"

	"github.com/emersion/go-vcard"

	"github.com/mailyard/mailyard/internal/textmatch"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, must
// refuse with a known precondition or return a card that holds the
// invariants Parse promises, and Match, Project and re-encoding must
// work on whatever it accepts.
func FuzzParse(f *testing.F) {
	for _, data := range bookCards {
		f.Add(data)
	}
	seeds := []string{
		"",
		"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:a\r\nUID:1\r\nEND:VCARD\r\n",
		"BEGIN:VCARD\nVERSION:3.0\nN:a;b;;;\nFN:a\n b\nUID:1\nitem1.EMAIL;TYPE=\"x,y\":a@b\nEND:VCARD\n",
		"BEGIN:VCARD\r\nVERSION:2.1\r\nN;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;;;;\r\nFN:a\r\nUID:1\r\nEND:VCARD\r\n",
		"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:a\r\nUID:1\r\nEND:VCARD\r\nBEGIN:VCARD\r\nEND:VCARD\r\n",
		"BEGIN:VCARD\r\nBEGIN:VCARD\r\nEND:VCARD\r\nEND:VCARD\r\n",
		"BEGIN:VCARD\r\nVERSION:4.0\r\nFN;X=\"a:b\";Y=c,d:x\\,y\\n\r\nUID;\r\nEND:VCARD",
		"garbage\x00\xff",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	m, err := textmatch.New("a", "i;unicode-casemap", textmatch.Contains, false)
	if err != nil {
		f.Fatal(err)
	}
	filter := Filter{Props: []PropFilter{
		{Name: "FN", TextMatches: []*textmatch.Matcher{m}},
		{Name: "item1.EMAIL", AllOf: true, Params: []ParamFilter{{Name: "TYPE", TextMatch: m}, {Name: "PREF", IsNotDefined: true}}},
		{Name: "N", IsNotDefined: true},
	}}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, Limits{MaxSize: 8192, MaxProperties: 100})
		if err != nil {
			var pe *PreconditionError
			if !errors.As(err, &pe) || c != nil {
				t.Fatalf("error %v (card %v) is not a bare *PreconditionError", err, c)
			}
			switch pe.Name {
			case ValidAddressData, SupportedAddressData, MaxResourceSize:
			default:
				t.Fatalf("unknown precondition %q", pe.Name)
			}
			return
		}
		card := c.VCard()
		if c.UID() == "" || (c.Version() != "3.0" && c.Version() != "4.0") || len(card["FN"]) == 0 || len(data) > 8192 {
			t.Fatalf("accepted a card breaking the invariants: UID %q version %q", c.UID(), c.Version())
		}
		_ = c.Match(filter)
		p := Project(card, []string{"fn", "item1.email", "UID"})
		if len(p["VERSION"]) != 1 {
			t.Fatal("projection lost VERSION")
		}
		var buf bytes.Buffer
		if err := vcard.NewEncoder(&buf).Encode(p); err != nil {
			t.Fatalf("projection does not encode: %v", err)
		}
	})
}
