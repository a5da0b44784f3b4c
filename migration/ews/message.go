package ews

import (
	"encoding/base64"
	"errors"
	"strings"
)

// MIME returns the message's RFC 5322 bytes, decoded from the base64 of
// its MimeContent ([MS-OXWSCORE] §2.2.4.28 MimeContentType).
func (m *Message) MIME() ([]byte, error) {
	if m.MimeContent == nil {
		return nil, errors.New("ews: the message has no MimeContent")
	}
	s := m.MimeContent.Base64
	// Servers wrap base64 in lines. The decoder skips CR and LF itself;
	// only blanks and tabs need a copy without them.
	if strings.ContainsAny(s, " \t") {
		s = strings.Map(func(r rune) rune {
			switch r {
			case ' ', '\t', '\r', '\n':
				return -1
			}
			return r
		}, s)
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, []byte(s))
	return out[:n], err
}

// Flagged reports whether the message carries a follow-up flag (IMAP's
// \Flagged); a completed flag is no longer one.
func (m *Message) Flagged() bool {
	return m.Flag != nil && m.Flag.FlagStatus == "Flagged"
}
