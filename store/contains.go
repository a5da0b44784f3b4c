package store

import (
	"bytes"
	"fmt"
)

// ContainsClause is one clause of ObjectQuery.Contains: an object's data
// satisfies it when its bytes before the first zero byte (all of them if
// there is none) contain one of Any, ASCII letters compared without
// regard to case and every other byte as it is, or, with NonASCII, when
// it holds a multi-byte UTF-8 sequence (a byte 0xC0 or above followed by
// one from 0x80 to 0xBF) or a zero byte: where text has characters
// beyond ASCII, a caller's folding may make a match of them that no
// byte-wise search finds. (The zero byte ends the text as it ends
// SQLite's LIKE; text formats such as vCard have none.)
//
// The store gives the texts no meaning; a caller that matches objects by
// their content (an addressbook-query's text-matches) uses the clauses
// to read only the objects that may match, and matches those again.
type ContainsClause struct {
	Any      []string
	NonASCII bool
}

// MaxContainsTexts bounds the texts of all the clauses of one query,
// and MaxContainsTextLen each text, in bytes.
const (
	MaxContainsTexts   = 64
	MaxContainsTextLen = 1024
)

// canonicalContains returns the clauses with their texts' ASCII letters
// in lower case and without the clauses every object satisfies (those
// holding an empty text), or ErrInvalid for a clause no object can
// satisfy (no text and not NonASCII), more than MaxContainsTexts texts
// or a text longer than MaxContainsTextLen.
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
			if len(s) > MaxContainsTextLen {
				return nil, fmt.Errorf("%w: a contains text of %d bytes (at most %d)", ErrInvalid, len(s), MaxContainsTextLen)
			}
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
	text := data
	if i := bytes.IndexByte(data, 0); i >= 0 {
		text = data[:i]
	}
	lower := asciiLower(text)
	for _, c := range clauses {
		if !clauseMatches(data, lower, c) {
			return false
		}
	}
	return true
}

// clauseMatches tells whether data, whose text before its first zero
// byte is lower with ASCII letters in lower case, satisfies c.
func clauseMatches(data, lower []byte, c ContainsClause) bool {
	for _, s := range c.Any {
		if bytes.Contains(lower, asciiLower([]byte(s))) {
			return true
		}
	}
	return c.NonASCII && hasMultiByte(data)
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
