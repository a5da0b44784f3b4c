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
	// Servers wrap base64 in lines; StdEncoding refuses the line breaks.
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, m.MimeContent.Base64)
	return base64.StdEncoding.DecodeString(s)
}

// Flagged reports whether the message carries a follow-up flag (IMAP's
// \Flagged); a completed flag is no longer one.
func (m *Message) Flagged() bool {
	return m.Flag != nil && m.Flag.FlagStatus == "Flagged"
}
