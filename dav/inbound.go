package dav

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-ical"
)

// ErrNotCalendarUser is returned by [Handler.ReceiveIMIP] for a
// recipient that is no local user or resource.
var ErrNotCalendarUser = errors.New("dav: the recipient is no local calendar user")

// ErrInvalidITIP is returned by [Handler.ReceiveIMIP] for a message that
// is no iTIP object (no METHOD, no component with a UID).
var ErrInvalidITIP = errors.New("dav: invalid iTIP message")

// IMIPResult says what [Handler.ReceiveIMIP] did with a message.
type IMIPResult struct {
	// Applied is true when the message updated the recipient's calendar
	// (a REPLY from the attendee it names, a CANCEL from the organizer).
	Applied bool
	// Inbox is true when the message was put in the recipient's schedule
	// inbox for their client.
	Inbox bool
}

// ReceiveIMIP takes an iTIP message that arrived by mail (iMIP, RFC
// 6047) for the local calendar user to, sent by the address from (the
// message's envelope or authenticated From; without "mailto:"). The MX
// calls it for each text/calendar part addressed to a local user; the
// mail itself is delivered as usual.
//
//   - A REPLY whose one replying ATTENDEE is from updates that
//     attendee's PARTSTAT in the recipient's (the organizer's) copy,
//     unless the copy's SEQUENCE is newer (RFC 5546 §2.1.5);
//   - a CANCEL whose ORGANIZER is from marks the recipient's copy
//     cancelled;
//   - in both cases only when the recipient's copy of the UID has that
//     ORGANIZER; otherwise, and for every other method (a REQUEST from
//     outside), the message only goes to the recipient's schedule inbox
//     for the client to show (RFC 6638 §4.1).
//
// trusted lists senders whose messages are applied even when from is not
// the organizer or attendee (linked installations that send from a
// system address). Errors: ErrNotCalendarUser, ErrInvalidITIP, or a
// store or directory failure.
func (h *Handler) ReceiveIMIP(ctx context.Context, from, to string, cal *ical.Calendar, trusted ...string) (IMIPResult, error) {
	var res IMIPResult
	cu, err := h.lookupCalendarUser(ctx, "mailto:"+to)
	if errors.Is(err, errNotCalendarUser) || errors.Is(err, errRemoteUser) {
		return res, ErrNotCalendarUser
	}
	if err != nil {
		return res, err
	}
	method := ""
	if p := cal.Props.Get(ical.PropMethod); p != nil {
		method = strings.ToUpper(p.Value)
	}
	if uid, _ := messageUID(cal); method == "" || uid == "" {
		return res, ErrInvalidITIP
	}
	msg, err := cloneCalendar(cal)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrInvalidITIP, err)
	}
	_, inbox, err := h.ensureCalendarHome(ctx, cu.account)
	if err != nil {
		return res, err
	}
	if inboundAllowed(msg, method, from, trusted) {
		if err := h.checkOrganizer(ctx, cu.account, msg); err == nil {
			switch method {
			case methodReply:
				err = h.applyReply(ctx, cu, msg)
			case methodCancel:
				err = h.applyCancel(ctx, cu, msg)
			}
			if err != nil && !errors.Is(err, errStale) {
				return res, err
			}
			res.Applied = err == nil
		} else if !errors.Is(err, errOtherOrganizer) {
			return res, err
		}
	}
	if err := h.putInbox(ctx, inbox, msg); err != nil {
		return res, err
	}
	res.Inbox = true
	return res, nil
}

// inboundAllowed reports whether an inbound REPLY or CANCEL comes from
// the calendar user it speaks for (RFC 6047 §3: the sender must match
// the ORGANIZER of a CANCEL, the replying ATTENDEE of a REPLY) or from a
// trusted sender.
func inboundAllowed(msg *ical.Calendar, method, from string, trusted []string) bool {
	from = strings.ToLower(strings.TrimSpace(from))
	for _, t := range trusted {
		if strings.EqualFold(strings.TrimSpace(t), from) {
			return method == methodReply || method == methodCancel
		}
	}
	switch method {
	case methodCancel:
		org := organizerOf(msg)
		return org != nil && addrKey(org.Value) == from
	case methodReply:
		keys, _ := attendeeSet(msg)
		return len(keys) == 1 && keys[0] == from
	}
	return false
}
