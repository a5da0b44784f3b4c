package ewstest

import (
	"strconv"
	"strings"
	"testing"
)

func calItem(subject, start, end, zone, recurrence string) string {
	return `<t:CalendarItem><t:Subject>` + subject + `</t:Subject><t:Start>` + start + `</t:Start><t:End>` + end + `</t:End>` +
		recurrence + `<t:StartTimeZone Id="` + zone + `"/><t:EndTimeZone Id="` + zone + `"/></t:CalendarItem>`
}

func occurrence(master string, index int) string {
	return `<t:OccurrenceItemId RecurringMasterId="` + master + `" InstanceIndex="` + strconv.Itoa(index) + `"/>`
}

// TestCalendarSeriesAcrossDST: a weekly series in Berlin keeps 09:00
// local across the March change (07:00Z in CET summer, 08:00Z winter);
// an occurrence is moved, one deleted; the master lists both; a
// CalendarView expands the rest.
func TestCalendarSeriesAcrossDST(t *testing.T) {
	e := newEnv(t, Options{})
	rec := `<t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday Thursday</t:DaysOfWeek><t:FirstDayOfWeek>Monday</t:FirstDayOfWeek></t:WeeklyRecurrence><t:NumberedRecurrence><t:StartDate>2026-03-16</t:StartDate><t:NumberOfOccurrences>6</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>`
	ids := e.createItems("alice", "", distinguished("calendar"), calItem("Standup", "2026-03-16T08:00:00Z", "2026-03-16T08:15:00Z", "W. Europe Standard Time", rec), `SendMeetingInvitations="SendToNone"`)
	master := e.getItem("alice", "", itemID(ids[0], ""), "")
	if master.text("CalendarItemType") != "RecurringMaster" || master.text("IsRecurring") != "true" || master.text("UID") == "" {
		t.Fatalf("master: %s", dump(master))
	}
	if master.path("LastOccurrence").text("Start") != "2026-04-02T07:00:00Z" {
		t.Fatalf("last occurrence: %s", dump(master.child("LastOccurrence")))
	}
	// 16 Mar 08:00Z, 19 Mar 08:00Z, 23 Mar 08:00Z, 26 Mar 08:00Z, then
	// summer time from 29 Mar: 30 Mar 07:00Z.
	third := e.getItem("alice", "", occurrence(ids[0], 3), "")
	if third.text("Start") != "2026-03-23T08:00:00Z" || third.text("CalendarItemType") != "Occurrence" {
		t.Fatalf("3rd: %s", dump(third))
	}
	fifth := e.getItem("alice", "", occurrence(ids[0], 5), "")
	if fifth.text("Start") != "2026-03-30T07:00:00Z" || fifth.text("End") != "2026-03-30T07:15:00Z" {
		t.Fatalf("5th across DST: %s %s", fifth.text("Start"), fifth.text("End"))
	}
	if rc := e.code("alice", "", `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds>`+occurrence(ids[0], 7)+`</m:ItemIds></m:GetItem>`); rc != "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange" {
		t.Fatalf("index 7: %s", rc)
	}
	// Move the 3rd (through its occurrence id), delete the 2nd.
	occID := third.child("ItemId").get("Id")
	e.ok("alice", "", update("AlwaysOverwrite", itemID(occID, ""),
		setField("item:Subject", "CalendarItem", "<t:Subject>Standup (moved)</t:Subject>")+
			setField("calendar:Start", "CalendarItem", "<t:Start>2026-03-23T10:00:00Z</t:Start>")+
			setField("calendar:End", "CalendarItem", "<t:End>2026-03-23T10:15:00Z</t:End>")))
	e.ok("alice", "", `<m:DeleteItem DeleteType="HardDelete" SendMeetingCancellations="SendToNone"><m:ItemIds>`+occurrence(ids[0], 2)+`</m:ItemIds></m:DeleteItem>`)
	if rc := e.code("alice", "", `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds>`+occurrence(ids[0], 2)+`</m:ItemIds></m:GetItem>`); rc != "ErrorCalendarOccurrenceIsDeletedFromRecurrence" {
		t.Fatalf("deleted occurrence: %s", rc)
	}
	master = e.getItem("alice", "", itemID(ids[0], ""), "")
	mod := master.path("ModifiedOccurrences", "Occurrence")
	if mod.text("Start") != "2026-03-23T10:00:00Z" || mod.text("OriginalStart") != "2026-03-23T08:00:00Z" {
		t.Fatalf("modified occurrences: %s", dump(master.child("ModifiedOccurrences")))
	}
	if d := master.path("DeletedOccurrences", "DeletedOccurrence"); d.text("Start") != "2026-03-19T08:00:00Z" {
		t.Fatalf("deleted occurrences: %s", dump(master.child("DeletedOccurrences")))
	}
	if ex := e.getItem("alice", "", occurrence(ids[0], 3), ""); ex.text("CalendarItemType") != "Exception" || ex.text("Subject") != "Standup (moved)" {
		t.Fatalf("exception: %s", dump(ex))
	}
	view := e.ok("alice", "", `<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape><m:CalendarView StartDate="2026-03-01T00:00:00Z" EndDate="2026-04-30T00:00:00Z"/><m:ParentFolderIds>`+distinguished("calendar")+`</m:ParentFolderIds></m:FindItem>`)
	var starts []string
	for _, it := range view.path("RootFolder", "Items").Kids {
		starts = append(starts, it.text("Start"))
	}
	want := "2026-03-16T08:00:00Z 2026-03-23T10:00:00Z 2026-03-26T08:00:00Z 2026-03-30T07:00:00Z 2026-04-02T07:00:00Z"
	if strings.Join(starts, " ") != want {
		t.Fatalf("view\n got %v\nwant %s", starts, want)
	}
	// A change that fails leaves the item as it was.
	if rc := e.code("alice", "", update("AlwaysOverwrite", itemID(ids[0], ""),
		setField("item:Subject", "CalendarItem", "<t:Subject>Broken</t:Subject>")+
			setField("calendar:End", "CalendarItem", "<t:End>2026-03-01T00:00:00Z</t:End>"))); rc != "ErrorCalendarEndDateIsEarlierThanStartDate" {
		t.Fatalf("end before start: %s", rc)
	}
	if got := e.getItem("alice", "", itemID(ids[0], ""), ""); got.text("Subject") != "Standup" || got.text("End") != "2026-03-16T08:15:00Z" {
		t.Fatalf("after a failed change: %s %s", got.text("Subject"), got.text("End"))
	}
	// Changing the pattern drops the exceptions, as Exchange does.
	daily := `<t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence><t:EndDateRecurrence><t:StartDate>2026-03-16</t:StartDate><t:EndDate>2026-03-20</t:EndDate></t:EndDateRecurrence></t:Recurrence>`
	e.ok("alice", "", update("AlwaysOverwrite", itemID(ids[0], ""), setField("calendar:Recurrence", "CalendarItem", daily)))
	master = e.getItem("alice", "", itemID(ids[0], ""), "")
	if master.child("ModifiedOccurrences") != nil || master.child("DeletedOccurrences") != nil || master.path("LastOccurrence").text("Start") != "2026-03-20T08:00:00Z" {
		t.Fatalf("after the pattern change: %s", dump(master))
	}
}

// TestRecurrencePatterns checks each pattern's instances.
func TestRecurrencePatterns(t *testing.T) {
	e := newEnv(t, Options{})
	for _, tc := range []struct {
		name, pattern, rng string
		want               []string // first occurrence starts, UTC
	}{
		{"daily every 3", `<t:DailyRecurrence><t:Interval>3</t:Interval></t:DailyRecurrence>`,
			`<t:NumberedRecurrence><t:StartDate>2026-01-01</t:StartDate><t:NumberOfOccurrences>3</t:NumberOfOccurrences></t:NumberedRecurrence>`,
			[]string{"2026-01-01", "2026-01-04", "2026-01-07"}},
		{"absolute monthly 31st", `<t:AbsoluteMonthlyRecurrence><t:Interval>1</t:Interval><t:DayOfMonth>31</t:DayOfMonth></t:AbsoluteMonthlyRecurrence>`,
			`<t:NumberedRecurrence><t:StartDate>2026-01-01</t:StartDate><t:NumberOfOccurrences>3</t:NumberOfOccurrences></t:NumberedRecurrence>`,
			[]string{"2026-01-31", "2026-02-28", "2026-03-31"}}, // the last day of a shorter month
		{"relative monthly last weekday", `<t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Weekday</t:DaysOfWeek><t:DayOfWeekIndex>Last</t:DayOfWeekIndex></t:RelativeMonthlyRecurrence>`,
			`<t:EndDateRecurrence><t:StartDate>2026-01-01</t:StartDate><t:EndDate>2026-03-31</t:EndDate></t:EndDateRecurrence>`,
			[]string{"2026-01-30", "2026-02-27", "2026-03-31"}},
		{"absolute yearly", `<t:AbsoluteYearlyRecurrence><t:DayOfMonth>29</t:DayOfMonth><t:Month>February</t:Month></t:AbsoluteYearlyRecurrence>`,
			`<t:NumberedRecurrence><t:StartDate>2026-01-01</t:StartDate><t:NumberOfOccurrences>3</t:NumberOfOccurrences></t:NumberedRecurrence>`,
			[]string{"2026-02-28", "2027-02-28", "2028-02-29"}}, // February 28 in common years
		{"relative yearly", `<t:RelativeYearlyRecurrence><t:DaysOfWeek>Thursday</t:DaysOfWeek><t:DayOfWeekIndex>Fourth</t:DayOfWeekIndex><t:Month>November</t:Month></t:RelativeYearlyRecurrence>`,
			`<t:NumberedRecurrence><t:StartDate>2026-01-01</t:StartDate><t:NumberOfOccurrences>2</t:NumberOfOccurrences></t:NumberedRecurrence>`,
			[]string{"2026-11-26", "2027-11-25"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := e.createItems("alice", "", distinguished("calendar"),
				calItem(tc.name, "2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z", "UTC", "<t:Recurrence>"+tc.pattern+tc.rng+"</t:Recurrence>"), `SendMeetingInvitations="SendToNone"`)
			for i, want := range tc.want {
				got := e.getItem("alice", "", occurrence(ids[0], i+1), "").text("Start")
				if got != want+"T12:00:00Z" {
					t.Fatalf("occurrence %d: %s, want %s", i+1, got, want)
				}
			}
			if rc := e.code("alice", "", `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds>`+occurrence(ids[0], len(tc.want)+1)+`</m:ItemIds></m:GetItem>`); rc != "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange" {
				t.Fatalf("past the end: %s", rc)
			}
		})
	}
	bad := `<t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval></t:WeeklyRecurrence><t:NoEndRecurrence><t:StartDate>2026-01-01</t:StartDate></t:NoEndRecurrence></t:Recurrence>`
	m := e.call("alice", "", `<m:CreateItem SendMeetingInvitations="SendToNone"><m:Items>`+calItem("bad", "2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z", "UTC", bad)+`</m:Items></m:CreateItem>`)[0]
	if m.text("ResponseCode") != "ErrorInvalidRecurrence" {
		t.Fatalf("weekly without days: %s", dump(m))
	}
	feb30 := `<t:Recurrence><t:AbsoluteYearlyRecurrence><t:DayOfMonth>30</t:DayOfMonth><t:Month>February</t:Month></t:AbsoluteYearlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-01-01</t:StartDate></t:NoEndRecurrence></t:Recurrence>`
	m = e.call("alice", "", `<m:CreateItem SendMeetingInvitations="SendToNone"><m:Items>`+calItem("feb30", "2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z", "UTC", feb30)+`</m:Items></m:CreateItem>`)[0]
	if m.text("ResponseCode") != "ErrorCalendarInvalidDayForSpecificRecurrence" {
		t.Fatalf("February 30: %s", dump(m))
	}
	m = e.call("alice", "", `<m:CreateItem><m:Items>`+calItem("x", "2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z", "UTC", "")+`</m:Items></m:CreateItem>`)[0]
	if m.text("ResponseCode") != "ErrorSendMeetingInvitationsRequired" {
		t.Fatalf("no SendMeetingInvitations: %s", dump(m))
	}
}

// TestInvitations: SendToNone records nothing; SendToAllAndSaveCopy
// records the meeting request.
func TestInvitations(t *testing.T) {
	e := newEnv(t, Options{})
	att := `<t:RequiredAttendees><t:Attendee><t:Mailbox><t:EmailAddress>bob@example.test</t:EmailAddress></t:Mailbox><t:ResponseType>Unknown</t:ResponseType></t:Attendee></t:RequiredAttendees>`
	item := `<t:CalendarItem><t:Subject>Meet</t:Subject><t:Start>2026-02-02T10:00:00Z</t:Start><t:End>2026-02-02T11:00:00Z</t:End>` + att + `</t:CalendarItem>`
	e.createItems("alice", "", distinguished("calendar"), item, `SendMeetingInvitations="SendToNone"`)
	if n := len(e.srv.Invitations()); n != 0 {
		t.Fatalf("SendToNone recorded %d invitations", n)
	}
	ids := e.createItems("alice", "", distinguished("calendar"), item, `SendMeetingInvitations="SendToAllAndSaveCopy"`)
	inv := e.srv.Invitations()
	got := e.getItem("alice", "", itemID(ids[0], ""), "")
	if len(inv) != 1 || inv[0].Attendees[0] != "bob@example.test" || inv[0].UID != got.text("UID") || got.text("IsMeeting") != "true" {
		t.Fatalf("invitations %+v, item %s", inv, dump(got))
	}
	if got.path("Organizer", "Mailbox").text("EmailAddress") != "alice@example.test" {
		t.Fatalf("organizer: %s", dump(got.child("Organizer")))
	}
}
