package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-message"

	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store"
)

// Bounds of the inbound iMIP step: larger messages and further calendar
// parts are delivered as mail only.
const (
	maxIMIPMessage = 1 << 20
	maxIMIPParts   = 4
)

// imipDeliverer is the MX's Deliverer: the store, and after a message is
// stored, each text/calendar part of it is handed to the DAV handler's
// ReceiveIMIP (RFC 6047) for every local calendar user that got a copy
// outside Junk. The mail is delivered whatever ReceiveIMIP says; its
// failures are logged. The sender is the envelope sender, read from the
// Return-Path field the SMTP server puts first in every message it
// stores (smtp trace.go), so a client's own Return-Path cannot stand in.
//
// It embeds the store so that smtp finds the store's Usage (quota
// checks) as before.
type imipDeliverer struct {
	mailStore
	dir     *builtin.Directory
	trusted []string
	logger  *slog.Logger
	// handler is set by listenDAV before any listener serves; nil
	// without a DAV listener (then nothing but delivery happens).
	handler atomic.Pointer[dav.Handler]
}

// Deliver stores the message, then applies its iTIP parts.
func (d *imipDeliverer) Deliver(ctx context.Context, del store.Delivery, body io.Reader) ([]store.Delivered, error) {
	h := d.handler.Load()
	if h == nil {
		return d.mailStore.Deliver(ctx, del, body)
	}
	var buf cappedBuffer
	buf.max = maxIMIPMessage
	delivered, err := d.mailStore.Deliver(ctx, del, io.TeeReader(body, &buf))
	if err != nil || buf.over {
		return delivered, err
	}
	d.receive(ctx, h, buf.b.Bytes(), delivered)
	return delivered, nil
}

// receive hands each calendar part to ReceiveIMIP for each recipient.
func (d *imipDeliverer) receive(ctx context.Context, h *dav.Handler, msg []byte, delivered []store.Delivered) {
	cals := calendarParts(msg)
	if len(cals) == 0 {
		return
	}
	from := envelopeSender(msg)
	if from == "" {
		d.logger.Info("imip: calendar message from the null sender not applied")
		return
	}
	seen := map[string]bool{}
	for _, dl := range delivered {
		if seen[dl.Account] || strings.EqualFold(dl.Mailbox, "Junk") {
			continue
		}
		seen[dl.Account] = true
		to, err := d.accountAddress(ctx, dl.Account)
		if err != nil {
			d.logger.Warn("imip: no address for account", "account", dl.Account, "err", err)
			continue
		}
		for _, cal := range cals {
			res, err := h.ReceiveIMIP(ctx, from, to, cal, d.trusted...)
			switch {
			case errors.Is(err, dav.ErrNotCalendarUser), errors.Is(err, dav.ErrInvalidITIP):
				d.logger.Info("imip: message not applied", "from", from, "to", to, "err", err)
			case err != nil:
				d.logger.Warn("imip: receive failed", "from", from, "to", to, "err", err)
			default:
				d.logger.Info("imip: message received", "from", from, "to", to, "applied", res.Applied, "inbox", res.Inbox)
			}
		}
	}
}

// accountAddress is the primary address of the user or resource that
// owns a store account (directory IDs are account IDs).
func (d *imipDeliverer) accountAddress(ctx context.Context, account string) (string, error) {
	u, err := d.dir.User(ctx, account)
	if err == nil {
		return u.Address, nil
	}
	r, rerr := d.dir.Resource(ctx, account)
	if rerr != nil {
		return "", errors.Join(err, rerr)
	}
	return r.Address, nil
}

// envelopeSender is the address of the message's first field, the
// Return-Path the server wrote; "" for the null sender or none.
func envelopeSender(msg []byte) string {
	line, _, _ := bytes.Cut(msg, []byte("\r\n"))
	name, value, ok := strings.Cut(string(line), ":")
	if !ok || !strings.EqualFold(name, "Return-Path") {
		return ""
	}
	value = strings.TrimSpace(value)
	return strings.TrimSuffix(strings.TrimPrefix(value, "<"), ">")
}

// calendarParts returns the iTIP objects of a message's text/calendar
// parts (at most maxIMIPParts) that decode and carry a METHOD.
func calendarParts(msg []byte) []*ical.Calendar {
	e, err := message.Read(bufio.NewReader(bytes.NewReader(msg)))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil
	}
	var cals []*ical.Calendar
	_ = e.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil || len(cals) >= maxIMIPParts {
			return nil
		}
		if t, _, _ := part.Header.ContentType(); t != "text/calendar" {
			return nil
		}
		cal, err := ical.NewDecoder(part.Body).Decode()
		if err == nil && cal.Props.Get(ical.PropMethod) != nil {
			cals = append(cals, cal)
		}
		return nil
	})
	return cals
}

// cappedBuffer keeps the first max bytes written and notes whether more
// came; it never fails, so the store's copy is unaffected.
type cappedBuffer struct {
	b    bytes.Buffer
	max  int
	over bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if !c.over {
		if c.b.Len()+len(p) > c.max {
			c.over = true
			c.b = bytes.Buffer{}
		} else {
			c.b.Write(p)
		}
	}
	return len(p), nil
}
