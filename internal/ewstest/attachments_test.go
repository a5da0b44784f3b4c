package ewstest

import (
	"encoding/base64"
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
