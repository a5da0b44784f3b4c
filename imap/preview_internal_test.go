package imap

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"pgregory.net/rapid"
)

// TestPreviewSinkProperties: whatever texts a message holds, its preview
// is valid UTF-8 of at most 256 characters (RFC 8970), without
// leading, trailing or doubled spaces or any other whitespace, and it is
// the texts' words in order, joined by single spaces, as far as it goes.
func TestPreviewSinkProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		texts := rapid.SliceOfN(rapid.StringOf(rapid.SampledFrom([]rune{'a', 'я', ' ', '\t', '\n', '\r', '\x00', '\u00a0', '€', 0x1F600, utf8.RuneError})), 0, 6).Draw(t, "texts")
		chunk := rapid.IntRange(1, 7).Draw(t, "chunk")
		p := &previewSink{}
		for _, s := range texts {
			p.Next()
			for b := []byte(s); len(b) > 0; {
				n := min(chunk, len(b))
				p.Write(b[:n]) // a character split across writes stays whole
				b = b[n:]
			}
		}
		got := strings.TrimRightFunc(p.sb.String(), unicode.IsSpace)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > maxPreviewChars {
			t.Fatalf("preview %q: invalid or over %d characters", got, maxPreviewChars)
		}
		if strings.HasPrefix(got, " ") || strings.Contains(got, "  ") || strings.ContainsAny(got, "\t\r\n\x00\u00a0") {
			t.Fatalf("preview %q has stray whitespace or controls", got)
		}
		var words []string
		for _, s := range texts {
			for _, w := range strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) }) {
				words = append(words, strings.Map(func(r rune) rune {
					if unicode.IsGraphic(r) {
						return r
					}
					return -1
				}, w))
			}
		}
		all := strings.Join(strings.Fields(strings.Join(words, " ")), " ")
		if !strings.HasPrefix(all, got) {
			t.Fatalf("preview %q is not the start of the words %q", got, all)
		}
	})
}
