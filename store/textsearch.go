package store

import "context"

// TextField is where a TextTerm looks in a message's text, as
// package internal/msgtext extracts it.
type TextField int

// Text fields (RFC 9051 §6.4.4).
const (
	// TextBody is the decoded text parts (IMAP SEARCH BODY).
	TextBody TextField = iota
	// TextAll is the header fields and the text parts (IMAP SEARCH
	// TEXT).
	TextAll
)

// TextTerm asks for messages whose text in Field contains Value,
// case-insensitively (both lower-cased by strings.ToLower).
type TextTerm struct {
	Field TextField
	Value string
}

// MinTextTerm is the shortest Value, in runes, that a TextSearcher
// narrows by; shorter terms select every message.
const MinTextTerm = 3

// TextSearcher is an optional capability of a Store, found by type
// assertion: a full-text index of the messages' text, kept by the
// backend as messages are delivered, appended, copied and expunged.
type TextSearcher interface {
	// SearchText returns, ascending, the UIDs in within (nil: all) of
	// the messages of mailbox that may contain every term: at least
	// every message whose text contains them all, and possibly others
	// (the index may not hold a message whole, or at all). A message
	// whose text the index holds whole is returned only if that text,
	// with its parts joined by line breaks, contains every term of at
	// least MinTextTerm runes. The caller checks the candidates against
	// the message text to get the exact answer. A mailbox or account
	// that does not exist is ErrNotFound.
	SearchText(ctx context.Context, account, mailbox string, terms []TextTerm, within UIDSet) ([]uint32, error)
}
