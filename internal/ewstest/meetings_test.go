package ewstest

import (
	"encoding/base64"
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
