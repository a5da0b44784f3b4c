package ews_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-ical"

	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/store"
)

const organizerAddr = "bob@example.test"

// addOrganizer gives the test server a second user, Bob, who sends
// meetings to Anna.
func (s *testServer) addOrganizer(t *testing.T) {
	t.Helper()
	if err := s.ews.AddUser(ewstest.User{Login: "bob", Password: "Bob-Pa55", SMTP: organizerAddr}); err != nil {
		t.Fatal(err)
	}
}

var firstItemID = regexp.MustCompile(`<t:ItemId Id="([^"]+)"`)

// asOrganizer runs one EWS operation as Bob, the way Outlook sends
// meetings (our client never does: it always sends SendToNone), and
// returns the id of the first item in the answer.
func (s *testServer) asOrganizer(t *testing.T, body string) string {
	t.Helper()
	return s.as(t, "bob", "Bob-Pa55", body)
}

// as runs one EWS operation as a user and returns the id of the first
// item in the answer.
func (s *testServer) as(t *testing.T, login, password, body string) string {
	t.Helper()
	env := `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"` +
		` xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">` +
		`<soap:Header><t:RequestServerVersion Version="Exchange2016"/></soap:Header><soap:Body>` + body + `</soap:Body></soap:Envelope>`
	req, err := http.NewRequest("POST", s.hs.URL+"/EWS/Exchange.asmx", strings.NewReader(env))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.SetBasicAuth(login, password)
	resp, err := s.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || strings.Contains(string(data), `ResponseClass="Error"`) {
		t.Fatalf("as %s: %d %v %s", login, resp.StatusCode, err, data)
	}
	if m := firstItemID.FindSubmatch(data); m != nil {
		return string(m[1])
	}
	return ""
}

// sendMeeting makes Bob send a meeting with Anna (and someone of
// another server) as required attendees.
func (s *testServer) sendMeeting(t *testing.T, subject, recurrence string) string {
	t.Helper()
	return s.asOrganizer(t, `<m:CreateItem SendMeetingInvitations="SendToAllAndSaveCopy"><m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId><m:Items>`+
		`<t:CalendarItem><t:Subject>`+subject+`</t:Subject><t:Start>2026-07-01T09:00:00Z</t:Start><t:End>2026-07-01T10:00:00Z</t:End>`+
		`<t:RequiredAttendees><t:Attendee><t:Mailbox><t:EmailAddress>`+owner+`</t:EmailAddress></t:Mailbox></t:Attendee>`+
		`<t:Attendee><t:Mailbox><t:EmailAddress>carol@example.org</t:EmailAddress></t:Mailbox></t:Attendee></t:RequiredAttendees>`+
		recurrence+`<t:StartTimeZone Id="UTC"/><t:EndTimeZone Id="UTC"/></t:CalendarItem></m:Items></m:CreateItem>`)
}

const dailyThrice = `<t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence><t:NumberedRecurrence><t:StartDate>2026-07-01</t:StartDate><t:NumberOfOccurrences>3</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>`

// uidOf reads the UID of Bob's item id.
func (s *testServer) uidOf(t *testing.T, id string) string {
	t.Helper()
	var uid string
	err := s.client(t, nil).Mailbox(organizerAddr).GetItem(t.Context(), []ews.ItemID{{ID: id}}, ews.ShapeCalendar, func(it ews.Item) error {
		if it.CalendarItem != nil {
			uid = it.CalendarItem.UID
		}
		return it.Err
	})
	if err != nil || uid == "" {
		t.Fatalf("UID of %s: %q %v", id, uid, err)
	}
	return uid
}

// calendarItemOf is the id of the item of uid in a mailbox's calendar.
func (s *testServer) calendarItemOf(t *testing.T, mailbox, uid string) string {
	t.Helper()
	ctx := t.Context()
	mb := s.client(t, nil).Mailbox(mailbox)
	changes, _, _, err := mb.SyncFolderItems(ctx, ews.FolderRef{Distinguished: "calendar"}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []ews.ItemID
	for _, c := range changes {
		ids = append(ids, c.ItemID)
	}
	found := ""
	err = mb.GetItem(ctx, ids, ews.ShapeCalendar, func(it ews.Item) error {
		if it.CalendarItem != nil && it.CalendarItem.UID == uid {
			found = it.ID.ID
		}
		return it.Err
	})
	if err != nil || found == "" {
		t.Fatalf("no item of %s in %s's calendar: %v", uid, mailbox, err)
	}
	return found
}

// answer makes login answer (AcceptItem, DeclineItem) the meeting
// whose item in their calendar is id, sending the response.
func (s *testServer) answer(t *testing.T, login, password, kind, id string) {
	t.Helper()
	s.as(t, login, password, `<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:`+kind+`><t:ReferenceItemId Id="`+id+`"/></t:`+kind+`></m:Items></m:CreateItem>`)
}

// methodOf is the METHOD of an iTIP message and the RECURRENCE-ID and
// STATUS of its one VEVENT.
func methodOf(cal *ical.Calendar) string {
	if cal == nil {
		return "none"
	}
	out := "?"
	if m := cal.Props.Get(ical.PropMethod); m != nil {
		out = m.Value
	}
	for _, ev := range cal.Events() {
		if rid := ev.Props.Get(ical.PropRecurrenceID); rid != nil {
			out += " " + rid.Value
		}
		if s := ev.Props.Get(ical.PropStatus); s != nil {
			out += " " + s.Value
		}
	}
	return out
}

// TestMeetingsSentByServer: the meeting messages the test server makes
// are migrated with their iTIP meaning. Bob invites Anna to a meeting
// and a series (a MeetingRequest and her tentative calendar item each);
// she accepts the series (her request leaves the inbox); Anna invites
// Bob, who declines (a MeetingResponse in her inbox). The pending
// invitation is an event with PARTSTAT NEEDS-ACTION and a
// METHOD:REQUEST copy in the schedule inbox, the accepted series an
// ACCEPTED event without one, and Bob is DECLINED in Anna's event.
// Then Bob cancels the meeting (CancelCalendarItem) and one occurrence
// of the series (DeleteItem with SendMeetingCancellations): the event
// (or the instance) is STATUS:CANCELLED and the schedule inbox holds a
// METHOD:CANCEL copy of each (RFC 6638 §4.1, RFC 5546 §3.2.5).
// Regression: a cancellation left nothing in the schedule inbox.
func TestMeetingsSentByServer(t *testing.T) {
	srv := newTestServer(t, ewstest.Options{})
	srv.addOrganizer(t)
	lunch := srv.sendMeeting(t, "Lunch", "")
	daily := srv.sendMeeting(t, "Daily", dailyThrice)
	lunchUID, dailyUID := srv.uidOf(t, lunch), srv.uidOf(t, daily)
	srv.answer(t, "anna", "Anna-Pa55", "AcceptItem", srv.calendarItemOf(t, owner, dailyUID))
	review := srv.as(t, "anna", "Anna-Pa55", `<m:CreateItem SendMeetingInvitations="SendOnlyToAll"><m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId><m:Items>`+
		`<t:CalendarItem><t:Subject>Review</t:Subject><t:Start>2026-07-02T13:00:00Z</t:Start><t:End>2026-07-02T14:00:00Z</t:End>`+
		`<t:RequiredAttendees><t:Attendee><t:Mailbox><t:EmailAddress>`+organizerAddr+`</t:EmailAddress></t:Mailbox></t:Attendee></t:RequiredAttendees>`+
		`<t:StartTimeZone Id="UTC"/><t:EndTimeZone Id="UTC"/></t:CalendarItem></m:Items></m:CreateItem>`)
	var reviewUID string
	if err := srv.client(t, nil).Mailbox(owner).GetItem(t.Context(), []ews.ItemID{{ID: review}}, ews.ShapeCalendar, func(it ews.Item) error {
		reviewUID = it.CalendarItem.UID
		return it.Err
	}); err != nil {
		t.Fatal(err)
	}
	srv.answer(t, "bob", "Bob-Pa55", "DeclineItem", srv.calendarItemOf(t, organizerAddr, reviewUID))

	m, res, st, account := srv.firstPass(t)
	var err error
	if res.Meetings != 2 || res.Events != 3 {
		t.Errorf("first pass: %d meeting messages applied, %d events; want 2 (the request, the response) and 3", res.Meetings, res.Events)
	}
	events := objectsByUID(t, st, account, "")
	for uid, want := range map[string]string{lunchUID: "NEEDS-ACTION", dailyUID: "ACCEPTED"} {
		if events[uid] == nil || partstats(events[uid])[owner] != want {
			t.Errorf("event %s: want %s, got %v", uid, want, events[uid])
		}
	}
	if events[reviewUID] == nil || partstats(events[reviewUID])[organizerAddr] != "DECLINED" {
		t.Errorf("Anna's own meeting after Bob's answer: %v", events[reviewUID])
	}
	inbox := objectsByUID(t, st, account, "inbox")
	if got := methodOf(inbox[lunchUID]) + ", " + methodOf(inbox[dailyUID]); got != "REQUEST, none" || len(inbox) != 1 {
		t.Errorf("schedule inbox after the invitations: %s (%d messages)", got, len(inbox))
	}

	srv.asOrganizer(t, `<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:CancelCalendarItem><t:ReferenceItemId Id="`+lunch+`"/></t:CancelCalendarItem></m:Items></m:CreateItem>`)
	srv.asOrganizer(t, `<m:DeleteItem DeleteType="MoveToDeletedItems" SendMeetingCancellations="SendOnlyToAll"><m:ItemIds><t:OccurrenceItemId RecurringMasterId="`+daily+`" InstanceIndex="2"/></m:ItemIds></m:DeleteItem>`)
	res, err = m.Sync(t.Context(), testJob)
	if err != nil {
		t.Fatal(err)
	}
	if res.Meetings != 2 {
		t.Errorf("second pass: %d meeting messages applied, want the 2 cancellations", res.Meetings)
	}
	events = objectsByUID(t, st, account, "")
	if s := master(events[lunchUID]).Props.Get(ical.PropStatus); s == nil || s.Value != "CANCELLED" {
		t.Errorf("the cancelled meeting's STATUS: %v", s)
	}
	cancelled := ""
	for _, ev := range events[dailyUID].Events() {
		if rid, s := ev.Props.Get(ical.PropRecurrenceID), ev.Props.Get(ical.PropStatus); rid != nil && s != nil {
			cancelled += rid.Value + " " + s.Value
		}
	}
	if cancelled != "20260702T090000Z CANCELLED" {
		t.Errorf("the series' cancelled instance: %q", cancelled)
	}
	inbox = objectsByUID(t, st, account, "inbox")
	if got := methodOf(inbox[lunchUID]) + ", " + methodOf(inbox[dailyUID]); got != "CANCEL CANCELLED, CANCEL 20260702T090000Z CANCELLED" {
		t.Errorf("schedule inbox after the cancellations: %s", got)
	}

	res, err = m.Sync(t.Context(), testJob)
	if err != nil || res.Meetings != 0 || res.Events != 0 {
		t.Errorf("third pass: %+v %v", res, err)
	}
}

// TestTwoWayCancelToInbox: when the organizer cancels a synced meeting
// Anna attends in Exchange, the pull marks her event cancelled and puts
// a METHOD:CANCEL copy into her schedule inbox, once. Regression: the
// sync only set STATUS:CANCELLED.
func TestTwoWayCancelToInbox(t *testing.T) {
	e := newTwoWayEnv(t)
	e.srv.addOrganizer(t)
	ctx := t.Context()
	s := e.syncer(t, twoWay, nil)
	once := e.passes(t, s)
	lunch := e.srv.sendMeeting(t, "Lunch", "")
	uid := e.srv.uidOf(t, lunch)
	if r := once("import"); r.Pulled != 1 {
		t.Fatalf("import: %+v", r)
	}
	e.srv.asOrganizer(t, `<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:CancelCalendarItem><t:ReferenceItemId Id="`+lunch+`"/></t:CancelCalendarItem></m:Items></m:CreateItem>`)
	if r := once("cancellation"); r.Pulled != 1 {
		t.Fatalf("cancellation: %+v", r)
	}
	if got := methodOf(objectsByUID(t, e.st, e.account, "inbox")[uid]); got != "CANCEL CANCELLED" {
		t.Errorf("schedule inbox: %s", got)
	}
	token := func() uint64 {
		c, err := e.st.Collection(ctx, e.account, store.KindCalendar, "inbox")
		if err != nil {
			t.Fatal(err)
		}
		return c.SyncToken
	}
	before := token()
	if r := once("settle"); r.Pulled+r.Pushed != 0 {
		t.Errorf("settle: %+v", r)
	}
	if token() != before {
		t.Error("the schedule inbox changed again")
	}
}
