package migration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/mailyard/mailyard/directory"
)

// Mailer sends one message. examples/migrate implements it with an SMTP
// submission client; the message is a complete RFC 5322 message.
type Mailer interface {
	SendMail(ctx context.Context, from string, to []string, msg io.Reader) error
}

// Send mails the report from from to to through mailer: a
// multipart/mixed message (RFC 2046 §5.1.3) with the plain-text summary,
// the HTML page (inline, so mail clients show it) and the CSV file as an
// attachment, with the RFC 5322 §3.6 header fields Date, From, To,
// Subject and Message-ID.
func (r Report) Send(ctx context.Context, mailer Mailer, from, to string) error {
	msg, err := r.Message(from, to, time.Now())
	if err != nil {
		return err
	}
	if err := mailer.SendMail(ctx, from, []string{to}, bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("migration: send report to %s: %w", to, err)
	}
	return nil
}

// Message builds the message [Report.Send] sends, dated date. from and to
// are plain addresses.
func (r Report) Message(from, to string, date time.Time) ([]byte, error) {
	fromAddr, err := directory.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("migration: report sender: %w", err)
	}
	if _, err := directory.ParseAddress(to); err != nil {
		return nil, fmt.Errorf("migration: report recipient: %w", err)
	}
	var h mail.Header
	h.SetDate(date)
	h.SetAddressList("From", []*mail.Address{{Name: "Mailyard migration", Address: from}})
	h.SetAddressList("To", []*mail.Address{{Address: to}})
	scope := r.Domain
	if scope == "" {
		scope = fmt.Sprintf("%d mailboxes", len(r.Mailboxes))
	}
	h.SetSubject("Migration report: " + scope)
	if err := h.GenerateMessageIDWithHostname(fromAddr.Domain); err != nil {
		return nil, err
	}
	h.Set("MIME-Version", "1.0")

	var csvBuf, htmlBuf bytes.Buffer
	if err := r.WriteCSV(&csvBuf); err != nil {
		return nil, err
	}
	if err := r.WriteHTML(&htmlBuf); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	mw, err := mail.CreateWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	name := "migration-report"
	if r.Domain != "" {
		name += "-" + r.Domain
	}
	name += "-" + r.Generated.UTC().Format("20060102-150405")
	parts := []struct {
		ctype, file string
		attach      bool
		body        io.Reader
	}{
		{"text/plain", "", false, strings.NewReader(r.Summary())},
		// go-message's inline parts carry no file name; clients show
		// the page in the message.
		{"text/html", "", false, &htmlBuf},
		{"text/csv", name + ".csv", true, &csvBuf},
	}
	for _, p := range parts {
		var w io.WriteCloser
		if p.attach {
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
			return nil, err
		}
		if _, err := io.Copy(w, p.body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
