package dav

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/emersion/go-ical"
)

// iTIP (RFC 5546) methods the server sends on behalf of its users.
const (
	methodRequest = "REQUEST"
	methodCancel  = "CANCEL"
	methodReply   = "REPLY"
)

// Scheduling parameters of ORGANIZER and ATTENDEE (RFC 6638 §7).
const (
	paramScheduleAgent  = "SCHEDULE-AGENT"
	paramScheduleStatus = "SCHEDULE-STATUS"
	paramForceSend      = "SCHEDULE-FORCE-SEND"
)

// IMIP hands iTIP messages for calendar users this server does not host
// to a transport, normally iMIP (RFC 6047): an email with a
// "text/calendar; method=<METHOD>" part, sent like mail a user submits.
//
// The handler calls Send synchronously from the PUT or DELETE that
// caused the message, once per message, with:
//   - from: the sending calendar user's address without "mailto:" (the
//     ORGANIZER for REQUEST and CANCEL, the replying ATTENDEE for REPLY);
//     it is one of the authenticated user's own addresses, or, for a
//     REPLY, the address of a resource the user approves bookings for;
//   - to: the recipients' addresses without "mailto:", at least one, all
//     in domains not hosted here, at most Limits.MaxAttendees;
//   - method: "REQUEST", "CANCEL" or "REPLY", equal to cal's METHOD;
//   - cal: the complete iTIP message (METHOD set, SCHEDULE-STATUS
//     parameters removed); Send must not modify or keep it after it
//     returns.
//
// Send should only queue the message and return quickly. A nil error
// means the message was accepted for delivery and the ORGANIZER's copy
// records SCHEDULE-STATUS 1.1 for those recipients; an error records
// 5.1. Without an IMIP (Options.IMIP nil), remote recipients get 5.3.
type IMIP interface {
	Send(ctx context.Context, from string, to []string, method string, cal *ical.Calendar) error
}

// scheduledComponents are the components of an object that carry
// ORGANIZER and ATTENDEEs: the master and its overrides.
func scheduledComponents(cal *ical.Calendar) []*ical.Component {
	var out []*ical.Component
	for _, c := range cal.Children {
		switch c.Name {
		case ical.CompEvent, ical.CompToDo, ical.CompJournal:
			out = append(out, c)
		}
	}
	return out
}

// organizerOf is the ORGANIZER of an object (the first component that
// has one), or nil.
func organizerOf(cal *ical.Calendar) *ical.Prop {
	for _, c := range scheduledComponents(cal) {
		if p := c.Props.Get(ical.PropOrganizer); p != nil {
			return p
		}
	}
	return nil
}

// addrKey is the comparable form of a calendar-user address.
func addrKey(uri string) string {
	if a := mailtoAddress(uri); a != "" {
		return strings.ToLower(a)
	}
	return strings.ToLower(strings.TrimSpace(uri))
}

// attendeeSet lists the distinct ATTENDEEs of an object, in order of
// appearance, by addrKey, with the first property seen for each.
func attendeeSet(cal *ical.Calendar) ([]string, map[string]ical.Prop) {
	var keys []string
	props := map[string]ical.Prop{}
	for _, c := range scheduledComponents(cal) {
		for _, a := range c.Props[ical.PropAttendee] {
			k := addrKey(a.Value)
			if _, ok := props[k]; !ok {
				keys = append(keys, k)
				props[k] = a
			}
		}
	}
	return keys, props
}

// clientScheduled reports whether a property asks the server not to
// schedule for it (RFC 6638 §7.1: SCHEDULE-AGENT CLIENT or NONE).
func clientScheduled(p *ical.Prop) bool {
	if p == nil {
		return false
	}
	v := strings.ToUpper(p.Params.Get(paramScheduleAgent))
	return v == "CLIENT" || v == "NONE"
}

// partStat is an attendee's PARTSTAT in a component ("NEEDS-ACTION"
// when absent, RFC 5545 §3.2.12), "" if the component does not name the
// attendee.
func partStat(c *ical.Component, key string) string {
	for _, a := range c.Props[ical.PropAttendee] {
		if addrKey(a.Value) == key {
			if v := strings.ToUpper(a.Params.Get(ical.ParamParticipationStatus)); v != "" {
				return v
			}
			return "NEEDS-ACTION"
		}
	}
	return ""
}

// componentKey identifies a component of an object: its RECURRENCE-ID,
// empty for the master.
func componentKey(c *ical.Component) string {
	if p := c.Props.Get(ical.PropRecurrenceID); p != nil {
		return p.Value
	}
	return ""
}

// sequenceOf is a component's SEQUENCE (0 when absent, RFC 5545 §3.8.7.4).
func sequenceOf(c *ical.Component) int {
	if p := c.Props.Get(ical.PropSequence); p != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(p.Value)); err == nil {
			return n
		}
	}
	return 0
}

// setAttendeeParam sets a parameter of one attendee's ATTENDEE property
// in every component that names it.
func setAttendeeParam(cal *ical.Calendar, key, param, value string) {
	for _, c := range scheduledComponents(cal) {
		atts := c.Props[ical.PropAttendee]
		for i := range atts {
			if addrKey(atts[i].Value) == key {
				if atts[i].Params == nil {
					atts[i].Params = ical.Params{}
				}
				atts[i].Params.Set(param, value)
			}
		}
	}
}

// cloneCalendar deep-copies a calendar through its encoding.
func cloneCalendar(cal *ical.Calendar) (*ical.Calendar, error) {
	data, err := encodeCalendar(cal)
	if err != nil {
		return nil, err
	}
	return ical.NewDecoder(bytes.NewReader(data)).Decode()
}

// encodeCalendar encodes a calendar with go-ical.
func encodeCalendar(cal *ical.Calendar) ([]byte, error) {
	var b bytes.Buffer
	if err := ical.NewEncoder(&b).Encode(cal); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// itipMessage makes the iTIP message of a method from an object (RFC
// 5546 §3.2): a copy with METHOD set and without the server's
// SCHEDULE-STATUS and SCHEDULE-FORCE-SEND parameters (RFC 6638 §3.2.9,
// §7.2) and its reply stamps (itip_order.go). A CANCEL carries STATUS:CANCELLED (RFC 5546 §3.2.5).
func itipMessage(cal *ical.Calendar, method string) (*ical.Calendar, error) {
	msg, err := cloneCalendar(cal)
	if err != nil {
		return nil, err
	}
	msg.Props.SetText(ical.PropMethod, method)
	for _, c := range scheduledComponents(msg) {
		for _, name := range []string{ical.PropAttendee, ical.PropOrganizer} {
			for _, p := range c.Props[name] {
				p.Params.Del(paramScheduleStatus)
				p.Params.Del(paramForceSend)
				p.Params.Del(paramReplyStamp)
			}
		}
		if method == methodCancel {
			c.Props.SetText(ical.PropStatus, "CANCELLED")
		}
	}
	return msg, nil
}

// withoutMethod removes METHOD, which a calendar object resource may not
// have (RFC 4791 §4.1), from a copy stored in a calendar.
func withoutMethod(cal *ical.Calendar) *ical.Calendar {
	cal.Props.Del(ical.PropMethod)
	return cal
}

// messageName is a fresh resource name for a scheduling message in an
// inbox.
func messageName() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + ".ics"
}
