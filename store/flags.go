package store

import (
	"fmt"
	"sort"
	"strings"
)

// MaxKeywordLen is the longest keyword, in bytes, the store accepts.
const MaxKeywordLen = 128

// systemFlags maps the lower-case form of each storable system flag to its
// canonical spelling.
var systemFlags = map[string]string{
	`\seen`:     FlagSeen,
	`\answered`: FlagAnswered,
	`\flagged`:  FlagFlagged,
	`\deleted`:  FlagDeleted,
	`\draft`:    FlagDraft,
}

// CanonicalFlag validates one flag and returns the form the store keeps.
//
// System flags are matched case-insensitively and returned in canonical
// form (`\seen` -> `\Seen`). `\Recent` is a session property, not a stored
// flag (RFC 9051 §2.3.2 removed it from the protocol; RFC 3501 never let
// clients set it), so it is ErrInvalid, as is any other backslash word
// (RFC 9051 §9 flag-extension is reserved for future system flags).
// Keywords must be an atom (RFC 9051 §9 flag-keyword = atom): ASCII
// characters other than SP, "(", ")", "{", "%", "*", DQUOTE, "\", "]" and
// controls, at most [MaxKeywordLen] bytes. Keywords keep their case.
func CanonicalFlag(f string) (string, error) {
	if f == "" {
		return "", fmt.Errorf("%w: empty flag", ErrInvalid)
	}
	if f[0] == '\\' {
		if c, ok := systemFlags[strings.ToLower(f)]; ok {
			return c, nil
		}
		return "", fmt.Errorf("%w: flag %q is not a storable system flag", ErrInvalid, f)
	}
	if len(f) > MaxKeywordLen {
		return "", fmt.Errorf("%w: keyword longer than %d bytes", ErrInvalid, MaxKeywordLen)
	}
	for i := 0; i < len(f); i++ {
		if !isAtomChar(f[i]) {
			return "", fmt.Errorf("%w: keyword %q contains %q, not allowed in an atom", ErrInvalid, f, f[i])
		}
	}
	return f, nil
}

// isAtomChar reports whether c is an ATOM-CHAR (RFC 9051 §9): any CHAR
// (%x01-7F) except atom-specials.
func isAtomChar(c byte) bool {
	if c <= 0x1f || c >= 0x7f { // CTL, DEL, and non-ASCII
		return false
	}
	switch c {
	case ' ', '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// NormalizeFlags canonicalises every flag with [CanonicalFlag] and returns
// them sorted and without duplicates. Duplicates are found
// case-insensitively (flags are case-insensitive on the wire, RFC 9051
// §2.3.2); the first spelling of a keyword wins. A nil or empty input
// gives an empty, non-nil result.
func NormalizeFlags(flags []string) ([]string, error) {
	out := make([]string, 0, len(flags))
	seen := make(map[string]bool, len(flags))
	for _, f := range flags {
		c, err := CanonicalFlag(f)
		if err != nil {
			return nil, err
		}
		k := strings.ToLower(c)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}
