package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-message/mail"

	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/smtp"
)

// errIMIPNotRelayed is returned by [imipSender.Send] when routing does not
// relay a recipient (rejected, or delivered here: dav reaches local
// calendar users itself).
var errIMIPNotRelayed = errors.New("imip: recipient is not relayed to another host")

// imipSender is the server's dav.IMIP: it turns an iTIP message into an
// iMIP email (RFC 6047), signs it with the sender domain's DKIM keys like
// submitted mail, and commits it to the outbound queue for the remote
// recipients. Delivery, retries and bounces are the queue's.
type imipSender struct {
	hostname string
	router   smtp.Router
	queue    smtp.Outbound
	keys     smtp.KeySource // nil: unsigned, as with dkim.sign = false
	now      func() time.Time
}

// Send builds, signs and queues the message; see dav.IMIP for the
// contract. It returns once the message is durably queued.
func (s *imipSender) Send(ctx context.Context, from string, to []string, method string, cal *ical.Calendar) error {
	targets, err := s.route(ctx, from, to)
	if err != nil {
		return err
	}
	msg, err := buildIMIP(from, to, method, cal, s.now(), s.hostname)
	if err != nil {
		return err
	}
	sig, err := s.sign(ctx, from, msg)
	if err != nil {
		return err
	}
	id, err := s.queue.Spool(ctx, io.MultiReader(strings.NewReader(sig), bytes.NewReader(msg)))
	if err != nil {
		return fmt.Errorf("imip: spool: %w", err)
	}
	defer s.queue.Abort(id) // nothing once committed
	if err := s.queue.Commit(ctx, id, from, needsSMTPUTF8(from, to), targets); err != nil {
		return fmt.Errorf("imip: queue: %w", err)
	}
	return nil
}

// route resolves each recipient as a submission from the sender would be
// (authenticated), so routes, relay domains and transports apply. Every
// recipient must be relayed.
func (s *imipSender) route(ctx context.Context, from string, to []string) ([]routing.Decision, error) {
	env := routing.Envelope{From: from, Authenticated: true}
	var targets []routing.Decision
	for _, rcpt := range to {
		res, err := s.router.Resolve(ctx, env, rcpt)
		if err != nil {
			return nil, fmt.Errorf("imip: route %s: %w", rcpt, err)
		}
		for _, d := range res.Decisions {
			if d.Kind != routing.Relay {
				return nil, fmt.Errorf("%w: %s (rule %s)", errIMIPNotRelayed, d.Address, d.Rule)
			}
			targets = append(targets, d)
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: no recipients", errIMIPNotRelayed)
	}
	return targets, nil
}

// sign returns the DKIM-Signature fields for msg from the From domain's
// keys ("" without keys), as the submission server signs (smtp
// Options.DKIMKeys).
func (s *imipSender) sign(ctx context.Context, from string, msg []byte) (string, error) {
	if s.keys == nil {
		return "", nil
	}
	at := strings.LastIndexByte(from, '@')
	if at < 0 {
		return "", fmt.Errorf("imip: sender %q has no domain", from)
	}
	keys, err := s.keys.Signing(ctx, strings.ToLower(from[at+1:]))
	if err != nil {
		return "", fmt.Errorf("imip: dkim keys: %w", err)
	}
	if len(keys) == 0 {
		return "", nil
	}
	sig, err := dkim.Sign(ctx, keys, bytes.NewReader(msg), dkim.SignOptions{Now: s.now})
	if err != nil {
		return "", fmt.Errorf("imip: dkim: %w", err)
	}
	return sig, nil
}

// buildIMIP writes the iMIP message: a multipart/alternative with a text
// summary and the iTIP object as "text/calendar; method=<METHOD>"
// (RFC 6047 §2.4: the method parameter equals the object's METHOD).
func buildIMIP(from string, to []string, method string, cal *ical.Calendar, now time.Time, hostname string) ([]byte, error) {
	var ics bytes.Buffer
	if err := ical.NewEncoder(&ics).Encode(cal); err != nil {
		return nil, fmt.Errorf("imip: encode calendar: %w", err)
	}
	summary := calendarSummary(cal)
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Address: from}})
	rcpts := make([]*mail.Address, len(to))
	for i, a := range to {
		rcpts[i] = &mail.Address{Address: a}
	}
	h.SetAddressList("To", rcpts)
	h.SetSubject(imipSubject(method, summary))
	h.SetDate(now)
	if err := h.GenerateMessageIDWithHostname(hostname); err != nil {
		return nil, fmt.Errorf("imip: message id: %w", err)
	}
	var buf bytes.Buffer
	w, err := mail.CreateInlineWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("imip: %w", err)
	}
	if err := writePart(w, "text/plain", map[string]string{"charset": "utf-8"}, []byte(imipText(method, from, summary))); err != nil {
		return nil, err
	}
	params := map[string]string{"method": strings.ToUpper(method), "charset": "utf-8"}
	if err := writePart(w, "text/calendar", params, ics.Bytes()); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("imip: %w", err)
	}
	return buf.Bytes(), nil
}

// writePart adds one quoted-printable part (7bit-safe for any relay).
func writePart(w *mail.InlineWriter, mediaType string, params map[string]string, body []byte) error {
	var ph mail.InlineHeader
	ph.SetContentType(mediaType, params)
	ph.Set("Content-Transfer-Encoding", "quoted-printable")
	pw, err := w.CreatePart(ph)
	if err != nil {
		return fmt.Errorf("imip: %s part: %w", mediaType, err)
	}
	if _, err := pw.Write(body); err != nil {
		return fmt.Errorf("imip: %s part: %w", mediaType, err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("imip: %s part: %w", mediaType, err)
	}
	return nil
}

// calendarSummary is the SUMMARY of the first scheduled component.
func calendarSummary(cal *ical.Calendar) string {
	for _, c := range cal.Children {
		if c.Name == ical.CompTimezone {
			continue
		}
		if p := c.Props.Get(ical.PropSummary); p != nil {
			return p.Value
		}
	}
	return ""
}

// imipSubject names the method the way mail clients show invitations.
func imipSubject(method, summary string) string {
	if summary == "" {
		summary = "(no title)"
	}
	switch strings.ToUpper(method) {
	case "REQUEST":
		return "Invitation: " + summary
	case "CANCEL":
		return "Cancelled: " + summary
	case "REPLY":
		return "Reply: " + summary
	}
	return summary
}

// imipText is the text/plain alternative for readers without calendar
// support.
func imipText(method, from, summary string) string {
	switch strings.ToUpper(method) {
	case "REQUEST":
		return from + " invites you to: " + summary + "\r\n"
	case "CANCEL":
		return from + " cancelled: " + summary + "\r\n"
	case "REPLY":
		return from + " replied to: " + summary + "\r\n"
	}
	return summary + "\r\n"
}

// needsSMTPUTF8 reports whether an envelope address is not ASCII (RFC
// 6531).
func needsSMTPUTF8(from string, to []string) bool {
	for _, a := range append([]string{from}, to...) {
		for i := 0; i < len(a); i++ {
			if a[i] >= utf8.RuneSelf {
				return true
			}
		}
	}
	return false
}
