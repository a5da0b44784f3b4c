// mailyard: this file is ours (not in upstream go-imap). The ENVELOPE is
// taken from the header as it is, as RFC 3501 §7.4.2 and RFC 9051 §7.5.2
// ask, rather than rebuilt from parsed values: imap.Envelope holds the
// Date as a time.Time and has no source route or group markers, so it
// cannot carry what the RFC wants sent.

package imapserver

import (
	"bytes"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/internal/msgheader"
)

// Envelope is a message's ENVELOPE (RFC 9051 §7.5.2). Date, Subject,
// InReplyTo and MessageID are the header fields' values as they are in
// the message, unfolded and with surrounding white space removed; RFC
// 2047 encoded-words are not decoded and a Date that does not parse is
// still sent. An empty string is sent as NIL.
type Envelope struct {
	Date, Subject, InReplyTo, MessageID string
	From, Sender, ReplyTo, To, Cc, Bcc  []Address
}

// Address is one element of an ENVELOPE address list. It is a mailbox,
// a group start (Mailbox holds the group's display name, Host is empty)
// or a group end (every field empty), as RFC 9051 §7.5.2 writes group
// syntax.
type Address struct {
	// Name is the display name as it is in the header: quotes removed,
	// encoded-words kept (RFC 9051 §7.5.2 asks for the phrase, and
	// clients decode it). With no phrase, the last comment is used, as
	// in "user@example.org (Real Name)".
	Name string
	// ADL is the obsolete source route (RFC 5322 §4.4 obs-route) without
	// its final colon, e.g. "@a.example,@b.example".
	ADL     string
	Mailbox string
	Host    string
}

// IsGroupStart reports whether a marks the start of a group; Mailbox
// is then the group's name.
func (a Address) IsGroupStart() bool { return a.Host == "" && a.Mailbox != "" }

// IsGroupEnd reports whether a marks the end of a group.
func (a Address) IsGroupEnd() bool { return a == Address{} }

// Addr returns the address as "mailbox@host" ("mailbox" for one without
// a domain), or "" for a group marker.
func (a Address) Addr() string {
	switch {
	case a.Host == "":
		return ""
	case a.Host == missingDomain:
		return a.Mailbox
	}
	return a.Mailbox + "@" + a.Host
}

// missingDomain is the host of an address without "@domain" (a local
// "root", say). An empty host would make it a group start marker;
// Dovecot uses the same placeholder.
const missingDomain = "MISSING_DOMAIN"

// envelopeFields are the header fields ENVELOPE reads, in the order of
// the fields of Envelope they fill.
var envelopeFields = [...]string{"date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id"}

// ExtractEnvelope returns the ENVELOPE of a message from its header
// block; anything after the header's end (the empty line) is ignored,
// so the whole message can be passed. The first occurrence of a field is
// used. Sender and Reply-To default to From when absent or empty (RFC
// 9051 §7.5.2).
func ExtractEnvelope(header []byte) *Envelope {
	var v [len(envelopeFields)]string
	var seen [len(envelopeFields)]bool
	msgheader.Scan(header, func(f msgheader.Field) {
		if !f.Valid() {
			return
		}
		for i, k := range envelopeFields {
			if !seen[i] && len(f.Name) == len(k) && strings.EqualFold(string(f.Name), k) {
				seen[i] = true
				v[i] = unfold(f.Value)
			}
		}
	})
	env := &Envelope{
		Date:      v[0],
		Subject:   v[1],
		From:      ParseAddressList(v[2]),
		Sender:    ParseAddressList(v[3]),
		ReplyTo:   ParseAddressList(v[4]),
		To:        ParseAddressList(v[5]),
		Cc:        ParseAddressList(v[6]),
		Bcc:       ParseAddressList(v[7]),
		InReplyTo: v[8],
		MessageID: v[9],
	}
	if len(env.Sender) == 0 {
		env.Sender = env.From
	}
	if len(env.ReplyTo) == 0 {
		env.ReplyTo = env.From
	}
	return env
}

// unfold removes the CRLFs of folding (RFC 5322 §2.2.3) and the white
// space around the value.
func unfold(v []byte) string {
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return string(bytes.Trim(v, " \t"))
	}
	var sb strings.Builder
	sb.Grow(len(v))
	for _, c := range v {
		if c != '\r' && c != '\n' {
			sb.WriteByte(c)
		}
	}
	return strings.Trim(sb.String(), " \t")
}

// envelopedBody is the body structure of a message/rfc822 part with the
// part's ENVELOPE: imap.BodyStructureMessageRFC822 can only hold an
// imap.Envelope. Through the embedded interface it is an
// imap.BodyStructure, so it sits in MessageRFC822.BodyStructure, where
// the writer takes it apart again (messageEnvelope).
type envelopedBody struct {
	imap.BodyStructure
	envelope *Envelope
}

// messageEnvelope returns the ENVELOPE and body structure of a
// message/rfc822 part. A structure built elsewhere carries an
// imap.Envelope, which is converted (its Date re-formatted, as that is
// all it holds).
func messageEnvelope(msg *imap.BodyStructureMessageRFC822) (*Envelope, imap.BodyStructure) {
	if eb, ok := msg.BodyStructure.(*envelopedBody); ok {
		return eb.envelope, eb.BodyStructure
	}
	return publicEnvelope(msg.Envelope), msg.BodyStructure
}

func publicEnvelope(e *imap.Envelope) *Envelope {
	if e == nil {
		return nil
	}
	addrs := func(l []imap.Address) []Address {
		out := make([]Address, len(l))
		for i, a := range l {
			out[i] = Address{Name: a.Name, Mailbox: a.Mailbox, Host: a.Host}
		}
		return out
	}
	env := &Envelope{
		Subject: e.Subject,
		From:    addrs(e.From), Sender: addrs(e.Sender), ReplyTo: addrs(e.ReplyTo),
		To: addrs(e.To), Cc: addrs(e.Cc), Bcc: addrs(e.Bcc),
	}
	if !e.Date.IsZero() {
		env.Date = e.Date.Format(envelopeDateLayout)
	}
	if len(e.InReplyTo) > 0 {
		env.InReplyTo = "<" + strings.Join(e.InReplyTo, "> <") + ">"
	}
	if e.MessageID != "" {
		env.MessageID = "<" + e.MessageID + ">"
	}
	if len(env.Sender) == 0 {
		env.Sender = env.From
	}
	if len(env.ReplyTo) == 0 {
		env.ReplyTo = env.From
	}
	return env
}
