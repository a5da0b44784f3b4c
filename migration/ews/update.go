package ews

import "encoding/xml"

// calendarField is one writable calendar property: its FieldURI
// ([MS-OXWSCDATA] UnindexedFieldURIType), whether ci sets it, and a copy
// of ci holding only it (the element SetItemField carries).
type calendarField struct {
	uri  string
	set  func(ci *CalendarItem) bool
	only func(ci *CalendarItem) CalendarItem
}

// calendarFields lists the properties UpdateCalendarItem writes, in
// schema order.
var calendarFields = []calendarField{
	{"item:Subject", func(c *CalendarItem) bool { return c.Subject != "" }, func(c *CalendarItem) CalendarItem { return CalendarItem{Subject: c.Subject} }},
	{"item:Sensitivity", func(c *CalendarItem) bool { return c.Sensitivity != "" }, func(c *CalendarItem) CalendarItem { return CalendarItem{Sensitivity: c.Sensitivity} }},
	{"item:Body", func(c *CalendarItem) bool { return c.Body != nil }, func(c *CalendarItem) CalendarItem { return CalendarItem{Body: c.Body} }},
	{"item:Categories", func(c *CalendarItem) bool { return c.Categories != nil }, func(c *CalendarItem) CalendarItem { return CalendarItem{Categories: c.Categories} }},
	{"item:ReminderIsSet", func(c *CalendarItem) bool { return c.ReminderIsSet != nil }, func(c *CalendarItem) CalendarItem { return CalendarItem{ReminderIsSet: c.ReminderIsSet} }},
	{"item:ReminderMinutesBeforeStart", func(c *CalendarItem) bool { return c.ReminderMinutesBeforeStart != nil }, func(c *CalendarItem) CalendarItem {
		return CalendarItem{ReminderMinutesBeforeStart: c.ReminderMinutesBeforeStart}
	}},
	{"calendar:Start", func(c *CalendarItem) bool { return c.Start != nil }, func(c *CalendarItem) CalendarItem { return CalendarItem{Start: c.Start} }},
	{"calendar:End", func(c *CalendarItem) bool { return c.End != nil }, func(c *CalendarItem) CalendarItem { return CalendarItem{End: c.End} }},
	{"calendar:IsAllDayEvent", func(c *CalendarItem) bool { return c.IsAllDayEvent != nil }, func(c *CalendarItem) CalendarItem { return CalendarItem{IsAllDayEvent: c.IsAllDayEvent} }},
	{"calendar:LegacyFreeBusyStatus", func(c *CalendarItem) bool { return c.LegacyFreeBusyStatus != "" }, func(c *CalendarItem) CalendarItem {
		return CalendarItem{LegacyFreeBusyStatus: c.LegacyFreeBusyStatus}
	}},
	{"calendar:Location", func(c *CalendarItem) bool { return c.Location != "" }, func(c *CalendarItem) CalendarItem { return CalendarItem{Location: c.Location} }},
	{"calendar:RequiredAttendees", func(c *CalendarItem) bool { return c.RequiredAttendees != nil }, func(c *CalendarItem) CalendarItem {
		return CalendarItem{RequiredAttendees: c.RequiredAttendees}
	}},
	{"calendar:OptionalAttendees", func(c *CalendarItem) bool { return c.OptionalAttendees != nil }, func(c *CalendarItem) CalendarItem {
		return CalendarItem{OptionalAttendees: c.OptionalAttendees}
	}},
	{"calendar:Recurrence", func(c *CalendarItem) bool { return c.Recurrence != nil }, func(c *CalendarItem) CalendarItem { return CalendarItem{Recurrence: c.Recurrence} }},
	{"calendar:StartTimeZone", func(c *CalendarItem) bool { return c.StartTimeZone != nil }, func(c *CalendarItem) CalendarItem { return CalendarItem{StartTimeZone: c.StartTimeZone} }},
	{"calendar:EndTimeZone", func(c *CalendarItem) bool { return c.EndTimeZone != nil }, func(c *CalendarItem) CalendarItem { return CalendarItem{EndTimeZone: c.EndTimeZone} }},
}

// updates is the Updates element of an ItemChange: SetItemField and
// DeleteItemField elements in order.
type updates []update

type update struct {
	uri  string
	item *CalendarItem // nil: delete the field
}

// MarshalXML writes each update inside start.
func (u updates) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, up := range u {
		var v any = struct {
			URI fieldURI `xml:"t:FieldURI"`
		}{fieldURI{up.uri}}
		name := "t:DeleteItemField"
		if up.item != nil {
			name = "t:SetItemField"
			v = struct {
				URI  fieldURI      `xml:"t:FieldURI"`
				Item *CalendarItem `xml:"CalendarItem"`
			}{fieldURI{up.uri}, up.item}
		}
		if err := e.EncodeElement(v, xml.StartElement{Name: xml.Name{Local: name}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// calendarUpdates sets every property ci has and deletes the others
// (Start, End and Subject are never deleted: an item always has them).
func calendarUpdates(ci CalendarItem) updates {
	var u updates
	for _, f := range calendarFields {
		switch {
		case f.set(&ci):
			only := f.only(&ci)
			u = append(u, update{uri: f.uri, item: &only})
		case f.uri != "calendar:Start" && f.uri != "calendar:End" && f.uri != "item:Subject":
			u = append(u, update{uri: f.uri})
		}
	}
	return u
}
