package smtp

import (
	"net/netip"
	"strings"
	"time"
)

// traceInfo is what the trace header fields of one message say.
type traceInfo struct {
	From      string // envelope sender, "" for the null sender
	Helo      string // HELO/EHLO argument as sent
	IP        netip.Addr
	Hostname  string // this server
	TLS       bool
	Auth      bool
	UTF8      bool // SMTPUTF8 was used (RFC 6531)
	ID        string
	Recipient string // set when the message has exactly one recipient
	Date      time.Time
}

// traceHeaders returns the Return-Path and Received header fields this
// server prepends when it delivers a message into mailboxes:
//
//   - Return-Path: the final delivery MTA records the reverse-path
//     (RFC 5321 §4.4).
//   - Received: RFC 5321 §4.4 "from" (HELO and the client's address
//     literal; the reverse DNS name is not looked up, hence "unknown"),
//     "by", "with" (RFC 3848 ESMTP/ESMTPS/ESMTPA/ESMTPSA, RFC 6531 §3.7.3
//     UTF8SMTP variants), "id", "for" when there is exactly one
//     recipient, and the RFC 5322 §3.3 date.
func traceHeaders(t traceInfo) []byte {
	var b strings.Builder
	b.WriteString("Return-Path: <")
	b.WriteString(headerSafe(t.From))
	b.WriteString(">\r\n")

	b.WriteString("Received: from ")
	helo := headerSafe(t.Helo)
	if helo == "" {
		helo = "unknown"
	}
	b.WriteString(helo)
	b.WriteString(" (unknown ")
	b.WriteString(addressLiteral(t.IP))
	b.WriteString(")\r\n\tby ")
	b.WriteString(headerSafe(t.Hostname))
	b.WriteString(" (Mailyard) with ")
	b.WriteString(withProtocol(t.UTF8, t.TLS, t.Auth))
	b.WriteString(" id ")
	b.WriteString(t.ID)
	if t.Recipient != "" {
		b.WriteString("\r\n\tfor <")
		b.WriteString(headerSafe(t.Recipient))
		b.WriteString(">")
	}
	b.WriteString(";\r\n\t")
	b.WriteString(t.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	b.WriteString("\r\n")
	return []byte(b.String())
}

// withProtocol is the "with" keyword of a Received field: RFC 3848 §2 adds
// S for TLS and A for an authenticated client to ESMTP; RFC 6531 §3.7.3
// does the same for UTF8SMTP.
func withProtocol(utf8, tls, auth bool) string {
	p := "ESMTP"
	if utf8 {
		p = "UTF8SMTP"
	}
	if tls {
		p += "S"
	}
	if auth {
		p += "A"
	}
	return p
}

// addressLiteral formats an IP as an RFC 5321 §4.1.3 address literal.
func addressLiteral(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "[unknown]"
	case ip.Is4() || ip.Is4In6():
		return "[" + ip.Unmap().String() + "]"
	}
	return "[IPv6:" + ip.WithZone("").String() + "]"
}

// headerSafe keeps a client-supplied token from breaking the header
// syntax: no controls, whitespace, comment delimiters or ";" (which ends
// the Received tokens), bounded length.
func headerSafe(s string) string {
	const max = 255
	if len(s) > max {
		s = s[:max]
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r <= ' ', r == 0x7f, r == '(', r == ')', r == ';', r == '\\', r == '<', r == '>':
			return '?'
		}
		return r
	}, s)
}
