package ewstest

import (
	"encoding/base64"
	"strings"
	"testing"
)

func getAttachment(id string) string {
	return `<m:GetAttachment><m:AttachmentIds><t:AttachmentId Id="` + id + `"/></m:AttachmentIds></m:GetAttachment>`
}

// TestAttachments: a calendar item created with a file attachment lists
// it (without content) in GetItem with HasAttachments; GetAttachment
// returns its bytes; CreateAttachment adds a file and an item
// attachment and moves the item's change key; DeleteAttachment removes
// one; the attachments of a deleted item are gone; bad attachments are
// refused.
func TestAttachments(t *testing.T) {
	e := newEnv(t, Options{})
	pdf := []byte("%PDF-1.4 agenda\x00\xff")
	item := `<t:CalendarItem><t:Subject>Planning</t:Subject><t:Attachments><t:FileAttachment><t:Name>agenda "v2".pdf</t:Name>` +
		`<t:ContentType>application/pdf</t:ContentType><t:Content>` + base64.StdEncoding.EncodeToString(pdf) + `</t:Content></t:FileAttachment></t:Attachments>` +
		`<t:Start>2026-05-04T09:00:00Z</t:Start><t:End>2026-05-04T10:00:00Z</t:End></t:CalendarItem>`
	msgs := e.call("alice", "", `<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId>`+distinguished("calendar")+`</m:SavedItemFolderId><m:Items>`+item+`</m:Items></m:CreateItem>`)
	created := msgs[0].path("Items").Kids[0]
	id := created.child("ItemId").get("Id")
	attID := created.path("Attachments", "FileAttachment", "AttachmentId")
	if attID == nil || attID.get("RootItemId") != id {
		t.Fatalf("CreateItem did not return the attachment's id: %s", dump(created))
	}
	got := e.getItem("alice", "", itemID(id, ""), "")
	listed := got.path("Attachments", "FileAttachment")
	if got.text("HasAttachments") != "true" || listed == nil || listed.text("Name") != `agenda "v2".pdf` ||
		listed.text("Size") != "17" || listed.child("Content") != nil || listed.child("AttachmentId").get("Id") != attID.get("Id") {
		t.Fatalf("GetItem: %s", dump(got.child("HasAttachments"), got.child("Attachments")))
	}
	a := e.ok("alice", "", getAttachment(attID.get("Id"))).path("Attachments", "FileAttachment")
	if b, err := base64.StdEncoding.DecodeString(a.text("Content")); err != nil || string(b) != string(pdf) || a.text("ContentType") != "application/pdf" {
		t.Fatalf("GetAttachment: %s", dump(a))
	}

	// CreateAttachment: a file and an item attachment, one message each.
	ck := got.child("ItemId").get("ChangeKey")
	msgs = e.call("alice", "", `<m:CreateAttachment><m:ParentItemId Id="`+id+`" ChangeKey="`+ck+`"/><m:Attachments>`+
		`<t:FileAttachment><t:Name>notes.txt</t:Name><t:Content>`+base64.StdEncoding.EncodeToString([]byte("notes"))+`</t:Content></t:FileAttachment>`+
		`<t:ItemAttachment><t:Name>Invitation</t:Name><t:Message><t:Subject>Invitation</t:Subject></t:Message></t:ItemAttachment>`+
		`</m:Attachments></m:CreateAttachment>`)
	if len(msgs) != 2 || msgs[0].get("ResponseClass") != "Success" || msgs[1].get("ResponseClass") != "Success" {
		t.Fatalf("CreateAttachment: %s", dump(msgs...))
	}
	second := msgs[1].path("Attachments", "ItemAttachment", "AttachmentId")
	if second.get("RootItemChangeKey") == ck || second.get("RootItemId") != id {
		t.Errorf("CreateAttachment's root change key did not move: %s", dump(second))
	}
	got = e.getItem("alice", "", itemID(id, ""), "")
	if n := len(got.child("Attachments").Kids); n != 3 || got.child("ItemId").get("ChangeKey") != second.get("RootItemChangeKey") {
		t.Fatalf("after CreateAttachment: %d attachments, %s", n, dump(got.child("ItemId")))
	}
	ia := e.ok("alice", "", getAttachment(second.get("Id"))).path("Attachments", "ItemAttachment")
	if ia.path("Message").text("Subject") != "Invitation" {
		t.Errorf("item attachment: %s", dump(ia))
	}
	if rc := e.code("alice", "", `<m:CreateAttachment><m:ParentItemId Id="`+id+`"/><m:Attachments><t:FileAttachment><t:Name>x</t:Name><t:Content>***</t:Content></t:FileAttachment></m:Attachments></m:CreateAttachment>`); rc != "ErrorRequiredPropertyMissing" {
		t.Errorf("bad content: %s", rc)
	}

	// DeleteAttachment.
	root := e.ok("alice", "", `<m:DeleteAttachment><m:AttachmentIds><t:AttachmentId Id="`+attID.get("Id")+`"/></m:AttachmentIds></m:DeleteAttachment>`).child("RootItemId")
	if root == nil || root.get("RootItemId") != id {
		t.Fatalf("DeleteAttachment: no RootItemId")
	}
	if rc := e.code("alice", "", getAttachment(attID.get("Id"))); rc != "ErrorInvalidAttachmentId" {
		t.Errorf("deleted attachment: %s", rc)
	}
	// bob has no right to alice's attachments.
	if rc := e.code("bob", "", getAttachment(second.get("Id"))); rc == "NoError" {
		t.Errorf("bob read alice's attachment")
	}
	// The item's deletion takes its attachments.
	e.ok("alice", "", `<m:DeleteItem DeleteType="HardDelete" SendMeetingCancellations="SendToNone"><m:ItemIds>`+itemID(id, "")+`</m:ItemIds></m:DeleteItem>`)
	if rc := e.code("alice", "", getAttachment(second.get("Id"))); rc != "ErrorInvalidAttachmentId" {
		t.Errorf("attachment of a deleted item: %s", rc)
	}
	if rc := e.code("alice", "", getAttachment("bm90IGFuIGlk")); rc != "ErrorInvalidIdMalformed" {
		t.Errorf("malformed id: %s", rc)
	}
}

// TestOccurrenceAttachments: CreateAttachment on an occurrence's ItemId
// makes that occurrence an exception with its own attachments (a copy
// of the series' and the new one); the master and the other
// occurrences keep the series' only; DeleteAttachment removes one of
// the exception's; deleting the occurrence takes its attachments.
func TestOccurrenceAttachments(t *testing.T) {
	e := newEnv(t, Options{})
	rec := `<t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence><t:NumberedRecurrence><t:StartDate>2026-05-04</t:StartDate><t:NumberOfOccurrences>4</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>`
	item := `<t:CalendarItem><t:Subject>Daily</t:Subject><t:Attachments><t:FileAttachment><t:Name>series.txt</t:Name><t:Content>` +
		base64.StdEncoding.EncodeToString([]byte("for all")) + `</t:Content></t:FileAttachment></t:Attachments>` +
		`<t:Start>2026-05-04T09:00:00Z</t:Start><t:End>2026-05-04T10:00:00Z</t:End>` + rec +
		`<t:StartTimeZone Id="UTC"/><t:EndTimeZone Id="UTC"/></t:CalendarItem>`
	id := e.createItems("alice", "", distinguished("calendar"), item, `SendMeetingInvitations="SendToNone"`)[0]
	// ParentItemId is an ItemIdType: the occurrence's own ItemId.
	occID := e.getItem("alice", "", occurrence(id, 2), "").child("ItemId").get("Id")
	msgs := e.call("alice", "", `<m:CreateAttachment><m:ParentItemId Id="`+occID+`"/>`+
		`<m:Attachments><t:FileAttachment><t:Name>day2.txt</t:Name><t:Content>`+base64.StdEncoding.EncodeToString([]byte("only day 2"))+
		`</t:Content></t:FileAttachment></m:Attachments></m:CreateAttachment>`)
	if len(msgs) != 1 || msgs[0].get("ResponseClass") != "Success" {
		t.Fatalf("CreateAttachment on an occurrence: %s", dump(msgs...))
	}
	names := func(n *node) []string {
		var out []string
		for _, a := range n.child("Attachments").kids() {
			out = append(out, a.text("Name"))
		}
		return out
	}
	second := e.getItem("alice", "", occurrence(id, 2), "")
	if got := names(second); second.text("CalendarItemType") != "Exception" || strings.Join(got, ",") != "series.txt,day2.txt" {
		t.Fatalf("2nd occurrence: %s, attachments %q", second.text("CalendarItemType"), got)
	}
	if got := names(e.getItem("alice", "", itemID(id, ""), "")); strings.Join(got, ",") != "series.txt" {
		t.Errorf("master's attachments: %q", got)
	}
	if got := names(e.getItem("alice", "", occurrence(id, 3), "")); strings.Join(got, ",") != "series.txt" {
		t.Errorf("3rd occurrence's attachments: %q", got)
	}
	day2 := second.child("Attachments").Kids[1].child("AttachmentId").get("Id")
	a := e.ok("alice", "", getAttachment(day2)).path("Attachments", "FileAttachment")
	if b, _ := base64.StdEncoding.DecodeString(a.text("Content")); string(b) != "only day 2" {
		t.Fatalf("GetAttachment of the exception's: %s", dump(a))
	}
	copied := second.child("Attachments").Kids[0].child("AttachmentId").get("Id")
	e.ok("alice", "", `<m:DeleteAttachment><m:AttachmentIds><t:AttachmentId Id="`+copied+`"/></m:AttachmentIds></m:DeleteAttachment>`)
	if got := names(e.getItem("alice", "", occurrence(id, 2), "")); strings.Join(got, ",") != "day2.txt" {
		t.Errorf("after DeleteAttachment: %q", got)
	}
	if got := names(e.getItem("alice", "", itemID(id, ""), "")); strings.Join(got, ",") != "series.txt" {
		t.Errorf("master's after the exception's deletion: %q", got)
	}
	e.ok("alice", "", `<m:DeleteItem DeleteType="HardDelete" SendMeetingCancellations="SendToNone"><m:ItemIds>`+occurrence(id, 2)+`</m:ItemIds></m:DeleteItem>`)
	if rc := e.code("alice", "", getAttachment(day2)); rc != "ErrorInvalidAttachmentId" {
		t.Errorf("attachment of a deleted occurrence: %s", rc)
	}
}
