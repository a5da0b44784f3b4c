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

// TextHit is one candidate of a full-text search: a message that may
// contain every term.
type TextHit struct {
	Message
	// Sure reports that the index holds the message's text whole (the
	// first MaxTextBytes of the message, extracted by internal/msgtext)
	// and that it contains every term, where the message's texts are
	// joined by "\n": a term without a line feed is in one of them.
	// Never set when a term is shorter than MinTextTerm. The caller
	// checks the other candidates against the message text.
	Sure bool
}

// MaxTextBytes is how much of a message a TextSearcher reads for Sure:
// a longer message is at most in Maybe.
const MaxTextBytes = 8 << 20

// TextSearcher is an optional capability of a Store, found by type
// assertion: a full-text index of the messages' text, kept by the
// backend as messages are delivered, appended, copied and expunged.
type TextSearcher interface {
	// SearchText returns, by UID, the messages in within (nil: all) of
	// mailbox that may contain every term: at least every message whose
	// text contains them all, with their metadata as ListMessages gives
	// it. A message not returned does not contain them all. A mailbox
	// or account that does not exist is ErrNotFound.
	SearchText(ctx context.Context, account, mailbox string, terms []TextTerm, within UIDSet) ([]TextHit, error)
}
