package postgres

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// The trigram index of text_docs is on words, each word of an entry's
// header and body once (migrations/0010_text_words.sql): pg_trgm then
// makes the trigrams of every word once, not of every occurrence. It
// narrows a search to the entries that hold each of the pattern's words
// as the pattern has them (wordPatterns), and the pattern itself is
// checked against header and body: the answer is exact.

// isWordByte reports whether b belongs to a word: every byte but the
// ASCII ones other than letters and digits. Bytes of multi-byte UTF-8
// sequences are all word bytes, so the split is the same whatever a
// Unicode table says, in Go or in PostgreSQL (mailyard_text_words).
func isWordByte(b byte) bool {
	return b >= 0x80 || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// textWords is an entry's words column: the distinct words of header
// and body, sorted bytewise, each between spaces (" ab cd "), or ""
// when there are none. mailyard_text_words computes the same in SQL.
func textWords(header, body string) string {
	seen := map[string]struct{}{}
	var words []string
	n := 0
	for _, s := range []string{header, body} {
		eachWord(s, func(i, j int) {
			w := s[i:j]
			if _, ok := seen[w]; !ok {
				seen[w] = struct{}{}
				words = append(words, w)
				n += len(w) + 1
			}
		})
	}
	if len(words) == 0 {
		return ""
	}
	slices.Sort(words)
	var b strings.Builder
	b.Grow(n + 1)
	for _, w := range words {
		b.WriteByte(' ')
		b.WriteString(w)
	}
	b.WriteByte(' ')
	return b.String()
}

// wordPatterns are the LIKE patterns that the words column of every
// entry whose header or body contains v matches: one per word of v,
// bounded by a space where v has something other than a word byte
// next to it. A word at an end of v may continue in the text ("oba"
// in "foobar"), so it is not bounded there.
func wordPatterns(v string) []string {
	var ps []string
	eachWord(v, func(i, j int) {
		// Without a bound, a word of fewer than three characters has no
		// trigram to look for: it would narrow nothing.
		if i == 0 && j == len(v) && utf8.RuneCountInString(v) < 3 {
			return
		}
		p := "%"
		if i > 0 {
			p += " "
		}
		p += v[i:j] // word bytes hold none of LIKE's special characters
		if j < len(v) {
			p += " "
		}
		ps = append(ps, p+"%")
	})
	return ps
}

// eachWord calls fn with the bounds of each word of s, in order.
func eachWord(s string, fn func(i, j int)) {
	for i := 0; i < len(s); {
		for i < len(s) && !isWordByte(s[i]) {
			i++
		}
		j := i
		for j < len(s) && isWordByte(s[j]) {
			j++
		}
		if j > i {
			fn(i, j)
		}
		i = j
	}
}
