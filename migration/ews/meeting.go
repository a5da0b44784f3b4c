package ews

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-ical"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

// MeetingMessage is a meeting request, response or cancellation in a
// mail folder ([MS-OXWSMTGS] §2.2.4.15 MeetingMessageType and the
// MeetingRequestMessageType, MeetingResponseMessageType and
// MeetingCancellationMessageType that extend it): the message parts
// mail migration copies, and what the item means for scheduling. Kind
// is the element name (MeetingRequest, MeetingResponse,
// MeetingCancellation or MeetingMessage).
type MeetingMessage struct {
	Kind             string       `xml:"-"`
	MimeContent      *MimeContent `xml:"MimeContent"`
	ItemID           *ItemID      `xml:"ItemId"`
	ItemClass        string       `xml:"ItemClass"`
	Subject          string       `xml:"Subject"`
	Sensitivity      string       `xml:"Sensitivity"`
	Body             *Body        `xml:"Body"`
	DateTimeReceived *time.Time   `xml:"DateTimeReceived"`
	Size             int64        `xml:"Size"`
	Flag             *Flag        `xml:"Flag"`
	Sender           *Recipient   `xml:"Sender"`
	From             *Recipient   `xml:"From"`
	IsRead           *bool        `xml:"IsRead"`
	// AssociatedCalendarItemID is the calendar item the request made
	// or updated in the recipient's calendar.
	AssociatedCalendarItemID *ItemID `xml:"AssociatedCalendarItemId"`
	// IsOutOfDate: a later update of the meeting superseded this one.
	IsOutOfDate *bool `xml:"IsOutOfDate"`
	// ResponseType is the recipient's answer to a request, or the answer
	// a response carries ([MS-OXWSCAL] ResponseTypeType).
	ResponseType         string              `xml:"ResponseType"`
	UID                  string              `xml:"UID"`
	RecurrenceID         *time.Time          `xml:"RecurrenceId"`
	IsOrganizer          *bool               `xml:"IsOrganizer"`
	Start                *time.Time          `xml:"Start"`
	End                  *time.Time          `xml:"End"`
	IsAllDayEvent        *bool               `xml:"IsAllDayEvent"`
	LegacyFreeBusyStatus string              `xml:"LegacyFreeBusyStatus"`
	Location             string              `xml:"Location"`
	MyResponseType       string              `xml:"MyResponseType"`
	Organizer            *Recipient          `xml:"Organizer"`
	RequiredAttendees    *Attendees          `xml:"RequiredAttendees"`
	OptionalAttendees    *Attendees          `xml:"OptionalAttendees"`
	Resources            *Attendees          `xml:"Resources"`
	Recurrence           *Recurrence         `xml:"Recurrence"`
	StartTimeZone        *TimeZoneDefinition `xml:"StartTimeZone"`
	EndTimeZone          *TimeZoneDefinition `xml:"EndTimeZone"`
}

// meetingKinds are the element names of meeting messages.
var meetingKinds = map[string]bool{"MeetingRequest": true, "MeetingResponse": true, "MeetingCancellation": true, "MeetingMessage": true}

// isMailKind reports whether items of a SyncFolderItems ItemKind are
// copied as mail: messages, and meeting messages (which are messages
// too, [MS-OXWSMTGS] MeetingMessageType extends MessageType).
func isMailKind(kind string) bool { return kind == "Message" || meetingKinds[kind] }

// message is the mail part of a meeting message.
func (mm *MeetingMessage) message() *Message {
	return &Message{MimeContent: mm.MimeContent, ItemID: mm.ItemID, ItemClass: mm.ItemClass, Subject: mm.Subject,
		DateTimeReceived: mm.DateTimeReceived, Size: mm.Size, Flag: mm.Flag, IsRead: mm.IsRead}
}

// answered reports whether a response type is an answer.
func answered(rt string) bool { return rt == "Accept" || rt == "Tentative" || rt == "Decline" }

// pending reports whether a meeting request still waits for the
// recipient's answer: not answered, not superseded by a later update.
func (mm *MeetingMessage) pending() bool {
	return mm.Kind == "MeetingRequest" && mm.UID != "" && !answered(mm.ResponseType) && !answered(mm.MyResponseType) &&
		(mm.IsOutOfDate == nil || !*mm.IsOutOfDate) && (mm.IsOrganizer == nil || !*mm.IsOrganizer)
}

// calendarItem is the event a request describes, for a request whose
// calendar item the calendar migration did not bring (Exchange made
// none, or it was deleted).
func (mm *MeetingMessage) calendarItem() *CalendarItem {
	return &CalendarItem{UID: mm.UID, Subject: mm.Subject, Sensitivity: mm.Sensitivity, Body: mm.Body,
		Start: mm.Start, End: mm.End, IsAllDayEvent: mm.IsAllDayEvent, LegacyFreeBusyStatus: mm.LegacyFreeBusyStatus,
		Location: mm.Location, MyResponseType: "NoResponseReceived", Organizer: mm.Organizer,
		RequiredAttendees: mm.RequiredAttendees, OptionalAttendees: mm.OptionalAttendees, Resources: mm.Resources,
		Recurrence: mm.Recurrence, StartTimeZone: mm.StartTimeZone, EndTimeZone: mm.EndTimeZone}
}

// self is the mailbox's own address, as attendee lists name it.
func (p *pass) self() string {
	if p.job.Mailbox != "" {
		return p.job.Mailbox
	}
	return p.job.Target
}

// markSelf sets the PARTSTAT of the mailbox's own ATTENDEE in every
// VEVENT of cal from MyResponseType (RFC 5545 §3.2.12), adding the
// ATTENDEE to the master when the list lacks it (invited through a
// group), so that a reply made later in Mailyard goes to the ORGANIZER
// as the answer of this attendee (RFC 6638 §3.2.2). The organizer's
// own items are left as they are.
func markSelf(cal *ical.Calendar, ci *CalendarItem, self string) {
	ps, ok := partstat[ci.MyResponseType]
	if !ok || ci.MyResponseType == "Organizer" || self == "" || ci.Organizer == nil ||
		strings.EqualFold(ci.Organizer.Mailbox.EmailAddress, self) {
		return
	}
	for i, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		found := false
		atts := c.Props.Values(ical.PropAttendee)
		for j := range atts {
			if strings.EqualFold(addressOf(&atts[j]).EmailAddress, self) {
				atts[j].Params.Set(ical.ParamParticipationStatus, ps)
				found = true
			}
		}
		if found {
			c.Props[ical.PropAttendee] = atts
		} else if i == masterIndex(cal) {
			p := calAddress(ical.PropAttendee, EmailAddress{EmailAddress: self})
			p.Params.Set(ical.ParamRole, "REQ-PARTICIPANT")
			p.Params.Set(ical.ParamParticipationStatus, ps)
			c.Props.Add(p)
		}
	}
}

// masterIndex is the index of cal's VEVENT without RECURRENCE-ID.
func masterIndex(cal *ical.Calendar) int {
	for i, c := range cal.Children {
		if c.Name == ical.CompEvent && c.Props.Get(ical.PropRecurrenceID) == nil {
			return i
		}
	}
	return -1
}

// meetingsIn lists the meeting messages a page created.
func meetingsIn(changes []ItemChange) []ItemID {
	var ids []ItemID
	for _, c := range changes {
		if c.Kind == "Create" && meetingKinds[c.ItemKind] {
			ids = append(ids, c.ItemID)
		}
	}
	return ids
}

// meetings applies what the meeting messages ids mean to the calendar,
// after this pass's calendar migration ended (so that the events they
// speak of are there): a pending request gets its event (made from the
// request if the calendar had none) with the mailbox's PARTSTAT
// NEEDS-ACTION, and a METHOD:REQUEST copy in the schedule inbox, as the
// CalDAV scheduling code delivers a local invitation (RFC 6638 §4.1);
// a response sets its sender's PARTSTAT in the organizer's event; a
// cancellation marks the event STATUS:CANCELLED (RFC 5546 §3.2.5). It
// is idempotent: a page applied again after a crash changes nothing.
func (p *pass) meetings(ctx context.Context, ids []ItemID, t *tally) error {
	if p.calendarDone != nil {
		select {
		case <-p.calendarDone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	coll, err := p.defaultCollection(ctx, calendarKind)
	if err != nil {
		return err
	}
	return p.mb.GetItem(ctx, ids, ShapeMeeting, func(it Item) error {
		if it.Err != nil {
			var e *Error
			if errors.As(it.Err, &e) && e.Code == "ErrorItemNotFound" {
				return nil
			}
			return it.Err
		}
		mm := it.Meeting
		if mm == nil || mm.UID == "" {
			return nil
		}
		var err error
		switch {
		case mm.pending():
			err = p.invitation(ctx, coll, mm)
		case mm.Kind == "MeetingResponse":
			err = p.response(ctx, coll, mm)
		case mm.Kind == "MeetingCancellation":
			err = p.cancellation(ctx, coll, mm)
		default:
			return nil
		}
		if err != nil {
			return err
		}
		t.meetings++
		return nil
	})
}

// invitation makes a pending request an invitation in Mailyard.
func (p *pass) invitation(ctx context.Context, coll store.Collection, mm *MeetingMessage) error {
	st := p.m.opts.Store
	cur, err := st.ObjectByUID(ctx, coll.ID, mm.UID)
	var cal *ical.Calendar
	switch {
	case err == nil:
		if cal, err = ical.NewDecoder(strings.NewReader(string(cur.Data))).Decode(); err != nil {
			return fmt.Errorf("event %s: %w", mm.UID, err)
		}
	case errors.Is(err, store.ErrNotFound):
		if mm.Start == nil || mm.End == nil {
			return nil
		}
		ci := mm.calendarItem()
		if cal, err = ToICalendar(ci, nil); err != nil {
			p.m.opts.Logger.Warn("ews: meeting request not mapped", "target", p.job.Target, "subject", mm.Subject, "err", err)
			return nil
		}
		markSelf(cal, ci, p.self())
		o, err := calendarObject(cal, mm.UID)
		if err != nil {
			return err
		}
		if _, err := p.putObject(ctx, coll, o); err != nil {
			return err
		}
	default:
		return err
	}
	return p.deliverITIP(ctx, cal, mm.UID, "REQUEST")
}

// deliverITIP puts cal as an iTIP message of method (RFC 5546 §1.4:
// the calendar with METHOD) into the schedule inbox, as the CalDAV
// handler delivers a local one (RFC 6638 §4.1): replacing the earlier
// message of the UID, and leaving the inbox as it is when it holds this
// very message (a page applied again).
func (p *pass) deliverITIP(ctx context.Context, cal *ical.Calendar, uid, method string) error {
	inbox, err := p.scheduleInbox(ctx)
	if err != nil {
		return err
	}
	// A stored calendar object may not have METHOD (RFC 4791 §4.1): the
	// bounds are computed without it.
	o, err := calendarObject(cal, uid)
	if err != nil {
		return err
	}
	cal.Props.SetText(ical.PropMethod, method)
	if o.Data, err = Encode(cal); err != nil {
		return err
	}
	if have, err := p.m.opts.Store.ObjectByUID(ctx, inbox.ID, uid); err == nil && string(have.Data) == string(o.Data) {
		return nil
	}
	_, err = p.putObject(ctx, inbox, o)
	return err
}

// response sets the PARTSTAT its sender answered in the organizer's
// event (RFC 5546 §3.2.3: a REPLY updates the attendee's status).
func (p *pass) response(ctx context.Context, coll store.Collection, mm *MeetingMessage) error {
	ps, ok := partstat[mm.ResponseType]
	from := mm.From
	if from == nil {
		from = mm.Sender
	}
	if !ok || !answered(mm.ResponseType) || from == nil || from.Mailbox.EmailAddress == "" {
		return nil
	}
	return p.editEvent(ctx, coll, mm.UID, func(cal *ical.Calendar) bool {
		changed := false
		for _, c := range cal.Children {
			if c.Name != ical.CompEvent {
				continue
			}
			atts := c.Props.Values(ical.PropAttendee)
			for j := range atts {
				if strings.EqualFold(addressOf(&atts[j]).EmailAddress, from.Mailbox.EmailAddress) &&
					atts[j].Params.Get(ical.ParamParticipationStatus) != ps {
					atts[j].Params.Set(ical.ParamParticipationStatus, ps)
					changed = true
				}
			}
			c.Props[ical.PropAttendee] = atts
		}
		return changed
	})
}

// cancellation marks the cancelled event (or the cancelled occurrence:
// its overriding VEVENT, made from the master when it has none)
// STATUS:CANCELLED, and, for a meeting the mailbox attends, puts a
// METHOD:CANCEL copy of what was cancelled into the schedule inbox, as
// the CalDAV handler delivers a local cancellation (RFC 6638 §4.1, RFC
// 5546 §3.2.5). The copy goes first, so that a pass killed between the
// two writes both again; a copy the inbox holds already is not written
// again.
func (p *pass) cancellation(ctx context.Context, coll store.Collection, mm *MeetingMessage) error {
	cur, err := p.m.opts.Store.ObjectByUID(ctx, coll.ID, mm.UID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cal, err := ical.NewDecoder(strings.NewReader(string(cur.Data))).Decode()
	if err != nil {
		return fmt.Errorf("event %s: %w", mm.UID, err)
	}
	ev := cancelled(cal, mm.RecurrenceID)
	if ev == nil {
		return nil
	}
	if attendedBy(cal, p.self()) {
		// Also when the event is cancelled already: the calendar
		// migration brought Exchange's IsCancelled before this message
		// was applied.
		if err := p.deliverITIP(ctx, cancelMessage(cal, []*ical.Component{ev}), mm.UID, "CANCEL"); err != nil {
			return err
		}
	}
	if s := ev.Props.Get(ical.PropStatus); s != nil && s.Value == "CANCELLED" {
		return nil // applied before
	}
	ev.Props.SetText(ical.PropStatus, "CANCELLED")
	o, err := calendarObject(cal, mm.UID)
	if err != nil {
		return err
	}
	o.Name = cur.Name
	_, err = p.m.opts.Store.PutObject(ctx, coll.ID, o, store.PutOptions{IfMatch: cur.ETag})
	return err
}

// cancelled returns the VEVENT of cal a cancellation of the instance
// rid (the whole event when nil) is about: the master, or the instance's
// overriding VEVENT, added to cal from the master when there is none
// (RFC 5545 §3.8.4.4). It returns nil when cal has no such instance
// (nor a series to make it from).
func cancelled(cal *ical.Calendar, rid *time.Time) *ical.Component {
	mi := masterIndex(cal)
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		r := c.Props.Get(ical.PropRecurrenceID)
		if rid == nil && r == nil || rid != nil && r != nil && sameInstant(r, *rid) {
			return c
		}
	}
	if rid == nil || mi < 0 || cal.Children[mi].Props.Get(ical.PropRecurrenceRule) == nil && cal.Children[mi].Props.Get(ical.PropRecurrenceDates) == nil {
		return nil // no series: no instance to override
	}
	ev := instanceOf(cal.Children[mi], *rid)
	if ev != nil {
		cal.Children = append(cal.Children, ev)
	}
	return ev
}

// instanceOf is an overriding VEVENT of the instance of master that
// starts at rid: the master's properties without its recurrence, with
// RECURRENCE-ID and DTSTART at rid (in the master's DTSTART form) and
// the master's duration. It returns nil when the master's times are
// unreadable.
func instanceOf(master *ical.Component, rid time.Time) *ical.Component {
	start, loc, allDay, err := readTime(master.Props.Get(ical.PropDateTimeStart))
	if err != nil {
		return nil
	}
	var dur time.Duration
	if end, _, _, err := readTime(master.Props.Get(ical.PropDateTimeEnd)); err == nil {
		dur = end.Sub(start)
	}
	z := zoneRef{loc: loc}
	if p := master.Props.Get(ical.PropDateTimeStart); p != nil {
		z.tzid = p.Params.Get(ical.ParamTimezoneID)
	}
	if z.tzid == "" {
		z.loc = time.UTC
	}
	ev := ical.NewComponent(ical.CompEvent)
	for name, ps := range master.Props {
		switch name {
		case ical.PropRecurrenceRule, ical.PropRecurrenceDates, ical.PropExceptionDates, ical.PropDateTimeStart,
			ical.PropDateTimeEnd, ical.PropDuration:
			continue
		}
		ev.Props[name] = append([]ical.Prop(nil), ps...)
	}
	ev.Children = master.Children
	ev.Props.Set(timeProp(ical.PropRecurrenceID, rid, z, allDay))
	ev.Props.Set(timeProp(ical.PropDateTimeStart, rid, z, allDay))
	ev.Props.Set(timeProp(ical.PropDateTimeEnd, rid.Add(dur), z, allDay))
	return ev
}

// attendedBy reports whether self is an attendee of cal's meeting, not
// its organizer: the one who gets the organizer's iTIP messages.
func attendedBy(cal *ical.Calendar, self string) bool {
	if self == "" {
		return false
	}
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		org := c.Props.Get(ical.PropOrganizer)
		if org == nil || strings.EqualFold(addressOf(org).EmailAddress, self) {
			return false
		}
		for _, a := range c.Props.Values(ical.PropAttendee) {
			if strings.EqualFold(addressOf(&a).EmailAddress, self) {
				return true
			}
		}
	}
	return false
}

// cancelMessage is the iTIP CANCEL of events (RFC 5546 §3.2.5): the
// calendar's properties and time zones, and each event with
// STATUS:CANCELLED (the whole meeting when one is the master, an
// instance when it has a RECURRENCE-ID).
func cancelMessage(cal *ical.Calendar, events []*ical.Component) *ical.Calendar {
	msg := ical.NewCalendar()
	for name, ps := range cal.Props {
		msg.Props[name] = append([]ical.Prop(nil), ps...)
	}
	for _, c := range cal.Children {
		if c.Name == ical.CompTimezone {
			msg.Children = append(msg.Children, c)
		}
	}
	for _, ev := range events {
		cp := ical.NewComponent(ical.CompEvent)
		for name, ps := range ev.Props {
			cp.Props[name] = append([]ical.Prop(nil), ps...)
		}
		cp.Props.SetText(ical.PropStatus, "CANCELLED")
		msg.Children = append(msg.Children, cp)
	}
	return msg
}

func sameInstant(p *ical.Prop, t time.Time) bool {
	v, _, _, err := readTime(p)
	return err == nil && v.Equal(t)
}

// editEvent applies edit to the event of uid, if the calendar has it,
// and stores the result if edit changed it (only over the version
// read).
func (p *pass) editEvent(ctx context.Context, coll store.Collection, uid string, edit func(*ical.Calendar) bool) error {
	st := p.m.opts.Store
	cur, err := st.ObjectByUID(ctx, coll.ID, uid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cal, err := ical.NewDecoder(strings.NewReader(string(cur.Data))).Decode()
	if err != nil || !edit(cal) {
		return err
	}
	o, err := calendarObject(cal, uid)
	if err != nil {
		return err
	}
	o.Name = cur.Name
	_, err = st.PutObject(ctx, coll.ID, o, store.PutOptions{IfMatch: cur.ETag})
	return err
}

// calendarObject encodes cal as the store object of uid.
func calendarObject(cal *ical.Calendar, uid string) (store.Object, error) {
	data, err := Encode(cal)
	if err != nil {
		return store.Object{}, err
	}
	parsed, err := calendar.Parse(data, calendar.Limits{MaxSize: len(data) + 1})
	if err != nil {
		return store.Object{}, err
	}
	o := store.Object{Name: objectName(uid, calendarKind.ext), UID: uid, ContentType: "text/calendar; charset=utf-8",
		Data: data, Component: parsed.Component()}
	o.Start, o.End = parsed.Bounds()
	return o, nil
}

// scheduleInboxName is the schedule inbox collection of the CalDAV
// handler (RFC 6638 §2.2), where it keeps the iTIP messages a user
// received.
const scheduleInboxName = "inbox"

// scheduleInbox is the account's schedule inbox, made as the CalDAV
// handler makes it when the account has none yet.
func (p *pass) scheduleInbox(ctx context.Context) (store.Collection, error) {
	st := p.m.opts.Store
	c, err := st.Collection(ctx, p.account, store.KindCalendar, scheduleInboxName)
	if !errors.Is(err, store.ErrNotFound) {
		return c, err
	}
	c, err = st.CreateCollection(ctx, store.Collection{Account: p.account, Kind: store.KindCalendar, Name: scheduleInboxName,
		DisplayName: "Inbox", Components: []string{"VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY"}})
	if errors.Is(err, store.ErrExists) {
		return st.Collection(ctx, p.account, store.KindCalendar, scheduleInboxName)
	}
	return c, err
}

// newlyCancelled lists the VEVENTs of next that are STATUS:CANCELLED
// and were not in prev (matched by RECURRENCE-ID, the master by its
// absence): what an organizer's cancellation in Exchange changed in an
// event Mailyard had.
func newlyCancelled(prev, next *ical.Calendar) []*ical.Component {
	isCancelled := func(c *ical.Component) bool {
		s := c.Props.Get(ical.PropStatus)
		return s != nil && strings.EqualFold(s.Value, "CANCELLED")
	}
	var out []*ical.Component
	for _, c := range next.Children {
		if c.Name != ical.CompEvent || !isCancelled(c) {
			continue
		}
		rid := c.Props.Get(ical.PropRecurrenceID)
		was := false
		for _, o := range prev.Children {
			if o.Name != ical.CompEvent {
				continue
			}
			orid := o.Props.Get(ical.PropRecurrenceID)
			if rid == nil && orid == nil || rid != nil && orid != nil && sameRecurrence(rid, orid) {
				was = isCancelled(o)
			}
		}
		if !was {
			out = append(out, c)
		}
	}
	return out
}

// sameRecurrence reports whether two RECURRENCE-IDs name one instance.
func sameRecurrence(a, b *ical.Prop) bool {
	t, _, _, err := readTime(b)
	return err == nil && sameInstant(a, t)
}
