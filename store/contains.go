package store

import (
	"bytes"
	"fmt"
)

// ContainsClause is one clause of ObjectQuery.Contains: an object's data
// satisfies it when it contains one of Any, ASCII letters compared
// without regard to case and every other byte as it is, or, with
// NonASCII, when it holds a multi-byte UTF-8 sequence (a byte 0xC0 or
// above followed by one from 0x80 to 0xBF) or a zero byte: where text
// has characters beyond ASCII, a caller's folding may make a match of
// them that no byte-wise search finds.
//
// The store gives the texts no meaning; a caller that matches objects by
// their content (an addressbook-query's text-matches) uses the clauses
// to read only the objects that may match, and matches those again.
type ContainsClause struct {
	Any      []string
	NonASCII bool
}

// MaxContainsTexts bounds the texts of all the clauses of one query.
const MaxContainsTexts = 64

// canonicalContains returns the clauses with their texts' ASCII letters
// in lower case and without the clauses every object satisfies (those
// holding an empty text), or ErrInvalid for a clause no object can
// satisfy (no text and not NonASCII) or more than MaxContainsTexts texts.
func canonicalContains(cs []ContainsClause) ([]ContainsClause, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	n := 0
	out := make([]ContainsClause, 0, len(cs))
	for _, c := range cs {
		if len(c.Any) == 0 && !c.NonASCII {
			return nil, fmt.Errorf("%w: a contains clause without texts selects nothing", ErrInvalid)
		}
		n += len(c.Any)
		if n > MaxContainsTexts {
			return nil, fmt.Errorf("%w: more than %d contains texts", ErrInvalid, MaxContainsTexts)
		}
		always := false
		folded := make([]string, len(c.Any))
		for i, s := range c.Any {
			always = always || s == ""
			folded[i] = string(asciiLower([]byte(s)))
		}
		if !always {
			out = append(out, ContainsClause{Any: folded, NonASCII: c.NonASCII})
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// ContainsMatches reports whether data satisfies every clause (see
// ContainsClause); no clause is satisfied by every data. It is the
// meaning of ObjectQuery.Contains, written out for backends that filter
// in Go and for tests.
func ContainsMatches(data []byte, clauses []ContainsClause) bool {
	if len(clauses) == 0 {
		return true
	}
	lower := asciiLower(data)
	for _, c := range clauses {
		if !clauseMatches(lower, c) {
			return false
		}
	}
	return true
}

func clauseMatches(lower []byte, c ContainsClause) bool {
	for _, s := range c.Any {
		if bytes.Contains(lower, asciiLower([]byte(s))) {
			return true
		}
	}
	return c.NonASCII && hasMultiByte(lower)
}

// hasMultiByte reports whether data holds a zero byte or a byte 0xC0 or
// above followed by one from 0x80 to 0xBF (see ContainsClause).
func hasMultiByte(data []byte) bool {
	for i, b := range data {
		if b == 0 || b >= 0xc0 && i+1 < len(data) && data[i+1]&0xc0 == 0x80 {
			return true
		}
	}
	return false
}

// asciiLower returns b with its ASCII upper-case letters in lower case,
// b itself when it has none.
func asciiLower(b []byte) []byte {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			out := bytes.Clone(b)
			for j := i; j < len(out); j++ {
				if c := out[j]; 'A' <= c && c <= 'Z' {
					out[j] = c + 'a' - 'A'
				}
			}
			return out
		}
	}
	return b
}
