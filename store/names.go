package store

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxMailboxNameLen is the longest mailbox name, in bytes, the store
// accepts.
const MaxMailboxNameLen = 1024

// CleanMailboxName validates a mailbox name and returns its canonical form.
//
// "INBOX" is case-insensitive (RFC 9051 §5.1), also as the first segment of
// a path: "inbox" -> "INBOX", "Inbox/x" -> "INBOX/x". Other segments keep
// their case. The name must be valid UTF-8 (RFC 9051 §5.1 uses UTF-8
// mailbox names), at most [MaxMailboxNameLen] bytes, must not be empty,
// start or end with [Separator], contain an empty segment ("a//b"), or
// contain control characters (NUL, CR, LF and the other C0 controls and
// DEL, which no client can send unquoted). Errors wrap ErrInvalid.
func CleanMailboxName(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("%w: empty mailbox name", ErrInvalid)
	case len(name) > MaxMailboxNameLen:
		return "", fmt.Errorf("%w: mailbox name longer than %d bytes", ErrInvalid, MaxMailboxNameLen)
	case !utf8.ValidString(name):
		return "", fmt.Errorf("%w: mailbox name is not valid UTF-8", ErrInvalid)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("%w: mailbox name contains control character %#x", ErrInvalid, c)
		}
	}
	if strings.HasPrefix(name, Separator) || strings.HasSuffix(name, Separator) {
		return "", fmt.Errorf("%w: mailbox name %q starts or ends with %q", ErrInvalid, name, Separator)
	}
	if strings.Contains(name, Separator+Separator) {
		return "", fmt.Errorf("%w: mailbox name %q has an empty segment", ErrInvalid, name)
	}
	first, rest, hasRest := strings.Cut(name, Separator)
	if strings.EqualFold(first, Inbox) {
		if hasRest {
			return Inbox + Separator + rest, nil
		}
		return Inbox, nil
	}
	return name, nil
}
