package store

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCanonicalFlag(t *testing.T) {
	ok := map[string]string{
		`\seen`:                            FlagSeen,
		`\SEEN`:                            FlagSeen,
		`\Answered`:                        FlagAnswered,
		`\fLaGgEd`:                         FlagFlagged,
		`\deleted`:                         FlagDeleted,
		`\DRAFT`:                           FlagDraft,
		`$Junk`:                            `$Junk`,
		`$junk`:                            `$junk`,
		`NonJunk`:                          `NonJunk`,
		`a.b-c_d+e`:                        `a.b-c_d+e`,
		`[x`:                               `[x`,
		strings.Repeat("k", MaxKeywordLen): strings.Repeat("k", MaxKeywordLen),
	}
	for in, want := range ok {
		got, err := CanonicalFlag(in)
		if err != nil || got != want {
			t.Errorf("CanonicalFlag(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", `\Recent`, `\recent`, `\Unknown`, `\`, "a b", "a(b", "a)", "{1}", "50%", "a*",
		`a"b`, `a\b`, "a]", "tab\there", "nul\x00", "del\x7f", "caf\u00e9",
		strings.Repeat("k", MaxKeywordLen+1),
	}
	for _, in := range bad {
		if got, err := CanonicalFlag(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("CanonicalFlag(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestNormalizeFlags(t *testing.T) {
	got, err := NormalizeFlags([]string{"$b", `\seen`, "$A", `\SEEN`, "$a", "$B", `\Deleted`})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"$A", "$b", FlagDeleted, FlagSeen}
	if !slices.Equal(got, want) {
		t.Fatalf("NormalizeFlags = %q, want %q", got, want)
	}
	if got, err := NormalizeFlags(nil); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("NormalizeFlags(nil) = %#v, %v; want empty non-nil", got, err)
	}
	if _, err := NormalizeFlags([]string{FlagSeen, `\Recent`}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("NormalizeFlags with \\Recent: %v, want ErrInvalid", err)
	}
}

func FuzzCanonicalFlag(f *testing.F) {
	for _, s := range []string{`\Seen`, `\recent`, "$Junk", "a b", "", `\`, "x]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CanonicalFlag(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// A canonical flag is a fixed point and is printable ASCII.
		if c2, err := CanonicalFlag(c); err != nil || c2 != c {
			t.Fatalf("CanonicalFlag(%q) = %q, %v; not a fixed point", c, c2, err)
		}
		if !strings.EqualFold(c, s) || !utf8.ValidString(c) {
			t.Fatalf("CanonicalFlag(%q) = %q changed more than case", s, c)
		}
		for i := 0; i < len(c); i++ {
			if c[i] <= ' ' || c[i] >= 0x7f {
				t.Fatalf("CanonicalFlag(%q) = %q contains %#x", s, c, c[i])
			}
		}
		n, err := NormalizeFlags([]string{s, strings.ToUpper(s), c})
		if err != nil || len(n) != 1 {
			t.Fatalf("NormalizeFlags of spellings of %q = %q, %v; want one flag", s, n, err)
		}
	})
}
