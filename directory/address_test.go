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
