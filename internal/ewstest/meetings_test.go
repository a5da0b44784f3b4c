package ewstest

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
)

// TestMeetingMessages: meeting requests, responses and cancellations
// ([MS-OXWSMTGS] MeetingMessageType and the types extending it) are
// messages with meeting properties: their own item classes, unread
// until read (the inbox counts them), MIME content made when asked,
// properties in schema order (the message's, then the meeting's), and
// SyncFolderItems names their element.
func TestMeetingMessages(t *testing.T) {
	e := newEnv(t, Options{})
	org := `<Organizer><Mailbox><EmailAddress>bob@example.test</EmailAddress></Mailbox></Organizer>`
	for _, x := range []string{
		`<MeetingRequest><Subject>Plan</Subject><Start>2026-07-01T09:00:00Z</Start><End>2026-07-01T10:00:00Z</End>` + org +
			`<UID>plan-1</UID><ResponseType>NoResponseReceived</ResponseType><From><Mailbox><EmailAddress>bob@example.test</EmailAddress></Mailbox></From></MeetingRequest>`,
		`<MeetingResponse><Subject>Accepted: Plan</Subject><ResponseType>Accept</ResponseType><UID>plan-1</UID></MeetingResponse>`,
		`<MeetingCancellation><Subject>Canceled: Plan</Subject><UID>plan-1</UID></MeetingCancellation>`,
	} {
		if _, err := e.srv.AddItem("alice@example.test", "inbox", x); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := e.syncAll(distinguished("inbox"), "", 10)
	if strings.Join(got, " ") != "Create:Plan Create:Accepted: Plan Create:Canceled: Plan" {
		t.Fatalf("sync: %v", got)
	}
	m := e.ok("alice", "", syncItems(distinguished("inbox"), "", 10))
	var kinds []string
	for _, c := range m.child("Changes").Kids {
		kinds = append(kinds, c.Kids[0].Local)
	}
	if strings.Join(kinds, " ") != "MeetingRequest MeetingResponse MeetingCancellation" {
		t.Fatalf("item elements %v", kinds)
	}
	id := m.child("Changes").Kids[0].Kids[0].child("ItemId").get("Id")
	req := e.getItem("alice", "", itemID(id, ""), `<t:IncludeMimeContent>true</t:IncludeMimeContent><t:AdditionalProperties><t:FieldURI FieldURI="item:MimeContent"/></t:AdditionalProperties>`)
	if req.text("ItemClass") != "IPM.Schedule.Meeting.Request" || req.text("IsRead") != "false" || req.text("UID") != "plan-1" {
		t.Errorf("request: %s", dump(req))
	}
	var order []string
	for _, k := range req.Kids {
		order = append(order, k.Local)
	}
	at := func(name string) int {
		for i, n := range order {
			if n == name {
				return i
			}
		}
		t.Fatalf("no %s in %v", name, order)
		return -1
	}
	if !(at("Subject") < at("From") && at("From") < at("IsRead") && at("IsRead") < at("ResponseType") &&
		at("ResponseType") < at("UID") && at("UID") < at("Start") && at("Start") < at("Organizer")) {
		t.Errorf("not in schema order: %v", order)
	}
	mime, err := base64.StdEncoding.DecodeString(req.text("MimeContent"))
	if err != nil || !strings.Contains(string(mime), "Subject: Plan") || !strings.Contains(string(mime), "From: <bob@example.test>") {
		t.Errorf("MIME content: %v %q", err, mime)
	}
	f := e.ok("alice", "", `<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds>`+distinguished("inbox")+`</m:FolderIds></m:GetFolder>`)
	if n := f.path("Folders").Kids[0].text("UnreadCount"); n != "3" {
		t.Errorf("inbox unread count %s, want 3", n)
	}
}

// inboxMeetings lists the meeting messages of user's inbox, oldest
// first, with all their properties.
func (e *env) inboxMeetings(user string) []*node {
	e.t.Helper()
	m := e.ok(user, "", `<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>`+
		`<m:SortOrder><t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="item:DateTimeReceived"/></t:FieldOrder></m:SortOrder>`+
		`<m:ParentFolderIds>`+distinguished("inbox")+`</m:ParentFolderIds></m:FindItem>`)
	var out []*node
	for _, it := range m.path("RootFolder", "Items").kids() {
		if strings.HasPrefix(it.Local, "Meeting") {
			out = append(out, e.getItem(user, "", itemID(it.child("ItemId").get("Id"), ""), ""))
		}
	}
	return out
}

// TestMeetingMessagesSent: an organizer's CreateItem with
// SendMeetingInvitations puts a MeetingRequest (NewMeetingRequest) into
// each attendee's inbox of this server, with their own tentative
// calendar item of the UID as AssociatedCalendarItemId; an UpdateItem
// with SendMeetingInvitationsOrCancellations sends a FullUpdate and
// makes the earlier request out of date; a DeleteItem of an occurrence
// with SendMeetingCancellations sends a MeetingCancellation with its
// RecurrenceId and cancels the attendee's occurrence; CancelCalendarItem
// cancels the whole meeting for the attendee and moves the organizer's
// item to Deleted Items ([MS-OXWSMTGS]). SendToNone sends nothing.
func TestMeetingMessagesSent(t *testing.T) {
	e := newEnv(t, Options{})
	rec := `<t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence><t:NumberedRecurrence><t:StartDate>2026-07-01</t:StartDate><t:NumberOfOccurrences>3</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>`
	attendees := `<t:RequiredAttendees><t:Attendee><t:Mailbox><t:EmailAddress>bob@example.test</t:EmailAddress></t:Mailbox></t:Attendee>` +
		`<t:Attendee><t:Mailbox><t:EmailAddress>carol@elsewhere.test</t:EmailAddress></t:Mailbox></t:Attendee></t:RequiredAttendees>`
	item := `<t:CalendarItem><t:Subject>Review</t:Subject><t:Start>2026-07-01T09:00:00Z</t:Start><t:End>2026-07-01T10:00:00Z</t:End>` +
		attendees + rec + `<t:StartTimeZone Id="UTC"/><t:EndTimeZone Id="UTC"/></t:CalendarItem>`
	e.createItems("alice", "", distinguished("calendar"), strings.Replace(item, "Review", "Quiet", 1), `SendMeetingInvitations="SendToNone"`)
	if got := e.inboxMeetings("bob"); len(got) != 0 {
		t.Fatalf("SendToNone delivered %d meeting messages", len(got))
	}
	id := e.createItems("alice", "", distinguished("calendar"), item, `SendMeetingInvitations="SendToAllAndSaveCopy"`)[0]
	got := e.inboxMeetings("bob")
	if len(got) != 1 || got[0].Local != "MeetingRequest" || got[0].text("MeetingRequestType") != "NewMeetingRequest" ||
		got[0].text("Subject") != "Review" || got[0].path("From", "Mailbox").text("EmailAddress") != "alice@example.test" {
		t.Fatalf("bob's inbox after the invitation: %s", dump(got...))
	}
	uid := e.getItem("alice", "", itemID(id, ""), "").text("UID")
	assoc := got[0].child("AssociatedCalendarItemId").get("Id")
	copyItem := e.getItem("bob", "", itemID(assoc, ""), "")
	if copyItem.text("UID") != uid || got[0].text("UID") != uid || copyItem.text("MyResponseType") != "NoResponseReceived" ||
		copyItem.path("Organizer", "Mailbox").text("EmailAddress") != "alice@example.test" || copyItem.text("CalendarItemType") != "RecurringMaster" {
		t.Fatalf("bob's calendar item: %s", dump(copyItem))
	}

	ck := e.getItem("alice", "", itemID(id, ""), "").child("ItemId").get("ChangeKey")
	e.ok("alice", "", `<m:UpdateItem ConflictResolution="AutoResolve" SendMeetingInvitationsOrCancellations="SendToAllAndSaveCopy"><m:ItemChanges><t:ItemChange>`+
		itemID(id, ck)+`<t:Updates><t:SetItemField><t:FieldURI FieldURI="calendar:Location"/><t:CalendarItem><t:Location>Room 7</t:Location></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>`)
	got = e.inboxMeetings("bob")
	if len(got) != 2 || got[0].text("IsOutOfDate") != "true" || got[1].text("MeetingRequestType") != "FullUpdate" || got[1].text("Location") != "Room 7" {
		t.Fatalf("bob's inbox after the update: %s", dump(got...))
	}
	if loc := e.getItem("bob", "", itemID(assoc, ""), "").text("Location"); loc != "Room 7" {
		t.Errorf("bob's calendar item after the update: location %q", loc)
	}

	e.ok("alice", "", `<m:DeleteItem DeleteType="MoveToDeletedItems" SendMeetingCancellations="SendOnlyToAll"><m:ItemIds>`+occurrence(id, 2)+`</m:ItemIds></m:DeleteItem>`)
	got = e.inboxMeetings("bob")
	if len(got) != 3 || got[2].Local != "MeetingCancellation" || got[2].text("RecurrenceId") != "2026-07-02T09:00:00Z" || got[2].text("UID") != uid {
		t.Fatalf("bob's inbox after the occurrence's cancellation: %s", dump(got...))
	}
	if occ := e.getItem("bob", "", occurrence(assoc, 2), ""); occ.text("IsCancelled") != "true" || occ.text("CalendarItemType") != "Exception" {
		t.Errorf("bob's 2nd occurrence: %s", dump(occ))
	}

	e.ok("alice", "", `<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:CancelCalendarItem>`+
		`<t:ReferenceItemId Id="`+id+`"/><t:NewBodyContent BodyType="Text">Called off</t:NewBodyContent></t:CancelCalendarItem></m:Items></m:CreateItem>`)
	got = e.inboxMeetings("bob")
	if len(got) != 4 || got[3].Local != "MeetingCancellation" || got[3].child("RecurrenceId") != nil || got[3].text("Subject") != "Canceled: Review" {
		t.Fatalf("bob's inbox after the cancellation: %s", dump(got...))
	}
	if c := e.getItem("bob", "", itemID(assoc, ""), ""); c.text("IsCancelled") != "true" {
		t.Errorf("bob's calendar item after the cancellation: IsCancelled %q", c.text("IsCancelled"))
	}
	if rc := e.code("alice", "", `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds>`+itemID(id, "")+`</m:ItemIds></m:GetItem>`); rc != "ErrorItemNotFound" {
		t.Errorf("alice's cancelled item is still in her calendar: %s", rc)
	}
	if inv := e.srv.Invitations(); len(inv) != 1 || !slices.Contains(inv[0].Attendees, "carol@elsewhere.test") {
		t.Errorf("recorded invitations: %+v", inv)
	}
}

// TestMeetingResponses: an attendee's AcceptItem (on the request) and
// DeclineItem (on the calendar item) set their item's MyResponseType
// (a declined item leaves the calendar), take the request out of the
// inbox, and give the organizer a MeetingResponse and the answer in
// the attendee's ResponseType of the organizer's item ([MS-OXWSMTGS]).
func TestMeetingResponses(t *testing.T) {
	e := newEnv(t, Options{})
	meeting := func(subject string) string {
		return e.createItems("alice", "", distinguished("calendar"), `<t:CalendarItem><t:Subject>`+subject+`</t:Subject>`+
			`<t:Start>2026-07-01T09:00:00Z</t:Start><t:End>2026-07-01T10:00:00Z</t:End><t:RequiredAttendees><t:Attendee><t:Mailbox>`+
			`<t:EmailAddress>bob@example.test</t:EmailAddress></t:Mailbox></t:Attendee></t:RequiredAttendees></t:CalendarItem>`,
			`SendMeetingInvitations="SendOnlyToAll"`)[0]
	}
	answer := func(kind, ref string) {
		e.ok("bob", "", `<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:`+kind+`><t:ReferenceItemId Id="`+ref+`"/></t:`+kind+`></m:Items></m:CreateItem>`)
	}
	bobsAnswer := func(id string) string {
		return e.getItem("alice", "", itemID(id, ""), "").path("RequiredAttendees", "Attendee").text("ResponseType")
	}

	plan := meeting("Plan")
	request := e.inboxMeetings("bob")[0]
	mine := request.child("AssociatedCalendarItemId").get("Id")
	answer("AcceptItem", request.child("ItemId").get("Id"))
	if got := e.inboxMeetings("bob"); len(got) != 0 {
		t.Errorf("the answered request is still in bob's inbox: %s", dump(got...))
	}
	if c := e.getItem("bob", "", itemID(mine, ""), ""); c.text("MyResponseType") != "Accept" {
		t.Errorf("bob's item: MyResponseType %q", c.text("MyResponseType"))
	}
	got := e.inboxMeetings("alice")
	if len(got) != 1 || got[0].Local != "MeetingResponse" || got[0].text("ResponseType") != "Accept" ||
		got[0].text("Subject") != "Accepted: Plan" || got[0].path("From", "Mailbox").text("EmailAddress") != "bob@example.test" {
		t.Fatalf("alice's inbox: %s", dump(got...))
	}
	if a := bobsAnswer(plan); a != "Accept" {
		t.Errorf("bob's ResponseType in alice's item: %q", a)
	}

	retro := meeting("Retro")
	mine = e.inboxMeetings("bob")[0].child("AssociatedCalendarItemId").get("Id")
	answer("DeclineItem", mine)
	if rc := e.code("bob", "", `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds>`+itemID(mine, "")+`</m:ItemIds></m:GetItem>`); rc != "ErrorItemNotFound" {
		t.Errorf("bob's declined item is still in his calendar: %s", rc)
	}
	if got := e.inboxMeetings("alice"); len(got) != 2 || got[1].text("ResponseType") != "Decline" || bobsAnswer(retro) != "Decline" {
		t.Errorf("alice after the decline: %s, bob's ResponseType %q", dump(got...), bobsAnswer(retro))
	}
}
