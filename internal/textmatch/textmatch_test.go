package textmatch

import (
	"errors"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		text, collation string
		mt              MatchType
		negate          bool
		value           string
		want            bool
	}{
		{"doe", "", "", false, "John DOE", true},
		{"DOE", "i;octet", "", false, "John Doe", false},
		{"Doe", "i;octet", "", false, "John Doe", true},
		{"john", "", StartsWith, false, "John Doe", true},
		{"doe", "", StartsWith, false, "John Doe", false},
		{"doe", "", EndsWith, false, "John Doe", true},
		{"john doe", "", Equals, false, "John Doe", true},
		{"john", "", Equals, false, "John Doe", false},
		{"doe", "", "", true, "John Doe", false},
		{"smith", "", "", true, "John Doe", true},
		// i;ascii-casemap leaves non-ASCII letters alone.
		{"müller", "", "", false, "MÜLLER", false},
		{"müller", "i;unicode-casemap", "", false, "MÜLLER", true},
		// NFKD: a precomposed and a decomposed ü are equal.
		{"mu\u0308ller", "i;unicode-casemap", Equals, false, "Müller", true},
		{"strasse", "i;unicode-casemap", Equals, false, "Straße", true},
		{"ΣΊΣΥΦΟΣ", "i;unicode-casemap", Equals, false, "Σίσυφος", true},
		// RFC 5051 titlecases: ı and i are both I; İ keeps its dot.
		{"IŞIK", "i;unicode-casemap", Equals, false, "Işık", true},
		{"YILMAZ", "i;unicode-casemap", Equals, false, "Yılmaz", true},
		{"istanbul", "i;unicode-casemap", Equals, false, "İstanbul", false},
		{"i\u0307stanbul", "i;unicode-casemap", Equals, false, "İSTANBUL", true},
	}
	for _, c := range cases {
		m, err := New(c.text, c.collation, c.mt, c.negate)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Match(c.value); got != c.want {
			t.Errorf("%q %s %s negate=%v on %q: %v, want %v", c.text, c.collation, c.mt, c.negate, c.value, got, c.want)
		}
	}
}

func TestUnsupported(t *testing.T) {
	if _, err := New("x", "i;basic", "", false); !errors.Is(err, ErrUnsupportedCollation) {
		t.Fatalf("err %v", err)
	}
	if _, err := New("x", "", "fuzzy", false); err == nil {
		t.Fatal("unknown match-type accepted")
	}
	if Supported("i;basic") || !Supported("i;octet") || !Supported("") {
		t.Fatal("Supported")
	}
}

// TestUnicodeFoldASCII: the ASCII shortcut gives what full folding and
// NFKD give, for every ASCII byte.
func TestUnicodeFoldASCII(t *testing.T) {
	var b []byte
	for c := 0; c < 0x80; c++ {
		b = append(b, byte(c))
	}
	s := string(b)
	if got, want := unicodeFold(s), norm.NFKD.String(cases.Fold().String(s)); got != want {
		t.Fatalf("shortcut %q, full %q", got, want)
	}
}
