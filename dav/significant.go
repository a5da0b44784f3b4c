package dav

import (
	"slices"
	"strings"

	"github.com/emersion/go-ical"
)

// paramScheduleForceSend is RFC 6638 §7.2's SCHEDULE-FORCE-SEND: the
// client asks for a REQUEST to an attendee the server would otherwise
// leave alone.
const paramScheduleForceSend = "SCHEDULE-FORCE-SEND"

// significantProps are the properties of a scheduled component whose
// change the attendees are told about: when, how often, whether it
// happens, and what and where it is. Alarms, TRANSP, CLASS, colour,
// DTSTAMP and the like concern the organizer's copy only.
var significantProps = []string{
	ical.PropDateTimeStart, ical.PropDateTimeEnd, ical.PropDuration, ical.PropDue,
	ical.PropRecurrenceRule, ical.PropRecurrenceDates, ical.PropExceptionDates, ical.PropRecurrenceID,
	ical.PropStatus, ical.PropSequence, ical.PropSummary, ical.PropLocation, ical.PropDescription,
	ical.PropOrganizer,
}

// significantState is what of an organizer's object the attendees are
// told about (significantProps and the set of attendees, per
// component), as a comparable string.
func significantState(cal *ical.Calendar) string {
	var comps []string
	for _, c := range scheduledComponents(cal) {
		var b strings.Builder
		b.WriteString(c.Name)
		for _, name := range significantProps {
			for _, p := range c.Props[name] {
				b.WriteString("\n" + name)
				keys := make([]string, 0, len(p.Params))
				for k := range p.Params {
					if k != paramScheduleStatus && k != paramScheduleForceSend {
						keys = append(keys, k)
					}
				}
				slices.Sort(keys)
				for _, k := range keys {
					b.WriteString(";" + k + "=" + strings.Join(p.Params[k], ","))
				}
				b.WriteString(":" + p.Value)
			}
		}
		var att []string
		for _, a := range c.Props[ical.PropAttendee] {
			att = append(att, addrKey(a.Value))
		}
		slices.Sort(att)
		b.WriteString("\nATTENDEES:" + strings.Join(att, ","))
		comps = append(comps, b.String())
	}
	slices.Sort(comps)
	return strings.Join(comps, "\n--\n")
}

// unchangedFor reports, for an organizer's PUT, the attendees who need
// no new REQUEST (RFC 6638 §7.2: the server need not send one when
// nothing relevant to the attendee changed): every attendee of the
// previous copy when nothing significant changed, except those the
// client marks SCHEDULE-FORCE-SEND=REQUEST. New attendees always get
// one. The SCHEDULE-STATUS the previous copy recorded for them is
// returned so that it is kept.
func unchangedFor(cal, prevCal *ical.Calendar) map[string]string {
	if prevCal == nil || significantState(cal) != significantState(prevCal) {
		return nil
	}
	_, oldProps := attendeeSet(prevCal)
	_, props := attendeeSet(cal)
	out := map[string]string{}
	for k, p := range props {
		old, ok := oldProps[k]
		if !ok || strings.EqualFold(p.Params.Get(paramScheduleForceSend), "REQUEST") {
			continue
		}
		out[k] = old.Params.Get(paramScheduleStatus)
	}
	return out
}

// delAttendeeParam removes a parameter of one attendee's ATTENDEE
// property in every component that names it.
func delAttendeeParam(cal *ical.Calendar, key, param string) {
	for _, c := range scheduledComponents(cal) {
		for _, a := range c.Props[ical.PropAttendee] {
			if addrKey(a.Value) == key && a.Params != nil {
				a.Params.Del(param)
			}
		}
	}
}
