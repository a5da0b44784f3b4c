package ewstest

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func mimeMessage(subject string) string {
	raw := "From: Sender <sender@example.org>\r\nTo: alice@example.test\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Mar 2026 10:00:00 +0300\r\nMessage-ID: <m1@example.org>\r\n\r\nHello\r\n"
	return `<t:Message><t:MimeContent CharacterSet="UTF-8">` + base64.StdEncoding.EncodeToString([]byte(raw)) + `</t:MimeContent></t:Message>`
}

func TestMessageFromMIME(t *testing.T) {
	e := newEnv(t, Options{})
	ids := e.createItems("alice", "", distinguished("inbox"), mimeMessage("=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte("Привет"))+"?="), `MessageDisposition="SaveOnly"`)
	m := e.getItem("alice", "", itemID(ids[0], ""), `<t:AdditionalProperties><t:FieldURI FieldURI="item:MimeContent"/></t:AdditionalProperties>`)
	if m.text("Subject") != "Привет" || m.text("DateTimeSent") != "2026-03-02T07:00:00Z" || m.text("IsRead") != "false" ||
		m.path("From", "Mailbox").text("EmailAddress") != "sender@example.org" || m.text("InternetMessageId") != "<m1@example.org>" {
		t.Fatalf("envelope from MIME: %s", dump(m))
	}
	raw, err := base64.StdEncoding.DecodeString(m.text("MimeContent"))
	if err != nil || !strings.Contains(string(raw), "Message-ID: <m1@example.org>") {
		t.Fatalf("MimeContent round trip: %q %v", raw, err)
	}
	// IdOnly with additional properties returns just those.
	m = e.getItem("alice", "", itemID(ids[0], ""), "")
	if m.child("MimeContent") != nil {
		t.Fatal("AllProperties includes MimeContent")
	}
	o := e.ok("alice", "", `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="message:IsRead"/></t:AdditionalProperties></m:ItemShape><m:ItemIds>`+itemID(ids[0], "")+`</m:ItemIds></m:GetItem>`)
	if got := o.path("Items", "Message"); len(got.Kids) != 2 || got.Kids[0].Local != "ItemId" || got.Kids[1].Local != "IsRead" {
		t.Fatalf("IdOnly+IsRead: %s", dump(got))
	}
	// A message made without MIME gets one on request.
	ids = e.createItems("alice", "", distinguished("drafts"), `<t:Message><t:Subject>Draft</t:Subject><t:Body BodyType="Text">Text body</t:Body></t:Message>`, `MessageDisposition="SaveOnly"`)
	m = e.getItem("alice", "", itemID(ids[0], ""), `<t:AdditionalProperties><t:FieldURI FieldURI="item:MimeContent"/></t:AdditionalProperties>`)
	raw, _ = base64.StdEncoding.DecodeString(m.text("MimeContent"))
	if !strings.Contains(string(raw), "Subject: Draft") || !strings.Contains(string(raw), base64.StdEncoding.EncodeToString([]byte("Text body"))) {
		t.Fatalf("synthesised MIME: %q", raw)
	}
	// FindItem returns no bodies or recipients, and refuses MimeContent.
	f := e.ok("alice", "", `<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ParentFolderIds>`+distinguished("inbox")+`</m:ParentFolderIds></m:FindItem>`)
	if it := f.path("RootFolder", "Items", "Message"); it.text("Subject") != "Привет" || it.child("ToRecipients") != nil || it.child("MimeContent") != nil {
		t.Fatalf("FindItem: %s", dump(it))
	}
	if rc := e.code("alice", "", `<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:MimeContent"/></t:AdditionalProperties></m:ItemShape><m:ParentFolderIds>`+distinguished("inbox")+`</m:ParentFolderIds></m:FindItem>`); rc != "ErrorInvalidPropertyRequest" {
		t.Fatalf("FindItem with MimeContent: %s", rc)
	}
	if rc := e.code("alice", "", `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id="bogus"/></m:ItemIds></m:GetItem>`); rc != "ErrorInvalidIdMalformed" {
		t.Fatalf("bogus id: %s", rc)
	}
}

func setField(uri, kind, prop string) string {
	return `<t:SetItemField><t:FieldURI FieldURI="` + uri + `"/><t:` + kind + `>` + prop + `</t:` + kind + `></t:SetItemField>`
}

func update(mode, idElem, updates string) string {
	return `<m:UpdateItem ConflictResolution="` + mode + `" MessageDisposition="SaveOnly" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange>` +
		idElem + `<t:Updates>` + updates + `</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>`
}

func TestUpdateConflicts(t *testing.T) {
	e := newEnv(t, Options{})
	ids := e.createItems("alice", "", distinguished("inbox"), `<t:Message><t:Subject>One</t:Subject></t:Message>`, `MessageDisposition="SaveOnly"`)
	ck0 := e.getItem("alice", "", itemID(ids[0], ""), "").child("ItemId").get("ChangeKey")
	m := e.ok("alice", "", update("NeverOverwrite", itemID(ids[0], ck0), setField("item:Subject", "Message", "<t:Subject>Two</t:Subject>")))
	ck1 := m.path("Items", "Message", "ItemId").get("ChangeKey")
	if ck1 == ck0 || ck1 == "" {
		t.Fatalf("change key did not change: %s", ck1)
	}
	// Stale key: NeverOverwrite refuses; AutoResolve refuses a change to
	// the same property and accepts one to another; AlwaysOverwrite wins.
	if rc := e.code("alice", "", update("NeverOverwrite", itemID(ids[0], ck0), setField("message:IsRead", "Message", "<t:IsRead>true</t:IsRead>"))); rc != "ErrorIrresolvableConflict" {
		t.Fatalf("NeverOverwrite stale: %s", rc)
	}
	if rc := e.code("alice", "", update("AutoResolve", itemID(ids[0], ck0), setField("item:Subject", "Message", "<t:Subject>Three</t:Subject>"))); rc != "ErrorIrresolvableConflict" {
		t.Fatalf("AutoResolve same field: %s", rc)
	}
	if rc := e.code("alice", "", update("AutoResolve", itemID(ids[0], ck0), setField("message:IsRead", "Message", "<t:IsRead>true</t:IsRead>"))); rc != "NoError" {
		t.Fatalf("AutoResolve other field: %s", rc)
	}
	if rc := e.code("alice", "", update("AlwaysOverwrite", itemID(ids[0], ck0), setField("item:Subject", "Message", "<t:Subject>Four</t:Subject>"))); rc != "NoError" {
		t.Fatalf("AlwaysOverwrite: %s", rc)
	}
	got := e.getItem("alice", "", itemID(ids[0], ""), "")
	if got.text("Subject") != "Four" || got.text("IsRead") != "true" {
		t.Fatalf("after updates: %s", dump(got))
	}
	e.ok("alice", "", update("AlwaysOverwrite", itemID(ids[0], ""), `<t:DeleteItemField><t:FieldURI FieldURI="item:Subject"/></t:DeleteItemField>`))
	if got := e.getItem("alice", "", itemID(ids[0], ""), ""); got.child("Subject") != nil {
		t.Fatalf("DeleteItemField left Subject: %s", dump(got))
	}
}

func TestContactIndexedFields(t *testing.T) {
	e := newEnv(t, Options{})
	ids := e.createItems("alice", "", distinguished("contacts"), `<t:Contact><t:GivenName>Иван</t:GivenName><t:EmailAddresses><t:Entry Key="EmailAddress1">ivan@example.org</t:Entry></t:EmailAddresses><t:PhysicalAddresses><t:Entry Key="Business"><t:Street>Тверская 1</t:Street><t:City>Москва</t:City></t:Entry></t:PhysicalAddresses><t:Surname>Петров</t:Surname></t:Contact>`, "")
	c := e.getItem("alice", "", itemID(ids[0], ""), "")
	if c.text("DisplayName") != "Иван Петров" || c.text("ItemClass") != "IPM.Contact" {
		t.Fatalf("contact: %s", dump(c))
	}
	idx := func(uri, key, kind, prop string) string {
		return `<t:SetItemField><t:IndexedFieldURI FieldURI="` + uri + `" FieldIndex="` + key + `"/><t:Contact>` + prop + `</t:Contact></t:SetItemField>`
	}
	e.ok("alice", "", update("AlwaysOverwrite", itemID(ids[0], ""),
		idx("contacts:EmailAddress", "EmailAddress2", "", `<t:EmailAddresses><t:Entry Key="EmailAddress2">petrov@example.org</t:Entry></t:EmailAddresses>`)+
			idx("contacts:PhysicalAddress:City", "Business", "", `<t:PhysicalAddresses><t:Entry Key="Business"><t:City>Тверь</t:City></t:Entry></t:PhysicalAddresses>`)+
			`<t:DeleteItemField><t:IndexedFieldURI FieldURI="contacts:EmailAddress" FieldIndex="EmailAddress1"/></t:DeleteItemField>`))
	c = e.getItem("alice", "", itemID(ids[0], ""), "")
	emails := c.child("EmailAddresses").Kids
	if len(emails) != 1 || emails[0].get("Key") != "EmailAddress2" || emails[0].Text != "petrov@example.org" {
		t.Fatalf("emails: %s", dump(c.child("EmailAddresses")))
	}
	if a := c.path("PhysicalAddresses", "Entry"); a.text("City") != "Тверь" || a.text("Street") != "Тверская 1" {
		t.Fatalf("address: %s", dump(a))
	}
	// Properties come back in schema order whatever order they were set in.
	var names []string
	for _, k := range c.Kids {
		names = append(names, k.Local)
	}
	if strings.Index(strings.Join(names, " "), "EmailAddresses") > strings.Index(strings.Join(names, " "), "Surname") {
		t.Fatalf("order: %v", names)
	}
}

func syncItems(folder, state string, max int) string {
	st := ""
	if state != "" {
		st = "<m:SyncState>" + state + "</m:SyncState>"
	}
	return `<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/></t:AdditionalProperties></m:ItemShape><m:SyncFolderId>` +
		folder + `</m:SyncFolderId>` + st + `<m:MaxChangesReturned>` + strconv.Itoa(max) + `</m:MaxChangesReturned></m:SyncFolderItems>`
}

// syncAll pages through SyncFolderItems from state, saving the state
// after every page (as a migration does), and returns the changes as
// "Kind:subject-or-id" and the last state.
func (e *env) syncAll(folder, state string, max int) ([]string, string) {
	e.t.Helper()
	var out []string
	for range 1000 {
		m := e.ok("alice", "", syncItems(folder, state, max))
		state = m.text("SyncState")
		for _, c := range m.child("Changes").Kids {
			label := c.Local + ":"
			if c.Local == "Delete" || c.Local == "ReadFlagChange" {
				label += c.child("ItemId").get("Id")
			} else {
				label += c.Kids[0].text("Subject")
			}
			out = append(out, label)
		}
		if len(m.child("Changes").Kids) > max {
			e.t.Fatalf("%d changes with MaxChangesReturned %d", len(m.child("Changes").Kids), max)
		}
		if m.text("IncludesLastItemInRange") == "true" {
			return out, state
		}
	}
	e.t.Fatal("sync did not end")
	return nil, ""
}

func TestSyncFolderItems(t *testing.T) {
	e := newEnv(t, Options{})
	var items string
	for i := range 7 {
		items += fmt.Sprintf(`<t:Message><t:Subject>m%d</t:Subject></t:Message>`, i)
	}
	ids := e.createItems("alice", "", distinguished("inbox"), items, `MessageDisposition="SaveOnly"`)
	got, state := e.syncAll(distinguished("inbox"), "", 3)
	if strings.Join(got, " ") != "Create:m0 Create:m1 Create:m2 Create:m3 Create:m4 Create:m5 Create:m6" {
		t.Fatalf("first sync: %v", got)
	}
	if again, _ := e.syncAll(distinguished("inbox"), state, 3); len(again) != 0 {
		t.Fatalf("second sync: %v", again)
	}
	e.ok("alice", "", update("AlwaysOverwrite", itemID(ids[1], ""), setField("message:IsRead", "Message", "<t:IsRead>true</t:IsRead>")))
	e.ok("alice", "", update("AlwaysOverwrite", itemID(ids[2], ""), setField("item:Subject", "Message", "<t:Subject>m2'</t:Subject>")))
	e.ok("alice", "", `<m:DeleteItem DeleteType="HardDelete"><m:ItemIds>`+itemID(ids[3], "")+`</m:ItemIds></m:DeleteItem>`)
	e.ok("alice", "", `<m:DeleteItem DeleteType="MoveToDeletedItems"><m:ItemIds>`+itemID(ids[4], "")+`</m:ItemIds></m:DeleteItem>`)
	e.createItems("alice", "", distinguished("inbox"), `<t:Message><t:Subject>new</t:Subject></t:Message><t:Message><t:Subject>gone</t:Subject></t:Message>`, `MessageDisposition="SaveOnly"`)
	delta, _ := e.syncAll(distinguished("inbox"), state, 2)
	want := "ReadFlagChange:" + ids[1] + " Update:m2' Delete:" + ids[3] + " Delete:" + ids[4] + " Create:new Create:gone"
	if strings.Join(delta, " ") != want {
		t.Fatalf("delta\n got %v\nwant %v", delta, want)
	}
	// The moved item is a create in Deleted Items, under a new id.
	if moved, _ := e.syncAll(distinguished("deleteditems"), "", 10); strings.Join(moved, " ") != "Create:m4" {
		t.Fatalf("deleted items: %v", moved)
	}
	if rc := e.code("alice", "", `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds>`+itemID(ids[4], "")+`</m:ItemIds></m:GetItem>`); rc != "ErrorItemNotFound" {
		t.Fatalf("old id of a moved item: %s", rc)
	}
	if rc := e.code("alice", "", syncItems(distinguished("inbox"), "Z2FyYmFnZQ==", 5)); rc != "ErrorInvalidSyncStateData" {
		t.Fatalf("bad state: %s", rc)
	}
	if rc := e.code("alice", "", syncItems(distinguished("calendar"), state, 5)); rc != "ErrorInvalidSyncStateData" {
		t.Fatalf("another folder's state: %s", rc)
	}
	// Another instance (a restarted ewsd with the same seed) refuses it.
	other := newEnv(t, Options{})
	if rc := other.code("alice", "", syncItems(distinguished("inbox"), state, 5)); rc != "ErrorInvalidSyncStateData" {
		t.Fatalf("state from another instance: %s", rc)
	}
}

func TestFolders(t *testing.T) {
	e := newEnv(t, Options{})
	create := func(parent, name string) *node {
		return e.call("alice", "", `<m:CreateFolder><m:ParentFolderId>`+parent+`</m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>`+name+`</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>`)[0]
	}
	m := create(distinguished("inbox"), "Проекты")
	id := m.path("Folders", "Folder", "FolderId").get("Id")
	if id == "" {
		t.Fatalf("CreateFolder: %s", dump(m))
	}
	if rc := create(distinguished("inbox"), "проекты").text("ResponseCode"); rc != "ErrorFolderExists" {
		t.Fatalf("duplicate: %s", rc)
	}
	create(`<t:FolderId Id="`+id+`"/>`, "2026")
	find := func(traversal string) []string {
		m := e.ok("alice", "", `<m:FindFolder Traversal="`+traversal+`"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:ParentFolderIds>`+distinguished("msgfolderroot")+`</m:ParentFolderIds></m:FindFolder>`)
		var names []string
		for _, f := range m.path("RootFolder", "Folders").Kids {
			names = append(names, f.text("DisplayName"))
		}
		return names
	}
	if deep := strings.Join(find("Deep"), ","); !strings.Contains(deep, "Inbox,Проекты,2026,Sent Items") {
		t.Fatalf("deep: %s", deep)
	}
	if shallow := strings.Join(find("Shallow"), ","); strings.Contains(shallow, "Проекты") || !strings.Contains(shallow, "Calendar") {
		t.Fatalf("shallow: %s", shallow)
	}
	hier := func(state string) (*node, []*node) {
		st := ""
		if state != "" {
			st = "<m:SyncState>" + state + "</m:SyncState>"
		}
		m := e.ok("alice", "", `<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>`+st+`</m:SyncFolderHierarchy>`)
		return m, m.child("Changes").Kids
	}
	m, changes := hier("")
	if len(changes) != len(wellKnown)-1+2 {
		t.Fatalf("hierarchy: %d changes", len(changes))
	}
	if _, again := hier(m.text("SyncState")); len(again) != 0 {
		t.Fatalf("second hierarchy sync: %s", dump(again...))
	}
	state := m.text("SyncState")
	create(distinguished("msgfolderroot"), "Архив")
	if _, d := hier(state); len(d) != 1 || d[0].Local != "Create" || d[0].Kids[0].text("DisplayName") != "Архив" {
		t.Fatalf("hierarchy delta: %s", dump(d...))
	}
	// Calendar folders come as CalendarFolder with their class.
	m = e.ok("alice", "", `<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:FolderIds>`+distinguished("calendar")+`</m:FolderIds></m:GetFolder>`)
	if f := m.path("Folders", "CalendarFolder"); f.text("FolderClass") != "IPF.Appointment" || f.text("DistinguishedFolderId") != "calendar" {
		t.Fatalf("calendar folder: %s", dump(m))
	}
}

// TestConcurrentClients runs writers and syncers at once: every item
// created is seen exactly once by a paging sync run afterwards.
func TestConcurrentClients(t *testing.T) {
	e := newEnv(t, Options{})
	var wg sync.WaitGroup
	const writers, each = 4, 10
	errs := make(chan string, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				code, n := e.post("alice", "", `<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>`+distinguished("inbox")+`</m:SavedItemFolderId><m:Items>`+
					fmt.Sprintf(`<t:Message><t:Subject>w%d-%d</t:Subject></t:Message>`, w, i)+`</m:Items></m:CreateItem>`)
				if code != 200 || n.path("Body", "CreateItemResponse", "ResponseMessages").Kids[0].get("ResponseClass") != "Success" {
					errs <- fmt.Sprintf("create: %d", code)
				}
				e.post("alice", "", syncItems(distinguished("inbox"), "", 5))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, _ := e.syncAll(distinguished("inbox"), "", 7)
	seen := map[string]bool{}
	for _, g := range got {
		if seen[g] {
			t.Fatalf("%s twice", g)
		}
		seen[g] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d items synced, want %d", len(seen), writers*each)
	}
}

// TestConcurrentUpdateAndRead updates a contact's dictionary entries in
// place while other clients read it: responses are written under the
// server's lock, so the race detector sees no shared write.
func TestConcurrentUpdateAndRead(t *testing.T) {
	e := newEnv(t, Options{})
	ids := e.createItems("alice", "", distinguished("contacts"), `<t:Contact><t:GivenName>A</t:GivenName><t:PhysicalAddresses><t:Entry Key="Home"><t:City>X</t:City></t:Entry></t:PhysicalAddresses></t:Contact>`, "")
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				if w == 0 {
					e.post("alice", "", update("AlwaysOverwrite", itemID(ids[0], ""),
						`<t:SetItemField><t:IndexedFieldURI FieldURI="contacts:PhysicalAddress:City" FieldIndex="Home"/><t:Contact><t:PhysicalAddresses><t:Entry Key="Home"><t:City>`+strconv.Itoa(i)+`</t:City></t:Entry></t:PhysicalAddresses></t:Contact></t:SetItemField>`))
				} else {
					e.post("alice", "", `<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds>`+itemID(ids[0], "")+`</m:ItemIds></m:GetItem>`)
				}
			}
		}()
	}
	wg.Wait()
	if city := e.getItem("alice", "", itemID(ids[0], ""), "").path("PhysicalAddresses", "Entry").text("City"); city != "14" {
		t.Fatalf("city %q", city)
	}
}
