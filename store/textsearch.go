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

// FuzzyHit is one message a fuzzy search found.
type FuzzyHit struct {
	Message
	// Sure reports that the backend's index holds the message's text
	// whole and matched every term in it; Score is then its relevancy,
	// 1 to 100 (RFC 6203 §4). A hit that is not Sure is a candidate the
	// backend could not decide (its text is not indexed whole): the
	// caller matches it against the message text itself, with the
	// rules of internal/fuzzy.
	Sure  bool
	Score int
}

// FuzzySearcher is an optional capability of a Store, found by type
// assertion: approximate matching of words through a full-text index,
// for IMAP SEARCH FUZZY (RFC 6203). How a word matches is the
// backend's, and documented by it (RFC 6203 §3 leaves it to the
// server); every backend finds a word of at least 8 letters in any
// script with one letter after its first left out, added or replaced,
// and scores a word found as it was asked above one found so.
//
// A term without words (empty, only punctuation, or bytes that are not
// UTF-8) holds in no message. RFC 6203 §3 lets the server decide all
// matching of a FUZZY key, and this matching is of words: a value
// without any asks for nothing a message could hold. Holding in every
// message instead, as BODY "" does under the substring rule of RFC 9051
// §6.4.4, would answer a search for "!!!" with the whole mailbox.
// Dovecot, written by RFC 6203's author, does the same: a search string
// its tokenizer splits into no words matches no message, and NOT of it
// every message. IMAP SEARCH FUZZY keeps this rule (imap/fuzzy.go).
type FuzzySearcher interface {
	// SearchFuzzy returns, by UID, the messages in within (nil: all)
	// of mailbox whose text in each term's Field holds a match of
	// every word of the term's Value (words as internal/fuzzy splits
	// them), and the messages it cannot decide (not Sure). A term
	// without words makes the answer empty, undecided messages
	// included; no terms at all hold in every message. At most
	// fuzzy.MaxWords words in all, or ErrInvalid. A mailbox or account
	// that does not exist is ErrNotFound, whatever the terms.
	SearchFuzzy(ctx context.Context, account, mailbox string, terms []TextTerm, within UIDSet) ([]FuzzyHit, error)
}
