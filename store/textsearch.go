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

// TextHits is what a TextSearcher found: the candidates of a search,
// split by whether the index answers for them.
type TextHits struct {
	// Sure holds messages whose text the index holds whole (the first
	// MaxTextBytes of the message, extracted by internal/msgtext) and
	// contains every term, where the message's texts are joined by
	// "\n": a term without a line feed is in one of them. Empty when a
	// term is shorter than MinTextTerm.
	Sure []uint32
	// Maybe holds the other candidates: messages the index does not
	// hold whole (or at all), or, with a term shorter than MinTextTerm,
	// every message whose indexed text contains the longer terms. The
	// caller checks them against the message text.
	Maybe []uint32
}

// MaxTextBytes is how much of a message a TextSearcher reads for Sure:
// a longer message is at most in Maybe.
const MaxTextBytes = 8 << 20

// TextSearcher is an optional capability of a Store, found by type
// assertion: a full-text index of the messages' text, kept by the
// backend as messages are delivered, appended, copied and expunged.
type TextSearcher interface {
	// SearchText returns, ascending, the UIDs in within (nil: all) of
	// the messages of mailbox that may contain every term: at least
	// every message whose text contains them all, in Sure or Maybe. A
	// message in neither does not contain them all. A mailbox or
	// account that does not exist is ErrNotFound.
	SearchText(ctx context.Context, account, mailbox string, terms []TextTerm, within UIDSet) (TextHits, error)
}
