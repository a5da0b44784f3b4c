package ewstest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRequest sends arbitrary operations to a seeded server: it must
// never panic, and must answer every request with a SOAP envelope (a
// response or a fault) or an HTTP error.
func FuzzRequest(f *testing.F) {
	for _, op := range []string{
		getInbox,
		`<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:CalendarView StartDate="2026-01-01T00:00:00Z" EndDate="2027-01-01T00:00:00Z"/><m:ParentFolderIds><t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds></m:FindItem>`,
		`<m:CreateItem SendMeetingInvitations="SendToNone"><m:Items>` + calItem("x", "2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z", "UTC", `<t:Recurrence><t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Day</t:DaysOfWeek><t:DayOfWeekIndex>Last</t:DayOfWeekIndex></t:RelativeMonthlyRecurrence><t:NumberedRecurrence><t:StartDate>2026-01-01</t:StartDate><t:NumberOfOccurrences>4</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>`) + `</m:Items></m:CreateItem>`,
		syncItems(distinguished("inbox"), "", 3),
		`<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape></m:SyncFolderHierarchy>`,
		subscribeReq(distinguished("inbox"), "5"),
		update("AutoResolve", `<t:ItemId Id="YWxpY2VAZXhhbXBsZS50ZXN0AEkAMzA="/>`, setField("calendar:Start", "CalendarItem", "<t:Start>2026-05-01T00:00:00Z</t:Start>")),
		`<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:OccurrenceItemId RecurringMasterId="YWxpY2VAZXhhbXBsZS50ZXN0AEkAMzA=" InstanceIndex="2"/></m:ItemIds></m:DeleteItem>`,
	} {
		f.Add(op)
	}
	s := New(Options{MaxRequestBytes: 1 << 16})
	if err := s.AddUser(User{Login: "alice", Password: pw, SMTP: "alice@example.test"}); err != nil {
		f.Fatal(err)
	}
	if err := s.Generate("alice@example.test", Generate{Messages: 3, CalendarItems: 4, Recurring: 3, Contacts: 2}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, op string) {
		req := httptest.NewRequest("POST", "/EWS/Exchange.asmx", strings.NewReader(envelope("Exchange2016", "", op)))
		req.SetBasicAuth("alice", pw)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code == http.StatusOK || w.Code == http.StatusInternalServerError {
			n, err := parseXML(bytes.NewReader(w.Body.Bytes()))
			if err != nil || n.Local != "Envelope" || n.path("Header", "ServerVersionInfo") == nil {
				t.Fatalf("HTTP %d, not an EWS envelope: %v %q", w.Code, err, w.Body.String())
			}
		}
	})
}
