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
