package ews_test

import (
	"strings"
	"testing"

	"github.com/emersion/go-ical"

	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/store"
)

const (
	bobMailbox  = `<Mailbox><Name>Bob</Name><EmailAddress>bob@example.org</EmailAddress><RoutingType>SMTP</RoutingType></Mailbox>`
	daveMailbox = `<Mailbox><Name>Dave</Name><EmailAddress>dave@example.org</EmailAddress><RoutingType>SMTP</RoutingType></Mailbox>`
	annaAsked   = `<Attendee><Mailbox><EmailAddress>anna@example.test</EmailAddress></Mailbox><ResponseType>Unknown</ResponseType></Attendee>`
)

func meetingItem(kind, uid, subject, extra string) string {
	return `<` + kind + `><Subject>` + subject + `</Subject><From>` + bobMailbox + `</From>` + extra + `<UID>` + uid + `</UID></` + kind + `>`
}

// objectsByUID reads the objects of an account's calendar collection
// by UID ("" names the default calendar).
func objectsByUID(t *testing.T, st store.Collections, account, name string) map[string]*ical.Calendar {
	t.Helper()
	all, err := st.ListCollections(t.Context(), account, store.KindCalendar)
	if err != nil {
		t.Fatal(err)
	}
	var c store.Collection
	for _, cc := range all {
		// "": the default calendar, the first that is no schedule box.
		if cc.Name == name || name == "" && c.ID == 0 && cc.Name != "inbox" && cc.Name != "outbox" {
			c = cc
		}
	}
	if c.ID == 0 {
		t.Fatalf("no calendar %q in %+v", name, all)
	}
	objs, err := st.QueryObjects(t.Context(), c.ID, store.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*ical.Calendar{}
	for _, o := range objs {
		cal, err := ical.NewDecoder(strings.NewReader(string(o.Data))).Decode()
		if err != nil {
			t.Fatal(err)
		}
		out[o.UID] = cal
	}
	return out
}

// partstats are the PARTSTATs of a calendar's master VEVENT by address.
func partstats(cal *ical.Calendar) map[string]string {
	out := map[string]string{}
	for _, ev := range cal.Events() {
		if ev.Props.Get(ical.PropRecurrenceID) != nil {
			continue
		}
		for _, a := range ev.Props.Values(ical.PropAttendee) {
			out[strings.TrimPrefix(strings.ToLower(a.Value), "mailto:")] = a.Params.Get(ical.ParamParticipationStatus)
		}
	}
	return out
}

func master(cal *ical.Calendar) *ical.Component {
	for _, ev := range cal.Events() {
		if ev.Props.Get(ical.PropRecurrenceID) == nil {
			return ev.Component
		}
	}
	return nil
}

// TestMeetings: meetings keep their iTIP meaning. An event the mailbox
// is invited to keeps its ORGANIZER and the mailbox's PARTSTAT from
// MyResponseType; a pending meeting request in the inbox is an
// invitation (its event, made from the request when the calendar has
// none, with PARTSTAT NEEDS-ACTION, and a METHOD:REQUEST copy in the
// schedule inbox), an answered one or one in Deleted Items is not; a
// response sets its sender's PARTSTAT in the organizer's event; a
// cancellation cancels the event (or the one instance it names, by an
// overriding VEVENT) and leaves a METHOD:CANCEL copy in the schedule
// inbox (RFC 6638 §4.1, RFC 5546 §3.2.5); and every meeting message is
// mail too. A second pass changes nothing. Regression: meeting messages
// were neither mail nor scheduling; a cancellation left nothing in the
// schedule inbox and an instance's cancellation changed nothing.
func TestMeetings(t *testing.T) {
	srv := newTestServer(t, ewstest.Options{})
	add := func(path, xml string) {
		t.Helper()
		if _, err := srv.ews.AddItem(owner, path, xml); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	times := `<Start>2026-07-01T09:00:00Z</Start><End>2026-07-01T10:00:00Z</End><StartTimeZone Id="UTC"/>`
	add("calendar", `<CalendarItem><Subject>Invited</Subject><UID>invited-1@example.org</UID>`+times+
		`<MyResponseType>NoResponseReceived</MyResponseType><Organizer>`+bobMailbox+`</Organizer><RequiredAttendees>`+annaAsked+
		`<Attendee><Mailbox><EmailAddress>carol@example.org</EmailAddress></Mailbox><ResponseType>Accept</ResponseType></Attendee></RequiredAttendees></CalendarItem>`)
	add("calendar", `<CalendarItem><Subject>Accepted</Subject><UID>accepted-1@example.org</UID>`+times+
		`<MyResponseType>Accept</MyResponseType><Organizer>`+bobMailbox+`</Organizer><RequiredAttendees>`+annaAsked+`</RequiredAttendees></CalendarItem>`)
	add("calendar", `<CalendarItem><Subject>Mine</Subject><UID>mine-1@example.test</UID>`+times+
		`<RequiredAttendees><Attendee>`+daveMailbox+`<ResponseType>NoResponseReceived</ResponseType></Attendee></RequiredAttendees></CalendarItem>`)
	add("calendar", `<CalendarItem><Subject>Called off</Subject><UID>cancelled-1@example.org</UID>`+times+
		`<MyResponseType>Accept</MyResponseType><Organizer>`+bobMailbox+`</Organizer><RequiredAttendees>`+annaAsked+`</RequiredAttendees></CalendarItem>`)
	add("calendar", `<CalendarItem><Subject>Weekly</Subject><UID>weekly-1@example.org</UID>`+times+
		`<Recurrence><WeeklyRecurrence><Interval>1</Interval><DaysOfWeek>Wednesday</DaysOfWeek></WeeklyRecurrence><NumberedRecurrence><StartDate>2026-07-01</StartDate><NumberOfOccurrences>4</NumberOfOccurrences></NumberedRecurrence></Recurrence>`+
		`<MyResponseType>Accept</MyResponseType><Organizer>`+bobMailbox+`</Organizer><RequiredAttendees>`+annaAsked+`</RequiredAttendees></CalendarItem>`)
	request := `<ResponseType>NoResponseReceived</ResponseType>`
	requestOf := times + `<Organizer>` + bobMailbox + `</Organizer><RequiredAttendees>` + annaAsked + `</RequiredAttendees>`
	add("inbox", meetingItem("MeetingRequest", "invited-1@example.org", "Invited", request+requestOf))
	add("inbox", meetingItem("MeetingRequest", "new-1@example.org", "Only requested", request+requestOf))
	add("inbox", meetingItem("MeetingRequest", "accepted-1@example.org", "Accepted", `<ResponseType>Accept</ResponseType>`+requestOf))
	add("deleteditems", meetingItem("MeetingRequest", "deleted-1@example.org", "Thrown away", request+requestOf))
	add("inbox", `<MeetingResponse><Subject>Declined: Mine</Subject><From>`+daveMailbox+`</From><ResponseType>Decline</ResponseType><UID>mine-1@example.test</UID></MeetingResponse>`)
	add("inbox", meetingItem("MeetingCancellation", "cancelled-1@example.org", "Canceled: Called off", ""))
	add("inbox", meetingItem("MeetingCancellation", "weekly-1@example.org", "Canceled: Weekly", `<RecurrenceId>2026-07-08T09:00:00Z</RecurrenceId>`))

	m, res, st, account := srv.firstPass(t)
	var err error
	if res.Meetings != 5 || res.Messages != 7 {
		t.Errorf("pass: %d meeting messages applied, %d messages copied; want 5 and 7", res.Meetings, res.Messages)
	}
	if s, err := st.Status(t.Context(), account, store.Inbox); err != nil || s.Messages != 6 {
		t.Errorf("INBOX: %d messages (%v), want the 6 meeting messages", s.Messages, err)
	}

	events := objectsByUID(t, st, account, "")
	inv := events["invited-1@example.org"]
	if inv == nil {
		t.Fatalf("no invited event: %v", keysOf(events))
	}
	if org := master(inv).Props.Get(ical.PropOrganizer); org == nil || !strings.EqualFold(org.Value, "mailto:bob@example.org") {
		t.Errorf("ORGANIZER %v", org)
	}
	if ps := partstats(inv); ps["anna@example.test"] != "NEEDS-ACTION" || ps["carol@example.org"] != "ACCEPTED" {
		t.Errorf("invited PARTSTATs %v", ps)
	}
	if ps := partstats(events["accepted-1@example.org"]); ps["anna@example.test"] != "ACCEPTED" {
		t.Errorf("accepted PARTSTATs %v", ps)
	}
	if only := events["new-1@example.org"]; only == nil || partstats(only)["anna@example.test"] != "NEEDS-ACTION" ||
		master(only).Props.Get(ical.PropOrganizer) == nil {
		t.Errorf("the event of a request without calendar item: %v", only)
	}
	if ps := partstats(events["mine-1@example.test"]); ps["dave@example.org"] != "DECLINED" {
		t.Errorf("the organizer's event after a response: %v", ps)
	}
	if s := master(events["cancelled-1@example.org"]).Props.Get(ical.PropStatus); s == nil || s.Value != "CANCELLED" {
		t.Errorf("the cancelled event's STATUS: %v", s)
	}
	if _, ok := events["deleted-1@example.org"]; ok {
		t.Error("a request in Deleted Items became an event")
	}

	weekly := events["weekly-1@example.org"]
	if n := len(weekly.Events()); n != 2 {
		t.Fatalf("the weekly event has %d VEVENTs, want the master and the cancelled instance", n)
	}
	for _, ev := range weekly.Events() {
		rid, status := ev.Props.Get(ical.PropRecurrenceID), ev.Props.Get(ical.PropStatus)
		switch {
		case rid == nil && status != nil:
			t.Errorf("the weekly master is %s", status.Value)
		case rid != nil && (rid.Value != "20260708T090000Z" || status == nil || status.Value != "CANCELLED" ||
			ev.Props.Get(ical.PropDateTimeStart).Value != "20260708T090000Z" || ev.Props.Get(ical.PropRecurrenceRule) != nil):
			t.Errorf("the cancelled instance: RECURRENCE-ID %s, STATUS %v, DTSTART %v", rid.Value, status, ev.Props.Get(ical.PropDateTimeStart))
		}
	}

	inbox := objectsByUID(t, st, account, "inbox")
	if len(inbox) != 4 || inbox["invited-1@example.org"] == nil || inbox["new-1@example.org"] == nil {
		t.Fatalf("schedule inbox: %v, want the two pending requests and two cancellations", keysOf(inbox))
	}
	for uid, want := range map[string]string{"cancelled-1@example.org": "", "weekly-1@example.org": "20260708T090000Z"} {
		cal := inbox[uid]
		if cal == nil {
			t.Errorf("no cancellation of %s in the schedule inbox", uid)
			continue
		}
		evs := cal.Events()
		if m := cal.Props.Get(ical.PropMethod); m == nil || m.Value != "CANCEL" || len(evs) != 1 {
			t.Errorf("%s in the schedule inbox: METHOD %v, %d VEVENTs", uid, m, len(evs))
			continue
		}
		rid, status := "", evs[0].Props.Get(ical.PropStatus)
		if p := evs[0].Props.Get(ical.PropRecurrenceID); p != nil {
			rid = p.Value
		}
		if rid != want || status == nil || status.Value != "CANCELLED" || evs[0].Props.Get(ical.PropOrganizer) == nil {
			t.Errorf("%s in the schedule inbox: RECURRENCE-ID %q STATUS %v", uid, rid, status)
		}
		delete(inbox, uid)
	}
	for uid, cal := range inbox {
		if m := cal.Props.Get(ical.PropMethod); m == nil || m.Value != "REQUEST" {
			t.Errorf("%s in the schedule inbox: METHOD %v", uid, m)
		}
		if partstats(cal)["anna@example.test"] != "NEEDS-ACTION" {
			t.Errorf("%s in the schedule inbox: %v", uid, partstats(cal))
		}
	}

	res, err = m.Sync(t.Context(), testJob)
	if err != nil || res.Meetings != 0 || res.Messages != 0 {
		t.Errorf("second pass: %+v %v", res, err)
	}
}
