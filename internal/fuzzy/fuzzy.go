// Package fuzzy is the approximate word matching of IMAP SEARCH FUZZY
// (RFC 6203): how a query word matches a word of a message, and the
// relevancy score (1 to 100, RFC 6203 §4) that follows. The store's
// word index (store/sqlite) and the IMAP server's scan of messages the
// index does not hold use it, so that both find the same messages.
//
// The rules, for a query word q (a word as [Words] splits it: letters
// and digits, lower-cased) and a word t of the text:
//
//  1. t equal to q is an Exact match;
//  2. t starting with q, q at least [MinPrefix] runes long, is a Prefix
//     match ("meet" finds "meeting");
//  3. t within [MaxEdits] of q (edits: a rune inserted, deleted or
//     replaced, or two adjacent runes swapped: the optimal string
//     alignment distance), with the same first rune, is an Edit1 or
//     Edit2 match ("mesage" and "massage" find "message"). A typing
//     error in the first letter is not corrected: that keeps the words
//     an index must compare to those under one letter.
//
// A query of several words matches a text that matches each of them
// (anywhere, in any order). Its score is the mean of the words' best
// matches' weights (Exact 100, Prefix 80, Edit1 70, Edit2 50).
package fuzzy

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Match is how well a text word matches a query word; a larger Match
// is better, None is no match.
type Match uint8

// Matches, worst first.
const (
	None Match = iota
	Edit2
	Edit1
	Prefix
	Exact
)

// MinPrefix is the shortest query word, in runes, that matches longer
// words starting with it.
const MinPrefix = 3

// MaxWords bounds the words of one search's fuzzy keys: each costs an
// index look-up (store/sqlite) or a comparison with every word read.
const MaxWords = 16

// MaxWordRunes bounds a word's length for the edit distance (longer
// words only match exactly or by prefix); no natural word is longer.
const MaxWordRunes = 64

// MaxEdits is how many edits a word may be from a query word of n
// runes: none below 4 runes (too many short words are one edit apart),
// one up to 7, two from 8.
func MaxEdits(n int) int {
	switch {
	case n < 4:
		return 0
	case n < 8:
		return 1
	default:
		return 2
	}
}

// Weight is the part of a score a word's match gives, 0 to 100.
func (m Match) Weight() int {
	switch m {
	case Exact:
		return 100
	case Prefix:
		return 80
	case Edit1:
		return 70
	case Edit2:
		return 50
	}
	return 0
}

// Words splits s into words: maximal runs of letters and digits
// (Unicode categories L and N), lower-cased rune by rune.
func Words(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, lower(s[start:i]))
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, lower(s[start:]))
	}
	return out
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) }

func lower(w string) string { return strings.Map(unicode.ToLower, w) }

// Compare returns how the text word t matches the query word q, both as
// Words gives them.
func Compare(q, t string) Match {
	if q == t {
		return Exact
	}
	if q == "" || t == "" {
		return None
	}
	qr, tr := []rune(q), []rune(t)
	if len(qr) >= MinPrefix && strings.HasPrefix(t, q) {
		return Prefix
	}
	k := MaxEdits(len(qr))
	if k == 0 || qr[0] != tr[0] || len(qr) > MaxWordRunes || len(tr) > MaxWordRunes {
		return None
	}
	if d := len(qr) - len(tr); d > k || -d > k {
		return None
	}
	switch Distance(qr, tr, k) {
	case 1:
		return Edit1
	case 2:
		if k >= 2 {
			return Edit2
		}
	}
	return None
}

// Distance is the optimal string alignment distance of a and b (the
// Levenshtein distance with a swap of two adjacent runes counted as one
// edit), or max+1 if it is above max.
func Distance(a, b []rune, max int) int {
	if d := len(a) - len(b); d > max || -d > max {
		return max + 1
	}
	// Three rows of the dynamic programme: i-2, i-1, i.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], max+1)
}

// Score is the relevancy score (RFC 6203 §4: 1 to 100, 100 the most
// relevant) of a text whose best matches of a query's words are best:
// the mean of their weights, at least 1. A query without words scores
// 100.
func Score(best []Match) int {
	if len(best) == 0 {
		return 100
	}
	sum := 0
	for _, m := range best {
		sum += m.Weight()
	}
	return max(1, int(math.Round(float64(sum)/float64(len(best)))))
}

// Matched reports whether every query word has a match in best.
func Matched(best []Match) bool {
	for _, m := range best {
		if m == None {
			return false
		}
	}
	return true
}

// Best returns, for each query word, its best match among the words of
// text.
func Best(query []string, text string) []Match {
	best := make([]Match, len(query))
	for _, t := range Words(text) {
		note(query, best, t)
	}
	return best
}

func note(query []string, best []Match, t string) {
	for i, q := range query {
		if best[i] < Exact {
			best[i] = max(best[i], Compare(q, t))
		}
	}
}

// Scanner is an io.Writer that splits what is written to it into words
// and keeps, for each query word, its best match among them. Writes
// may cut words and UTF-8 sequences anywhere. Next ends a text: no word
// spans two texts.
type Scanner struct {
	query []string
	best  []Match
	word  []byte // the word being read, raw
	tail  []byte // an incomplete UTF-8 sequence
}

// NewScanner returns a Scanner for the query words.
func NewScanner(query []string) *Scanner {
	return &Scanner{query: query, best: make([]Match, len(query))}
}

// Best returns each query word's best match so far; the slice is the
// Scanner's.
func (s *Scanner) Best() []Match { return s.best }

func (s *Scanner) Write(p []byte) (int, error) {
	n := len(p)
	if len(s.query) == 0 {
		return n, nil
	}
	if old := len(s.tail); old > 0 {
		buf := append(s.tail, p[:min(utf8.UTFMax-old, len(p))]...)
		if !utf8.FullRune(buf) {
			s.tail = buf // still cut: p was all of it
			return n, nil
		}
		r, size := utf8.DecodeRune(buf)
		s.rune(r, buf[:size])
		// An invalid sequence decodes one byte of the tail; the rest of
		// the tail is dropped with it.
		p = p[max(size-old, 0):]
		s.tail = buf[:0]
	}
	for len(p) > 0 {
		if !utf8.FullRune(p) {
			s.tail = append(s.tail[:0], p...)
			break
		}
		r, size := utf8.DecodeRune(p)
		s.rune(r, p[:size])
		p = p[size:]
	}
	return n, nil
}

func (s *Scanner) rune(r rune, raw []byte) {
	if isWordRune(r) {
		if len(s.word) < (MaxWordRunes+1)*utf8.UTFMax {
			s.word = append(s.word, raw...)
		}
		return
	}
	s.endWord()
}

func (s *Scanner) endWord() {
	if len(s.word) > 0 {
		note(s.query, s.best, lower(string(s.word)))
		s.word = s.word[:0]
	}
}

// Next ends the current text.
func (s *Scanner) Next() {
	s.tail = s.tail[:0]
	s.endWord()
}

// Close ends the last text.
func (s *Scanner) Close() error {
	s.Next()
	return nil
}
