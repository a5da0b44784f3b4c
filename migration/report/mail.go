package report

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/migration"
)

// Mailer sends one message. examples/migrate implements it with an SMTP
// submission client; the message is a complete RFC 5322 message.
type Mailer interface {
	SendMail(ctx context.Context, from string, to []string, msg io.Reader) error
}

// Send mails r from from to to through mailer: the message [Message]
// builds, dated now. Nothing is sent if an address is bad.
func Send(ctx context.Context, mailer Mailer, r migration.Report, from, to string) error {
	msg, err := Message(r, from, to, time.Now())
	if err != nil {
		return err
	}
	if err := mailer.SendMail(ctx, from, []string{to}, bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("report: send to %s: %w", to, err)
	}
	return nil
}

// Message builds the mail that carries r, dated date: a multipart/mixed
// message (RFC 2046 §5.1.3) with the plain-text [Summary], the HTML page of
// [WriteHTML] (inline, so mail clients show it) and the CSV file of
// [WriteCSV] as an attachment, with the RFC 5322 §3.6 header fields Date,
// From, To, Subject and Message-ID. from and to are plain addresses; a bad
// one is an error.
func Message(r migration.Report, from, to string, date time.Time) ([]byte, error) {
	h, err := messageHeader(r, from, to, date)
	if err != nil {
		return nil, err
	}
	parts, err := messageParts(r)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	mw, err := mail.CreateWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		if err := p.write(mw); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// messageHeader checks both addresses and builds the header of the
// report's message; its Message-ID names the sender's domain.
func messageHeader(r migration.Report, from, to string, date time.Time) (mail.Header, error) {
	var h mail.Header
	fromAddr, err := directory.ParseAddress(from)
	if err != nil {
		return h, fmt.Errorf("report: sender: %w", err)
	}
	if _, err := directory.ParseAddress(to); err != nil {
		return h, fmt.Errorf("report: recipient: %w", err)
	}
	h.SetDate(date)
	h.SetAddressList("From", []*mail.Address{{Name: "Mailyard migration", Address: from}})
	h.SetAddressList("To", []*mail.Address{{Address: to}})
	scope := r.Domain
	if scope == "" {
		scope = fmt.Sprintf("%d mailboxes", len(r.Mailboxes))
	}
	h.SetSubject("Migration report: " + scope)
	if err := h.GenerateMessageIDWithHostname(fromAddr.Domain); err != nil {
		return h, err
	}
	h.Set("MIME-Version", "1.0")
	return h, nil
}

// messagePart is one body part of the report's message.
type messagePart struct {
	ctype string
	// file names an attachment; an inline part has none (go-message's
	// inline parts carry no file name, and clients show them in the
	// message).
	file string
	body io.Reader
}

// messageParts renders r three ways: summary, page and CSV attachment.
func messageParts(r migration.Report) ([]messagePart, error) {
	var csvBuf, htmlBuf bytes.Buffer
	if err := WriteCSV(&csvBuf, r); err != nil {
		return nil, err
	}
	if err := WriteHTML(&htmlBuf, r); err != nil {
		return nil, err
	}
	name := "migration-report"
	if r.Domain != "" {
		name += "-" + r.Domain
	}
	name += "-" + r.Generated.UTC().Format("20060102-150405") + ".csv"
	return []messagePart{
		{ctype: "text/plain", body: strings.NewReader(Summary(r) + attachmentsNote)},
		{ctype: "text/html", body: &htmlBuf},
		{ctype: "text/csv", file: name, body: &csvBuf},
	}, nil
}

// attachmentsNote ends the text part of a mailed report, which has the
// page and the CSV file attached.
const attachmentsNote = "\nThe attached page and CSV file have the counts per mailbox and folder.\n"

// write adds p to the message mw writes, as UTF-8 text.
func (p messagePart) write(mw *mail.Writer) error {
	var w io.WriteCloser
	var err error
	if p.file != "" {
		var ah mail.AttachmentHeader
		ah.SetContentType(p.ctype, map[string]string{"charset": "utf-8"})
		ah.SetFilename(p.file)
		w, err = mw.CreateAttachment(ah)
	} else {
		var ih mail.InlineHeader
		ih.SetContentType(p.ctype, map[string]string{"charset": "utf-8"})
		w, err = mw.CreateSingleInline(ih)
	}
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, p.body); err != nil {
		return err
	}
	return w.Close()
}
