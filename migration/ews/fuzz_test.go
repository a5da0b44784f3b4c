package ews

import (
	"bytes"
	"testing"
	"time"
)

// FuzzResponse: no response body makes the stream parser panic, and a
// body over the size limit fails as too large however it looks.
func FuzzResponse(f *testing.F) {
	head := `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>`
	f.Add([]byte(head + `<m:GetItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:CalendarItem><t:ItemId Id="a"/><t:Start>2025-01-01T00:00:00Z</t:Start><t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence><t:NoEndRecurrence><t:StartDate>2025-01-01</t:StartDate></t:NoEndRecurrence></t:Recurrence></t:CalendarItem><t:Contact><t:ItemId Id="b"/></t:Contact></m:Items></m:GetItemResponseMessage></m:ResponseMessages></m:GetItemResponse></s:Body></s:Envelope>`))
	f.Add([]byte(head + `<s:Fault><faultcode>a:ErrorServerBusy</faultcode><detail><e:ResponseCode xmlns:e="e">ErrorServerBusy</e:ResponseCode><t:MessageXml xmlns:t="t"><t:Value Name="BackOffMilliseconds">99999999999999999999</t:Value></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>`))
	f.Add([]byte(head + `<m:SyncFolderItemsResponse xmlns:m="m"><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass="Success"><m:Changes><t:Create xmlns:t="t"><t:Message><t:ItemId Id="x"/></t:Message></t:Create><t:Delete xmlns:t="t"><t:ItemId Id="y"/></t:Delete></m:Changes></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse></s:Body></s:Envelope>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		targets := []any{&itemsResponse{}, &syncItemsResponse{}, &syncHierarchyResponse{}, &getEventsResponse{}, &getFolderResponse{}, &subscribeResponse{}}
		for _, resp := range targets {
			err := decodeEnvelope(&limitedBody{r: bytes.NewReader(data), left: 1 << 16}, resp)
			if ms, ok := resp.(messages); ok && err == nil {
				for _, m := range ms.all() {
					_ = m.err()
				}
			}
		}
		if len(data) > 64 {
			err := decodeEnvelope(&limitedBody{r: bytes.NewReader(data), left: 32}, &itemsResponse{})
			if err == nil {
				t.Fatalf("a %d-byte body passed a 32-byte limit", len(data))
			}
		}
	})
}

// FuzzZone: any Windows id and bias map to a zone or an error, never a
// panic, and a VTIMEZONE can be written for the zone.
func FuzzZone(f *testing.F) {
	f.Add("W. Europe Standard Time", "-PT1H")
	f.Add("Customized Time Zone", "PT5H30M")
	f.Add("", "P1DT2H")
	f.Add("x", "-PTH")
	f.Fuzz(func(t *testing.T, id, bias string) {
		loc, tzid, err := Location(&TimeZoneDefinition{ID: id, Periods: []Period{{Bias: bias, Name: "Standard"}}})
		if err != nil {
			return
		}
		if loc == nil || tzid == "" {
			t.Fatalf("zone %q/%q: nil location or empty TZID", id, bias)
		}
		tz := VTimezone(loc, tzid, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		if len(tz.Children) == 0 {
			t.Fatalf("zone %q: VTIMEZONE without observances", id)
		}
	})
}

// FuzzRecurrence: an RRULE either has no EWS equivalent or maps to a
// recurrence that maps back to an RRULE which maps to the same
// recurrence again (the mapping is stable after one round).
func FuzzRecurrence(f *testing.F) {
	for _, s := range []string{
		"FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;WKST=MO;COUNT=10",
		"FREQ=MONTHLY;BYMONTHDAY=28,29,30;BYSETPOS=-1",
		"FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;UNTIL=20251231T090000Z",
		"FREQ=YEARLY;BYMONTH=2;BYDAY=-1SU",
		"FREQ=DAILY;INTERVAL=3;UNTIL=20260101",
	} {
		f.Add(s, int64(1741000000))
	}
	f.Fuzz(func(t *testing.T, rule string, unix int64) {
		start := time.Unix(unix%(1<<34), 0).UTC()
		r, err := RecurrenceOf(rule, start)
		if err != nil {
			return
		}
		s1, err := RRule(r, start, false)
		if err != nil {
			t.Fatalf("%q mapped to %+v, which does not map back: %v", rule, r, err)
		}
		r2, err := RecurrenceOf(s1, start)
		if err != nil {
			t.Fatalf("%q -> %q does not map again: %v", rule, s1, err)
		}
		if s2, err := RRule(r2, start, false); err != nil || s2 != s1 {
			t.Fatalf("%q -> %q -> %q (%v)", rule, s1, s2, err)
		}
	})
}
