package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/msgheader"
)

// maxPathLength is RFC 5321 §4.5.3.1.3's limit on a reverse- or
// forward-path, without the angle brackets.
const maxPathLength = 254

// addressSyntax checks an envelope address as go-smtp parsed it (quotes and
// source route already removed). It returns "" if the address is usable,
// else why not.
func addressSyntax(addr string) string {
	if len(addr) > maxPathLength {
		return "address too long"
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "address must be local-part@domain"
	}
	for i := 0; i < len(addr); i++ {
		// Controls (including bare CR inside a quoted local part) would
		// corrupt the Received header and logs.
		if c := addr[i]; c < 0x20 || c == 0x7f {
			return "control character in address"
		}
	}
	return ""
}

// senderRouting reports the rule a recipient address breaks if it asks this
// host to route the message onwards on the sender's say-so, or "". Such
// syntax is only ever honoured for authenticated clients: an MX that
// rewrites "user%remote@local" to "user@remote" is an open relay.
func senderRouting(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	local, domain := addr[:at], addr[at+1:]
	switch {
	case strings.HasPrefix(domain, "["):
		// RFC 5321 §4.1.3 address literal: never a hosted domain here.
		return "address-literal"
	case strings.ContainsRune(local, '@'):
		// "user@remote"@local: go-smtp strips the quotes.
		return "quoted-at"
	case strings.ContainsRune(local, '%'):
		return "percent-hack"
	case strings.ContainsRune(local, '!'):
		return "bang-path"
	}
	return ""
}

// sendSet holds the addresses a user may send as. A sub-address
// ("alice+tag@d") of an owned address is allowed too, unless the directory
// says the full address is someone else's (taken).
type sendSet struct {
	addrs map[string]bool
	// taken reports whether a sub-address belongs to an entry other than
	// its base address; nil means no directory to ask (never taken).
	taken func(addr, base string) bool
}

// newSendSet holds addrs in the directory's canonical form; one that
// does not parse is left out, since no sender it could match would parse.
func newSendSet(addrs []string) sendSet {
	s := sendSet{addrs: make(map[string]bool, len(addrs))}
	for _, a := range addrs {
		if c, err := directory.CanonicalAddress(a); err == nil {
			s.addrs[c] = true
		}
	}
	return s
}

// allows compares in the directory's canonical form (lowercase, see
// directory.CanonicalAddress): the addresses are the user's own, hosted
// here. An address that does not parse is never allowed.
func (s sendSet) allows(addr string) bool {
	a, err := directory.ParseAddress(addr)
	if err != nil {
		return false
	}
	c := a.Canonical()
	if s.addrs[c] {
		return true
	}
	if base, _, ok := a.Subaddress(); ok {
		b := base + "@" + a.Domain
		return s.addrs[b] && (s.taken == nil || !s.taken(c, b))
	}
	return false
}

// errHeaderTooLarge: the header block exceeds the bound.
var errHeaderTooLarge = msgheader.ErrTooLarge

// readHeaderBlock reads the header block of a CRLF-normalised message from
// br, including the blank line that ends it, reading at most max bytes
// (msgheader.AppendBlock; errHeaderTooLarge past them). A message that
// ends without a blank line is all header.
func readHeaderBlock(br *bufio.Reader, max int) ([]byte, error) {
	return msgheader.AppendBlock(nil, br, max)
}

// checkHeaderSenders checks the From: and Sender: fields of a header block
// (as read by readHeaderBlock) for submission: each must occur at most
// once, From: exactly once (RFC 5322 §3.6), and every address in them must
// be one the user may send as. It returns the domain of the first From
// address (lowercased; DKIM signs for it) and the reply refusing the
// message, or nil.
func checkHeaderSenders(block []byte, may sendSet) (string, *gosmtp.SMTPError) {
	// go-message's reader, not msgheader.ParseHeader: it fails at a
	// line that is not a field, where ParseHeader would skip it, and a
	// submission whose header does not parse is refused rather than
	// checked on the fields around the line.
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(block)))
	if err != nil && !errors.Is(err, io.EOF) {
		return "", reply(550, "5.6.0", "malformed message header")
	}
	h := mail.Header{Header: message.Header{Header: th}}
	froms := countFields(th, "From")
	switch {
	case froms == 0:
		return "", reply(550, "5.6.0", "message has no From header field (RFC 5322 §3.6)")
	case froms > 1:
		return "", reply(550, "5.6.0", "message has more than one From header field (RFC 5322 §3.6)")
	case countFields(th, "Sender") > 1:
		return "", reply(550, "5.6.0", "message has more than one Sender header field (RFC 5322 §3.6)")
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) == 0 {
		return "", reply(550, "5.6.0", "malformed From header field")
	}
	for _, a := range from {
		if !may.allows(a.Address) {
			return "", reply(550, "5.7.1", "From address <%s> is not one of your addresses", printable(a.Address))
		}
	}
	if th.Has("Sender") {
		sender, err := h.AddressList("Sender")
		if err != nil || len(sender) != 1 {
			return "", reply(550, "5.6.0", "malformed Sender header field")
		}
		if !may.allows(sender[0].Address) {
			return "", reply(550, "5.7.1", "Sender address <%s> is not one of your addresses", printable(sender[0].Address))
		}
	} else if len(from) > 1 {
		// RFC 5322 §3.6.2: several authors require a Sender field.
		return "", reply(550, "5.6.0", "several From addresses require a Sender header field (RFC 5322 §3.6.2)")
	}
	return domainOf(from[0].Address), nil
}

// domainOf returns the lowercased domain of an envelope address, or "".
// It is not directory.ParseAddress on purpose: the outbound queue uses it
// for remote recipients and for DSNs to remote senders, whose local parts
// only their own host interprets (RFC 5321 §2.4) and may be ones the
// directory refuses for hosted mailboxes (a quoted "john smith"@example.org
// is a valid MAIL FROM). Domains compare without case (RFC 5321 §2.4).
func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(addr[at+1:])
}

func countFields(h textproto.Header, key string) int {
	n := 0
	for f := h.FieldsByKey(key); f.Next(); {
		n++
	}
	return n
}

// printable makes a client-supplied string safe to echo in a reply line.
func printable(s string) string {
	if len(s) > maxPathLength {
		s = s[:maxPathLength]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
