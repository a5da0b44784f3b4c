package ews

import (
	"context"
	"encoding/xml"
	"errors"
)

// occurrenceItemID names one occurrence of a recurring series
// ([MS-OXWSCORE] OccurrenceItemIdType): the series master's
// ItemId and the occurrence's 1-based InstanceIndex in the series'
// expansion. A deleted occurrence keeps its index, so the indexes of the
// others do not move.
type occurrenceItemID struct {
	Master    string `xml:"RecurringMasterId,attr"`
	ChangeKey string `xml:"ChangeKey,attr,omitempty"`
	Index     int    `xml:"InstanceIndex,attr"`
}

// occurrenceFields are the properties an occurrence can override: what
// UpdateOccurrence writes of the CalendarItem it is given. The pattern,
// the time zones and the attendee lists belong to the series.
var occurrenceFields = map[string]bool{
	"item:Subject": true, "item:Sensitivity": true, "item:Body": true, "item:Categories": true,
	"item:ReminderIsSet": true, "item:ReminderMinutesBeforeStart": true,
	"calendar:Start": true, "calendar:End": true, "calendar:LegacyFreeBusyStatus": true, "calendar:Location": true,
}

// UpdateOccurrence makes occurrence index (1-based, counted as EWS
// expands the series) of the series master a modified occurrence with
// ci's subject, sensitivity, body, categories, reminder, start, end,
// free/busy status and location (an occurrence cannot change the
// pattern, the zones or the attendees), without sending updates
// to attendees ([MS-OXWSCORE] §3.1.4.9, the ItemChange's
// OccurrenceItemId). It returns the series' new ItemId and ChangeKey:
// a series and its occurrences share one ChangeKey, which every change
// of either moves.
func (m *Mailbox) UpdateOccurrence(ctx context.Context, master string, index int, ci CalendarItem) (ItemID, error) {
	var u updates
	for _, up := range calendarUpdates(ci.writable()) {
		if occurrenceFields[up.uri] {
			u = append(u, up)
		}
	}
	req := struct {
		XMLName  xml.Name         `xml:"m:UpdateItem"`
		Conflict string           `xml:"ConflictResolution,attr"`
		Send     string           `xml:"SendMeetingInvitationsOrCancellations,attr"`
		ItemID   occurrenceItemID `xml:"m:ItemChanges>t:ItemChange>t:OccurrenceItemId"`
		Updates  updates          `xml:"m:ItemChanges>t:ItemChange>t:Updates"`
	}{Conflict: "AutoResolve", Send: "SendToNone", ItemID: occurrenceItemID{Master: master, Index: index}, Updates: u}
	var resp itemsResponse
	if err := m.callOK(ctx, req, &resp); err != nil {
		return ItemID{}, err
	}
	if len(resp.Messages.List[0].Items) == 0 {
		return ItemID{}, m.classify(ctx, &Error{Code: "ErrorNoItemId", Message: "UpdateItem returned no item id"})
	}
	return resp.Messages.List[0].Items[0].ID, nil
}

// DeleteOccurrence removes occurrence index of the series master from
// the series (it becomes one of its DeletedOccurrences) without sending
// a cancellation ([MS-OXWSCORE] §3.1.4.3, an OccurrenceItemId in
// ItemIds). An occurrence deleted before is not an error.
func (m *Mailbox) DeleteOccurrence(ctx context.Context, master string, index int) error {
	req := struct {
		XMLName xml.Name         `xml:"m:DeleteItem"`
		Type    string           `xml:"DeleteType,attr"`
		Send    string           `xml:"SendMeetingCancellations,attr"`
		ID      occurrenceItemID `xml:"m:ItemIds>t:OccurrenceItemId"`
	}{Type: "MoveToDeletedItems", Send: "SendToNone", ID: occurrenceItemID{Master: master, Index: index}}
	var resp itemsResponse
	err := m.callOK(ctx, req, &resp)
	var e *Error
	if errors.As(err, &e) && e.Code == "ErrorCalendarOccurrenceIsDeletedFromRecurrence" {
		return nil
	}
	return err
}

// ChangeKey returns the current ItemId and ChangeKey of item id.
func (m *Mailbox) ChangeKey(ctx context.Context, id string) (ItemID, error) {
	var got ItemID
	err := m.GetItem(ctx, []ItemID{{ID: id}}, ShapeID, func(it Item) error {
		got = it.ID
		return it.Err
	})
	return got, err
}
