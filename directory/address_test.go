package directory_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
)

func TestCanonicalAddressAccepts(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.com":              "alice@example.com",
		"Alice.Smith@EXAMPLE.Com":        "alice.smith@example.com",
		"bob+Tag@Example.com":            "bob+tag@example.com",
		"o'brien@mail-1.example.org":     "o'brien@mail-1.example.org",
		"!#$%&'*+-/=?^_`{|}~@x.y":        "!#$%&'*+-/=?^_`{|}~@x.y",
		"Ünïcødé@Bücher.example":         "ünïcødé@bücher.example",
		"用户@例子.广告":                       "用户@例子.广告",
		"a@localhost":                    "a@localhost",
		"x@123.example":                  "x@123.example",
		strings.Repeat("l", 64) + "@d.c": strings.Repeat("l", 64) + "@d.c",
	} {
		got, err := directory.CanonicalAddress(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

func TestCanonicalAddressRejects(t *testing.T) {
	long := strings.Repeat("a", 63) + "."
	for name, in := range map[string]string{
		"empty":              "",
		"no at":              "alice.example.com",
		"empty local":        "@example.com",
		"empty domain":       "alice@",
		"space":              "al ice@example.com",
		"tab":                "alice\t@example.com",
		"newline":            "alice@example.com\n",
		"nul":                "ali\x00ce@example.com",
		"del":                "ali\x7fce@example.com",
		"unicode space":      "ali\u00a0ce@example.com",
		"line separator":     "alice@exa\u2028mple.com",
		"invalid utf-8":      "ali\xffce@example.com",
		"quoted":             `"alice"@example.com`,
		"two ats":            "a@b@example.com",
		"source route":       "@relay.example:alice@example.com",
		"leading dot":        ".alice@example.com",
		"trailing dot":       "alice.@example.com",
		"double dot":         "al..ice@example.com",
		"address literal":    "alice@[192.0.2.1]",
		"domain trailing .":  "alice@example.com.",
		"domain empty label": "alice@example..com",
		"domain hyphen":      "alice@-example.com",
		"domain underscore":  "alice@ex_ample.com",
		"local 65":           strings.Repeat("l", 65) + "@example.com",
		"total 255":          "a@" + strings.Repeat(long, 3) + strings.Repeat("b", 255-2-3*64),
		"label 64":           "a@" + strings.Repeat("b", 64) + ".com",
		"brackets":           "<alice@example.com>",
		"comma":              "alice,bob@example.com",
	} {
		_, err := directory.CanonicalAddress(in)
		assert.ErrorIs(t, err, directory.ErrInvalid, "%s: %q", name, in)
	}
}

func TestAddressLengthLimit(t *testing.T) {
	// 64 + 1 + 189 = 254 octets: the longest valid address.
	domain := strings.Repeat("d", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("d", 61)
	addr := strings.Repeat("l", 64) + "@" + domain
	require.Len(t, addr, 254)
	_, err := directory.CanonicalAddress(addr)
	require.NoError(t, err)
	_, err = directory.CanonicalAddress("l" + addr)
	assert.ErrorIs(t, err, directory.ErrInvalid)
}

func TestParseAddressKeepsLocalCase(t *testing.T) {
	a, err := directory.ParseAddress("John.Doe+News@Example.COM")
	require.NoError(t, err)
	assert.Equal(t, "John.Doe+News", a.Local)
	assert.Equal(t, "example.com", a.Domain)
	assert.Equal(t, "John.Doe+News@example.com", a.String())
	assert.Equal(t, "john.doe+news@example.com", a.Canonical())
	base, tag, ok := a.Subaddress()
	assert.True(t, ok)
	assert.Equal(t, "john.doe", base)
	assert.Equal(t, "news", tag)
}

func TestSplitSubaddress(t *testing.T) {
	for _, c := range []struct {
		local, base, tag string
		ok               bool
	}{
		{"user+tag", "user", "tag", true},
		{"user+a+b", "user", "a+b", true},
		{"user+", "user", "", true},
		{"+tag", "+tag", "", false},
		{"user", "user", "", false},
	} {
		base, tag, ok := directory.SplitSubaddress(c.local)
		assert.Equal(t, []any{c.base, c.tag, c.ok}, []any{base, tag, ok}, c.local)
	}
}

// FuzzCanonicalAddress checks that any input either fails with ErrInvalid
// or yields a canonical address that is within the limits, lowercase,
// free of whitespace, and a fixed point of CanonicalAddress.
func FuzzCanonicalAddress(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "Bob+tag@EXAMPLE.com", "用户@例子.广告", `"q"@x.y`,
		"a@[1.2.3.4]", "@a:b@c", "x@y.", "İ@x.y", "\u212a@x.y", "a..b@c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := directory.CanonicalAddress(in)
		if err != nil {
			if !errors.Is(err, directory.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if len(c) > directory.MaxAddressLength || !utf8.ValidString(c) {
			t.Fatalf("canonical %q breaks the limits", c)
		}
		if strings.ToLower(c) != c || strings.ContainsAny(c, " \t\r\n\x00") {
			t.Fatalf("canonical %q is not lowercase or holds whitespace", c)
		}
		at := strings.LastIndexByte(c, '@')
		if at <= 0 || at > directory.MaxLocalLength || strings.Count(c, "@") != 1 {
			t.Fatalf("canonical %q has a bad local part", c)
		}
		again, err := directory.CanonicalAddress(c)
		if err != nil || again != c {
			t.Fatalf("canonical %q is not a fixed point: %q, %v", c, again, err)
		}
	})
}

// TestCanonicalDomain covers the domain half of the canonicaliser: case
// folded with Unicode rules (U-labels are kept as UTF-8, RFC 6531), no
// trailing root dot, no address literals.
func TestCanonicalDomain(t *testing.T) {
	for in, want := range map[string]string{
		"EXAMPLE.com":           "example.com",
		"Mail-1.Example.ORG":    "mail-1.example.org",
		"Bücher.Example":        "bücher.example",
		"ÄÖÜ.DE":                "äöü.de",
		"XN--BCHER-KVA.example": "xn--bcher-kva.example",
		"例子.广告":                 "例子.广告",
		"localhost":             "localhost",
	} {
		got, err := directory.CanonicalDomain(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for name, in := range map[string]string{
		"empty":                 "",
		"trailing dot":          "example.com.",
		"root":                  ".",
		"leading dot":           ".example.com",
		"address literal":       "[192.0.2.1]",
		"ipv6 literal":          "[IPv6:2001:db8::1]",
		"space":                 "exa mple.com",
		"symbol":                "☃.example",
		"ideographic full stop": "例子。广告",
		"underscore":            "_dmarc.example.com",
		"invalid utf-8":         "ex\xffample.com",
		"label 64":              strings.Repeat("b", 64) + ".com",
		"too long":              strings.Repeat("a.", 128) + "com",
	} {
		_, err := directory.CanonicalDomain(in)
		assert.ErrorIs(t, err, directory.ErrInvalid, "%s: %q", name, in)
	}
}

// TestCanonicalIDNFormAsGiven pins down that the canonicaliser does not
// apply IDNA (RFC 5891): the U-label and the A-label ("xn--") spelling of
// one name are different keys. The directory stores addresses under the
// canonical form, so mapping one spelling to the other would orphan every
// record stored under it; a domain that must be reached under both is
// hosted with the other spelling as an alternative name.
func TestCanonicalIDNFormAsGiven(t *testing.T) {
	u, err := directory.CanonicalAddress("Info@BÜCHER.example")
	require.NoError(t, err)
	a, err := directory.CanonicalAddress("Info@xn--bcher-kva.example")
	require.NoError(t, err)
	assert.Equal(t, "info@bücher.example", u)
	assert.Equal(t, "info@xn--bcher-kva.example", a)
	assert.NotEqual(t, u, a)
}

// TestCanonicalUnicodeCase: the local part is folded with strings.ToLower,
// so Unicode upper case reaches the same mailbox as lower case, including
// the characters whose lower case is an ASCII letter (KELVIN SIGN).
func TestCanonicalUnicodeCase(t *testing.T) {
	for in, want := range map[string]string{
		"ÉLODIE@example.fr": "élodie@example.fr",
		"\u212a@x.example":  "k@x.example", // KELVIN SIGN -> k
		"ẞ@x.example":       "ß@x.example", // capital sharp s
		"ΣΊΣΥΦΟΣ@x.gr":      "σίσυφοσ@x.gr",
	} {
		got, err := directory.CanonicalAddress(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

// TestCanonicalRefusesQuotedLocalParts: a quoted local part is valid on
// the wire (RFC 5321 §4.1.2) but names no hosted mailbox, and quoting is
// how open-relay tricks hide a second address; the canonicaliser refuses
// every form of it.
func TestCanonicalRefusesQuotedLocalParts(t *testing.T) {
	for _, in := range []string{
		`"alice"@example.com`,
		`"john smith"@example.com`,
		`"bob@remote.example"@example.com`,
		`"a\"b"@example.com`,
		`alice"@example.com`,
	} {
		_, err := directory.CanonicalAddress(in)
		assert.ErrorIs(t, err, directory.ErrInvalid, in)
	}
}

func TestCanonicalIn(t *testing.T) {
	a, err := directory.ParseAddress("John.Doe+News@Alt.Example")
	require.NoError(t, err)
	assert.Equal(t, "john.doe+news", a.CanonicalLocal())
	assert.Equal(t, "john.doe+news@main.example", a.CanonicalIn("main.example"))
	assert.Equal(t, a.Canonical(), a.CanonicalIn(a.Domain))
	assert.Equal(t, "John.Doe+News@alt.example", a.String(), "the local part keeps its case for relaying (RFC 5321 §2.4)")
}
