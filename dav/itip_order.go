package dav

import (
	"time"

	"github.com/emersion/go-ical"
)

// Which scheduling message is newer (RFC 5546 §2.1.5): a message about
// a component whose SEQUENCE is lower than the recipient's copy of that
// component is obsolete and changes nothing; of REPLYs to the same
// SEQUENCE, the one with the later DTSTAMP wins. Mail may deliver iMIP
// messages in any order, so both are checked when a REPLY or CANCEL is
// applied: the organizer's copy records, on each ATTENDEE, the DTSTAMP
// of the reply its PARTSTAT came from (paramReplyStamp, as CalendarServer
// keeps X-CALENDARSERVER-DTSTAMP), and a reply stamped earlier is
// ignored. The REPLYs the server makes itself are stamped when made
// (RFC 5545 §3.8.7.2: with a METHOD, DTSTAMP is when the message was
// created).

// paramReplyStamp records on an ATTENDEE of the organizer's copy the
// DTSTAMP (UTC, RFC 5545 basic form) of the reply that set its PARTSTAT.
// It is the server's: iTIP messages are sent without it.
const paramReplyStamp = "X-MAILYARD-REPLY-DTSTAMP"

// utcStamp is the layout of DTSTAMP values compared as strings.
const utcStamp = "20060102T150405Z"

// dtstampOf is a component's DTSTAMP in UTC as utcStamp, "" if it has
// none or it does not parse.
func dtstampOf(c *ical.Component) string {
	p := c.Props.Get(ical.PropDateTimeStamp)
	if p == nil {
		return ""
	}
	t, err := p.DateTime(time.UTC)
	if err != nil {
		return ""
	}
	return t.UTC().Format(utcStamp)
}

// stampNow sets the DTSTAMP of every scheduled component of a message
// the server makes to now.
func stampNow(msg *ical.Calendar, now time.Time) {
	for _, c := range scheduledComponents(msg) {
		c.Props.SetDateTime(ical.PropDateTimeStamp, now.UTC())
	}
}

// olderReply reports whether a reply component stamped stamp is older
// than the reply an ATTENDEE's PARTSTAT came from.
func olderReply(att ical.Prop, stamp string) bool {
	prev := att.Params.Get(paramReplyStamp)
	return prev != "" && stamp != "" && stamp < prev
}

// matchingComponent is the component of cal a message component speaks
// about: the one of the same RECURRENCE-ID, else the master.
func matchingComponent(cal *ical.Calendar, c *ical.Component) *ical.Component {
	var master *ical.Component
	key := componentKey(c)
	for _, oc := range scheduledComponents(cal) {
		switch componentKey(oc) {
		case key:
			return oc
		case "":
			master = oc
		}
	}
	return master
}

// currentComponents lists the components of a message that are not
// obsolete against the recipient's copy: SEQUENCE not lower than that
// of the component of the copy they speak about.
func currentComponents(copyCal, msg *ical.Calendar) []*ical.Component {
	var out []*ical.Component
	for _, c := range scheduledComponents(msg) {
		if oc := matchingComponent(copyCal, c); oc == nil || sequenceOf(c) >= sequenceOf(oc) {
			out = append(out, c)
		}
	}
	return out
}

// hasMaster reports whether an object has a component without
// RECURRENCE-ID.
func hasMaster(cal *ical.Calendar) bool {
	for _, c := range scheduledComponents(cal) {
		if componentKey(c) == "" {
			return true
		}
	}
	return false
}

// instancesOnly reports whether every component of a message names a
// RECURRENCE-ID: a CANCEL of single instances (RFC 5546 §3.2.5).
func instancesOnly(msg *ical.Calendar) bool {
	comps := scheduledComponents(msg)
	for _, c := range comps {
		if componentKey(c) == "" {
			return false
		}
	}
	return len(comps) > 0
}

// cancelInstances marks the instances a CANCEL names cancelled in the
// recipient's copy of a recurring object: the copy's override of each
// becomes STATUS:CANCELLED, or the message's component is added as one
// (with its RECURRENCE-ID as DTSTART when it has none), so the rest of
// the series stays. comps come from a copy of the message.
func cancelInstances(copyCal *ical.Calendar, comps []*ical.Component) {
	for _, c := range comps {
		if oc := matchingComponent(copyCal, c); oc != nil && componentKey(oc) == componentKey(c) {
			oc.Props.SetText(ical.PropStatus, "CANCELLED")
			continue
		}
		c.Props.SetText(ical.PropStatus, "CANCELLED")
		if c.Props.Get(ical.PropDateTimeStart) == nil {
			rid := *c.Props.Get(ical.PropRecurrenceID)
			rid.Name = ical.PropDateTimeStart
			c.Props.Set(&rid)
		}
		copyCal.Children = append(copyCal.Children, c)
	}
}
