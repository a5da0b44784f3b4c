// Package textgen makes the filler text of the benchmarks' generated
// messages: deterministic for a given random source, so both sides of a
// comparison get the same bytes.
package textgen

import (
	"math/rand/v2"
	"strings"
)

var words = strings.Fields(`lorem ipsum dolor sit amet consectetur adipiscing
elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad
minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea
commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum
fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa
qui officia deserunt mollit anim id est laborum mailyard invoice meeting
quarterly report schedule project release migration calendar`)

// Text returns at least n bytes of words in CRLF lines of at most 72
// characters, ending with CRLF.
func Text(r *rand.Rand, n int) string {
	var b strings.Builder
	col := 0
	for b.Len() < n {
		w := words[r.IntN(len(words))]
		if col+len(w) > 72 {
			b.WriteString("\r\n")
			col = 0
		} else if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	b.WriteString("\r\n")
	return b.String()
}

// Base64Lines returns n random base64 characters in CRLF lines of 76, as
// an attachment's encoded body looks.
func Base64Lines(r *rand.Rand, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b strings.Builder
	b.Grow(n + n/76*2 + 2)
	for i := 0; i < n; i++ {
		b.WriteByte(alphabet[r.IntN(64)])
		if i%76 == 75 {
			b.WriteString("\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// Mix says which bodies WriteBody draws: PlainPct percent text/plain,
// AltPct percent multipart/alternative (the same text as plain and HTML),
// the rest multipart/mixed with a short text and a base64 attachment.
// Each size range is {minimum, random extra} in bytes.
type Mix struct {
	PlainPct, AltPct   int
	Plain, Alt         [2]int
	AttachText, Attach [2]int
}

// WriteBody writes the MIME-Version and Content-Type header fields, the
// blank line and a body drawn from m.
func WriteBody(b *strings.Builder, r *rand.Rand, m Mix) {
	size := func(s [2]int) int { return s[0] + r.IntN(s[1]) }
	b.WriteString("MIME-Version: 1.0\r\n")
	switch k := r.IntN(100); {
	case k < m.PlainPct:
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
		b.WriteString(Text(r, size(m.Plain)))
	case k < m.PlainPct+m.AltPct:
		b.WriteString("Content-Type: multipart/alternative; boundary=\"alt-b\"\r\n\r\n")
		body := Text(r, size(m.Alt))
		b.WriteString("--alt-b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
		b.WriteString(body)
		b.WriteString("--alt-b\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<html><body><p>")
		b.WriteString(body)
		b.WriteString("</p></body></html>\r\n--alt-b--\r\n")
	default:
		b.WriteString("Content-Type: multipart/mixed; boundary=\"mix-b\"\r\n\r\n")
		b.WriteString("--mix-b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
		b.WriteString(Text(r, size(m.AttachText)))
		b.WriteString("--mix-b\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n")
		b.WriteString("Content-Disposition: attachment; filename=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		b.WriteString(Base64Lines(r, size(m.Attach)))
		b.WriteString("--mix-b--\r\n")
	}
}
