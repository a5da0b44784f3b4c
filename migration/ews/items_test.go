package ews_test

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/migration/ews"
)

const calendarItemXML = `<t:CalendarItem>
  <t:ItemId Id="AAMkAGweekly" ChangeKey="DwAAABYAAAA1"/>
  <t:ParentFolderId Id="AAMkAGcal" ChangeKey="AQAAAA=="/>
  <t:ItemClass>IPM.Appointment</t:ItemClass>
  <t:Subject>Team sync</t:Subject>
  <t:Sensitivity>Private</t:Sensitivity>
  <t:Body BodyType="HTML">&lt;html&gt;&lt;body&gt;&lt;p&gt;Agenda &amp;amp; notes&lt;/p&gt;&lt;/body&gt;&lt;/html&gt;</t:Body>
  <t:Categories><t:String>Blue category</t:String><t:String>Work</t:String></t:Categories>
  <t:ReminderIsSet>true</t:ReminderIsSet>
  <t:ReminderMinutesBeforeStart>15</t:ReminderMinutesBeforeStart>
  <t:LastModifiedTime>2025-03-01T10:00:00Z</t:LastModifiedTime>
  <t:UID>040000008200E00074C5B7101A82E00800000000</t:UID>
  <t:Start>2025-03-03T08:00:00Z</t:Start>
  <t:End>2025-03-03T08:30:00Z</t:End>
  <t:IsAllDayEvent>false</t:IsAllDayEvent>
  <t:LegacyFreeBusyStatus>Tentative</t:LegacyFreeBusyStatus>
  <t:Location>Room 4</t:Location>
  <t:IsMeeting>true</t:IsMeeting>
  <t:IsCancelled>false</t:IsCancelled>
  <t:IsRecurring>true</t:IsRecurring>
  <t:CalendarItemType>RecurringMaster</t:CalendarItemType>
  <t:MyResponseType>Organizer</t:MyResponseType>
  <t:Organizer><t:Mailbox><t:Name>Anna Petrova</t:Name><t:EmailAddress>anna@example.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox></t:Organizer>
  <t:RequiredAttendees>
    <t:Attendee><t:Mailbox><t:Name>Boris</t:Name><t:EmailAddress>boris@example.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox><t:ResponseType>Accept</t:ResponseType></t:Attendee>
    <t:Attendee><t:Mailbox><t:EmailAddress>carol@example.com</t:EmailAddress></t:Mailbox><t:ResponseType>NoResponseReceived</t:ResponseType></t:Attendee>
  </t:RequiredAttendees>
  <t:OptionalAttendees>
    <t:Attendee><t:Mailbox><t:EmailAddress>dan@example.com</t:EmailAddress></t:Mailbox><t:ResponseType>Decline</t:ResponseType></t:Attendee>
  </t:OptionalAttendees>
  <t:Recurrence>
    <t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday Wednesday</t:DaysOfWeek><t:FirstDayOfWeek>Monday</t:FirstDayOfWeek></t:WeeklyRecurrence>
    <t:NumberedRecurrence><t:StartDate>2025-03-03+01:00</t:StartDate><t:NumberOfOccurrences>10</t:NumberOfOccurrences></t:NumberedRecurrence>
  </t:Recurrence>
  <t:ModifiedOccurrences>
    <t:Occurrence><t:ItemId Id="AAMkAGocc" ChangeKey="DwAAAB"/><t:Start>2025-03-05T10:00:00Z</t:Start><t:End>2025-03-05T10:30:00Z</t:End><t:OriginalStart>2025-03-05T08:00:00Z</t:OriginalStart></t:Occurrence>
  </t:ModifiedOccurrences>
  <t:DeletedOccurrences>
    <t:DeletedOccurrence><t:Start>2025-03-10T08:00:00Z</t:Start></t:DeletedOccurrence>
  </t:DeletedOccurrences>
  <t:StartTimeZone Id="W. Europe Standard Time" Name="(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna">
    <t:Periods>
      <t:Period Bias="-PT1H" Name="Standard" Id="trule:Microsoft/Registry/W. Europe Standard Time/2006-Standard"/>
      <t:Period Bias="-PT2H" Name="Daylight" Id="trule:Microsoft/Registry/W. Europe Standard Time/2006-Daylight"/>
    </t:Periods>
  </t:StartTimeZone>
  <t:EndTimeZone Id="W. Europe Standard Time" Name="(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"/>
</t:CalendarItem>`

const getItemResponse = `<m:GetItemResponse ` + nsAttrs + `>
  <m:ResponseMessages>
    <m:GetItemResponseMessage ResponseClass="Success">
      <m:ResponseCode>NoError</m:ResponseCode>
      <m:Items>` + calendarItemXML + `</m:Items>
    </m:GetItemResponseMessage>
    <m:GetItemResponseMessage ResponseClass="Error">
      <m:MessageText>The specified object was not found in the store.</m:MessageText>
      <m:ResponseCode>ErrorItemNotFound</m:ResponseCode>
      <m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>
      <m:Items/>
    </m:GetItemResponseMessage>
  </m:ResponseMessages>
</m:GetItemResponse>`

func TestGetItemCalendarToICalendar(t *testing.T) {
	f := newFakeEWS(t)
	f.answer("GetItem", getItemResponse)
	mb := newClient(t, f, nil).Mailbox("anna@example.com")
	var items []ews.Item
	err := mb.GetItem(context.Background(), []ews.ItemID{{ID: "AAMkAGweekly"}, {ID: "AAMkAGgone"}}, ews.ShapeCalendar, func(it ews.Item) error {
		items = append(items, it)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].CalendarItem == nil || items[1].Err == nil || items[1].ID.ID != "AAMkAGgone" {
		t.Fatalf("items = %+v", items)
	}
	if body := f.requests()[0].body; !strings.Contains(body, `FieldURI="calendar:StartTimeZone"`) || strings.Count(body, "<t:ItemId ") != 2 {
		t.Fatalf("GetItem request:\n%s", body)
	}

	cal, err := ews.ToICalendar(items[0].CalendarItem, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ews.Encode(cal)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "\r\n ", "")
	for _, want := range []string{
		"TZID:Europe/Berlin",
		"DTSTART;TZID=Europe/Berlin:20250303T090000",
		"RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE;WKST=MO;COUNT=10",
		"EXDATE;TZID=Europe/Berlin:20250310T090000",
		"RECURRENCE-ID;TZID=Europe/Berlin:20250305T090000",
		"DTSTART;TZID=Europe/Berlin:20250305T110000",
		"SUMMARY:Team sync",
		"DESCRIPTION:Agenda & notes",
		"LOCATION:Room 4",
		"CLASS:PRIVATE",
		"TRANSP:OPAQUE",
		"X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE",
		"CATEGORIES:Blue category,Work",
		"ORGANIZER;CN=Anna Petrova:mailto:anna@example.com",
		"PARTSTAT=ACCEPTED",
		"PARTSTAT=DECLINED",
		"ROLE=OPT-PARTICIPANT",
		"TRIGGER:-PT15M",
		"UID:040000008200E00074C5B7101A82E00800000000",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("iCalendar lacks %q:\n%s", want, text)
		}
	}

	// Our CalDAV server's recurrence code reads the result: 10 weekly
	// occurrences, one deleted, one moved two hours later.
	obj, err := calendar.Parse(data, calendar.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := obj.Expand(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), 100)
	if err != nil {
		t.Fatal(err)
	}
	var starts []string
	for _, c := range exp.Children {
		starts = append(starts, c.Props.Get(ical.PropDateTimeStart).Value)
	}
	want := "20250303T080000Z 20250305T100000Z 20250312T080000Z 20250317T080000Z 20250319T080000Z 20250324T080000Z 20250326T080000Z 20250331T070000Z 20250402T070000Z"
	if got := strings.Join(starts, " "); got != want {
		t.Fatalf("instances\n got %s\nwant %s", got, want)
	}

	back, err := ews.FromICalendar(cal)
	if err != nil {
		t.Fatal(err)
	}
	if back.Subject != "Team sync" || back.StartTimeZone.ID != "W. Europe Standard Time" || back.Sensitivity != "Private" ||
		back.LegacyFreeBusyStatus != "Tentative" || *back.ReminderMinutesBeforeStart != 15 || len(back.RequiredAttendees.Attendee) != 2 ||
		back.OptionalAttendees.Attendee[0].ResponseType != "Decline" || back.Recurrence.Weekly == nil || back.Recurrence.Numbered.NumberOfOccurrences != 10 ||
		len(back.DeletedOccurrences.DeletedOccurrence) != 1 || len(back.ModifiedOccurrences.Occurrence) != 1 || back.Body.Type != "HTML" {
		t.Fatalf("back = %+v", back)
	}
}

func TestRRuleNotRepresentable(t *testing.T) {
	start := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	for _, rule := range []string{"FREQ=HOURLY", "FREQ=DAILY;BYHOUR=9,10", "FREQ=MONTHLY;BYMONTHDAY=1,15", "FREQ=YEARLY;INTERVAL=2", "FREQ=MONTHLY;BYDAY=1MO,2TU", "FREQ=YEARLY;BYMONTH=1,6"} {
		if _, err := ews.RecurrenceOf(rule, start); err == nil {
			t.Errorf("%s mapped", rule)
		}
	}
	r, err := ews.RecurrenceOf("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;UNTIL=20251231T090000Z", start)
	if err != nil || r.RelativeMonthly == nil || r.RelativeMonthly.DaysOfWeek != "Weekday" || r.RelativeMonthly.DayOfWeekIndex != "Last" || r.EndDate.EndDate != "2025-12-31" {
		t.Fatalf("last weekday: %+v %v", r, err)
	}
}

func TestCreateUpdateDeleteWithoutInvitations(t *testing.T) {
	f := newFakeEWS(t)
	created := `<m:CreateItemResponse ` + nsAttrs + `><m:ResponseMessages><m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
	  <m:Items><t:CalendarItem><t:ItemId Id="AAMkAGnew" ChangeKey="DwAAAB1"/></t:CalendarItem></m:Items></m:CreateItemResponseMessage></m:ResponseMessages></m:CreateItemResponse>`
	updated := strings.NewReplacer("CreateItem", "UpdateItem", "DwAAAB1", "DwAAAB2").Replace(created)
	deleted := `<m:DeleteItemResponse ` + nsAttrs + `><m:ResponseMessages><m:DeleteItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:DeleteItemResponseMessage></m:ResponseMessages></m:DeleteItemResponse>`
	f.answer("CreateItem", created)
	f.answer("UpdateItem", updated)
	f.answer("DeleteItem", deleted)
	mb := newClient(t, f, nil).Mailbox("anna@example.com")
	ctx := context.Background()

	var src struct {
		XMLName xml.Name          `xml:"Items"`
		Item    *ews.CalendarItem `xml:"CalendarItem"`
	}
	if err := xml.Unmarshal([]byte(`<Items `+nsAttrs+`>`+calendarItemXML+`</Items>`), &src); err != nil {
		t.Fatal(err)
	}
	id, err := mb.CreateCalendarItem(ctx, ews.FolderRef{}, *src.Item)
	if err != nil || id.ID != "AAMkAGnew" {
		t.Fatalf("create: %v %v", id, err)
	}
	id, err = mb.UpdateCalendarItem(ctx, id, ews.CalendarItem{Subject: "Moved", Start: src.Item.Start, End: src.Item.End})
	if err != nil || id.ChangeKey != "DwAAAB2" {
		t.Fatalf("update: %v %v", id, err)
	}
	if err := mb.DeleteItem(ctx, id); err != nil {
		t.Fatal(err)
	}

	reqs := f.requests()
	create, update, del := reqs[0].body, reqs[1].body, reqs[2].body
	if !strings.Contains(create, `SendMeetingInvitations="SendToNone"`) || !strings.Contains(create, `<t:DistinguishedFolderId Id="calendar">`) {
		t.Errorf("create request:\n%s", create)
	}
	// The item goes out in the types namespace without the properties
	// CreateItem refuses.
	var sent struct {
		Item *ews.CalendarItem `xml:"Body>CreateItem>Items>CalendarItem"`
	}
	if err := xml.Unmarshal([]byte(create), &sent); err != nil || sent.Item == nil {
		t.Fatalf("create request does not parse back: %v\n%s", err, create)
	}
	if sent.Item.Subject != "Team sync" || sent.Item.Recurrence == nil || sent.Item.ItemID != nil || sent.Item.ModifiedOccurrences != nil || sent.Item.Organizer != nil || sent.Item.CalendarItemType != "" {
		t.Errorf("created item: %+v", sent.Item)
	}
	if !strings.Contains(update, `SendMeetingInvitationsOrCancellations="SendToNone"`) || !strings.Contains(update, `ConflictResolution="NeverOverwrite"`) ||
		!strings.Contains(update, `<t:SetItemField><t:FieldURI FieldURI="item:Subject"></t:FieldURI><CalendarItem xmlns="http://schemas.microsoft.com/exchange/services/2006/types"><Subject>Moved</Subject></CalendarItem></t:SetItemField>`) ||
		!strings.Contains(update, `<t:DeleteItemField><t:FieldURI FieldURI="calendar:Recurrence"></t:FieldURI></t:DeleteItemField>`) {
		t.Errorf("update request:\n%s", update)
	}
	if !strings.Contains(del, `SendMeetingCancellations="SendToNone"`) || !strings.Contains(del, `Id="AAMkAGnew"`) {
		t.Errorf("delete request:\n%s", del)
	}
}

func TestSubscribeAndGetEvents(t *testing.T) {
	f := newFakeEWS(t)
	f.answer("Subscribe", `<m:SubscribeResponse `+nsAttrs+`><m:ResponseMessages><m:SubscribeResponseMessage ResponseClass="Success">
	  <m:ResponseCode>NoError</m:ResponseCode><m:SubscriptionId>JgBzbjFjaG</m:SubscriptionId><m:Watermark>AAAAAMAGAAAAAAAAAQ==</m:Watermark>
	</m:SubscribeResponseMessage></m:ResponseMessages></m:SubscribeResponse>`)
	f.answer("GetEvents", `<m:GetEventsResponse `+nsAttrs+`><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Success">
	  <m:ResponseCode>NoError</m:ResponseCode>
	  <m:Notification>
	    <t:SubscriptionId>JgBzbjFjaG</t:SubscriptionId>
	    <t:PreviousWatermark>AAAAAMAGAAAAAAAAAQ==</t:PreviousWatermark>
	    <t:MoreEvents>false</t:MoreEvents>
	    <t:CreatedEvent><t:Watermark>AAAAAN4GAAAAAAAAAQ==</t:Watermark><t:TimeStamp>2025-03-01T12:00:00Z</t:TimeStamp>
	      <t:ItemId Id="AAMkAGnew" ChangeKey="DwAAAB"/><t:ParentFolderId Id="AAMkAGcal" ChangeKey="AQAAAA=="/></t:CreatedEvent>
	    <t:ModifiedEvent><t:Watermark>AAAAAN8GAAAAAAAAAQ==</t:Watermark><t:TimeStamp>2025-03-01T12:00:01Z</t:TimeStamp>
	      <t:ItemId Id="AAMkAGold" ChangeKey="DwAAAC"/><t:ParentFolderId Id="AAMkAGcal" ChangeKey="AQAAAA=="/></t:ModifiedEvent>
	  </m:Notification>
	</m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse>`)
	mb := newClient(t, f, nil).Mailbox("anna@example.com")
	ctx := context.Background()
	id, wm, err := mb.Subscribe(ctx, []ews.FolderRef{{Distinguished: "calendar"}}, 10)
	if err != nil || id != "JgBzbjFjaG" || wm != "AAAAAMAGAAAAAAAAAQ==" {
		t.Fatalf("subscribe: %q %q %v", id, wm, err)
	}
	events, more, err := mb.GetEvents(ctx, id, wm)
	if err != nil || more || len(events) != 2 {
		t.Fatalf("events %+v more %v err %v", events, more, err)
	}
	if e := events[0]; e.Kind != "CreatedEvent" || e.ItemID.ID != "AAMkAGnew" || e.Watermark != "AAAAAN4GAAAAAAAAAQ==" || e.ParentFolderID.ID != "AAMkAGcal" {
		t.Errorf("event 0 = %+v", e)
	}
	if events[1].Kind != "ModifiedEvent" {
		t.Errorf("event 1 = %+v", events[1])
	}
	if body := f.requests()[0].body; !strings.Contains(body, "<t:EventType>CreatedEvent</t:EventType>") || !strings.Contains(body, "<t:Timeout>10</t:Timeout>") {
		t.Errorf("subscribe request:\n%s", body)
	}
}

func TestGetItemMIMEInBatches(t *testing.T) {
	f := newFakeEWS(t)
	msg := func(id string) string {
		return `<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message>
		  <t:MimeContent CharacterSet="UTF-8">U3ViamVjdDogaGkNCg0KaGVsbG8NCg==</t:MimeContent><t:ItemId Id="` + id + `" ChangeKey="CQAAAB"/>
		  <t:DateTimeReceived>2025-02-01T10:00:00Z</t:DateTimeReceived><t:Size>512</t:Size><t:IsRead>false</t:IsRead></t:Message></m:Items></m:GetItemResponseMessage>`
	}
	var ids []ews.ItemID
	for i := range ews.MaxBatch + 3 {
		ids = append(ids, ews.ItemID{ID: "m" + strconv.Itoa(i)})
	}
	// The batches are read concurrently: each is answered from its ids.
	itemID := regexp.MustCompile(`<t:ItemId Id="([^"]+)"`)
	f.answerEach("GetItem", func(w http.ResponseWriter, req request) {
		var b strings.Builder
		for _, m := range itemID.FindAllStringSubmatch(req.body, -1) {
			b.WriteString(msg(m[1]))
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, soap(`<m:GetItemResponse `+nsAttrs+`><m:ResponseMessages>`+b.String()+`</m:ResponseMessages></m:GetItemResponse>`))
	})
	var got []string
	err := newClient(t, f, nil).Mailbox("anna@example.com").GetItem(context.Background(), ids, ews.ShapeMIME, func(it ews.Item) error {
		if it.Message == nil || it.Message.MimeContent.Base64 != "U3ViamVjdDogaGkNCg0KaGVsbG8NCg==" || it.Message.IsRead == nil || *it.Message.IsRead || it.Message.DateTimeReceived.Year() != 2025 {
			t.Fatalf("item %+v", it)
		}
		got = append(got, it.ID.ID)
		return nil
	})
	if err != nil || len(got) != len(ids) || got[len(got)-1] != ids[len(ids)-1].ID {
		t.Fatalf("got %d items (%v), err %v", len(got), got, err)
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	sizes := map[int]bool{}
	for _, r := range reqs {
		sizes[strings.Count(r.body, "<t:ItemId ")] = true
		if !strings.Contains(r.body, "<t:IncludeMimeContent>true</t:IncludeMimeContent>") {
			t.Fatalf("request without MIME content:\n%s", r.body)
		}
	}
	if !sizes[ews.MaxBatch] || !sizes[3] {
		t.Fatalf("batches of %v items, want %d and 3", sizes, ews.MaxBatch)
	}
}
