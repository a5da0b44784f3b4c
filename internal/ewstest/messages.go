package ewstest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/mailyard/mailyard/internal/msgheader"
)

// fillFromMIME sets a message's envelope properties from its MimeContent
// where the client did not give them (as Exchange does when a message is
// created from MIME): Subject, From, ToRecipients, DateTimeSent,
// InternetMessageId.
func fillFromMIME(p *node) {
	mc := p.child("MimeContent")
	if mc == nil {
		return
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(mc.Text))
	if err != nil {
		return
	}
	_, h, err := msgheader.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return
	}
	mh := mail.Header{Header: message.Header{Header: h}}
	if p.child("Subject") == nil {
		if s, err := mh.Subject(); err == nil {
			p.set(tel("Subject", s))
		}
	}
	if p.child("InternetMessageId") == nil && mh.Get("Message-Id") != "" {
		p.set(tel("InternetMessageId", strings.TrimSpace(mh.Get("Message-Id"))))
	}
	if p.child("DateTimeSent") == nil {
		if d, err := mh.Date(); err == nil && !d.IsZero() {
			p.set(tel("DateTimeSent", ewsTime(d)))
		}
	}
	if p.child("From") == nil {
		if from, err := mh.AddressList("From"); err == nil && len(from) > 0 {
			p.set(el("From", mailboxNode(from[0])))
		}
	}
	if p.child("ToRecipients") == nil {
		if to, err := mh.AddressList("To"); err == nil && len(to) > 0 {
			list := el("ToRecipients")
			for _, a := range to {
				list.Kids = append(list.Kids, mailboxNode(a))
			}
			p.set(list)
		}
	}
}

func mailboxNode(a *mail.Address) *node {
	return el("Mailbox", tel("Name", a.Name), tel("EmailAddress", a.Address), tel("RoutingType", "SMTP"))
}

// synthMIME writes a message created without MimeContent as a plain
// RFC 5322 message, the way Exchange converts one on GetItem.
func synthMIME(p *node) []byte {
	var b bytes.Buffer
	addr := func(n *node) string {
		m := n.child("Mailbox")
		if m.text("Name") == "" {
			return "<" + m.text("EmailAddress") + ">"
		}
		return mime.QEncoding.Encode("utf-8", m.text("Name")) + " <" + m.text("EmailAddress") + ">"
	}
	if f := p.child("From"); f != nil {
		fmt.Fprintf(&b, "From: %s\r\n", addr(f))
	}
	var to []string
	for _, r := range p.child("ToRecipients").kids() {
		to = append(to, addr(el("x", r)))
	}
	if len(to) > 0 {
		fmt.Fprintf(&b, "To: %s\r\n", strings.Join(to, ", "))
	}
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", p.text("Subject")))
	if id := p.text("InternetMessageId"); id != "" {
		fmt.Fprintf(&b, "Message-ID: %s\r\n", id)
	}
	ctype := "text/plain"
	if p.child("Body").get("BodyType") == "HTML" {
		ctype = "text/html"
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n", ctype)
	body := base64.StdEncoding.EncodeToString([]byte(p.text("Body")))
	for len(body) > 76 {
		b.WriteString(body[:76] + "\r\n")
		body = body[76:]
	}
	b.WriteString(body + "\r\n")
	return b.Bytes()
}

// convertID answers ConvertId ([MS-OXWSCONV]) for the ids this
// server made, which are the same in every format it accepts; clients use
// it to learn the server's version (exchangelib's version guess).
func (s *Server) convertID(req *request) (*node, *ewsError) {
	format := req.op.get("DestinationFormat")
	var msgs []*node
	for _, a := range req.op.child("SourceIds").kids() {
		parts := decodeID(a.get("Id"))
		if len(parts) < 3 || s.mailboxes[strings.ToLower(parts[0])] == nil {
			msgs = append(msgs, responseMessage("ConvertId", errf("ErrorInvalidIdMalformed", "Id is malformed.")))
			continue
		}
		msgs = append(msgs, responseMessage("ConvertId", nil, mel("AlternateId").attr("Format", format).attr("Id", a.get("Id")).attr("Mailbox", parts[0])))
	}
	return operationResponse("ConvertId", msgs...), nil
}

var base64Std = base64.StdEncoding
