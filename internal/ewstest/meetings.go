package ewstest

import (
	"slices"
	"strings"
	"time"
)

// Meeting messages ([MS-OXWSMTGS]): when an organizer sends a meeting
// (CreateItem with SendMeetingInvitations, UpdateItem with
// SendMeetingInvitationsOrCancellations, DeleteItem with
// SendMeetingCancellations, each other than SendToNone, or CreateItem
// of a CancelCalendarItem), each attendee with a mailbox on this server
// gets what Exchange's transport and calendar assistant give them: a
// MeetingRequest or MeetingCancellation in the inbox, and their own
// calendar item of the meeting's UID made, updated or marked
// IsCancelled. Attendees elsewhere are only recorded (Invitations).
// Earlier requests of the UID in the inbox become IsOutOfDate. No copy
// is saved in the organizer's Sent Items.

// sends reports whether a Send* attribute value sends messages.
func sends(mode string) bool { return mode != "" && mode != "SendToNone" }

// meetingProps are the calendar item properties a meeting request
// carries and an attendee's copy takes from the organizer's item.
var meetingProps = []string{"Subject", "Body", "Start", "End", "IsAllDayEvent", "Location", "Organizer",
	"RequiredAttendees", "OptionalAttendees", "Resources", "Recurrence", "StartTimeZone", "EndTimeZone", "UID"}

// attendeeAddrs lists the SMTP addresses of a calendar item's required
// and optional attendees and resources.
func attendeeAddrs(p *node) []string {
	var out []string
	for _, list := range []string{"RequiredAttendees", "OptionalAttendees", "Resources"} {
		for _, a := range p.child(list).kids() {
			if addr := a.path("Mailbox").text("EmailAddress"); addr != "" {
				out = append(out, addr)
			}
		}
	}
	return out
}

// organizes reports whether it is a meeting mb organizes.
func organizes(mb *mailbox, it *item) bool {
	p := it.props
	return p.Local == "CalendarItem" && len(attendeeAddrs(p)) > 0 &&
		(p.text("MyResponseType") == "Organizer" || strings.EqualFold(p.path("Organizer", "Mailbox").text("EmailAddress"), mb.smtp))
}

// attendeeItem returns the calendar item of uid in mb's calendar, nil
// when there is none.
func attendeeItem(mb *mailbox, uid string) *item {
	cal := mb.byDist["calendar"]
	for _, it := range mb.items {
		if it.folder == cal && it.props.Local == "CalendarItem" && it.props.text("UID") == uid {
			return it
		}
	}
	return nil
}

// organizerNode is the organizer's mailbox as From, Sender and
// Organizer name it.
func organizerNode(local string, mb *mailbox) *node {
	return el(local, el("Mailbox", tel("Name", mb.smtp), tel("EmailAddress", mb.smtp), tel("RoutingType", "SMTP")))
}

// sendRequests delivers a MeetingRequest of organizer mb's meeting it
// (instance index of it when index > 0) to each attendee of this
// server, after making or updating the attendee's calendar item:
// requestType is NewMeetingRequest or FullUpdate ([MS-OXWSMTGS]
// MeetingRequestTypeType).
func (s *Server) sendRequests(mb *mailbox, it *item, index int, requestType string, now time.Time) {
	src := it.props
	if index > 0 {
		src = it.cal.occurrence(it, index)
	}
	uid := it.props.text("UID")
	for _, addr := range attendeeAddrs(it.props) {
		amb := s.mailboxes[strings.ToLower(addr)]
		if amb == nil || amb == mb {
			continue
		}
		copyItem := s.attendeeCopy(amb, it, index, now)
		s.outdate(amb, uid, now)
		msg := el("MeetingRequest", tel("Subject", src.text("Subject")))
		if b := src.child("Body"); b != nil {
			msg.Kids = append(msg.Kids, b.clone())
		}
		msg.Kids = append(msg.Kids, organizerNode("Sender", mb), organizerNode("From", mb), tel("IsRead", "false"),
			tel("IsResponseRequested", "true"), itemIDNode("AssociatedCalendarItemId", copyItem), tel("IsDelegated", "false"),
			tel("IsOutOfDate", "false"), tel("HasBeenProcessed", "true"), tel("ResponseType", "NoResponseReceived"),
			tel("UID", uid), tel("DateTimeStamp", ewsTime(now)), tel("IsOrganizer", "false"),
			tel("MeetingRequestType", requestType), tel("IntendedFreeBusyStatus", "Busy"),
			tel("CalendarItemType", src.text("CalendarItemType")), tel("MyResponseType", "NoResponseReceived"))
		if index > 0 {
			msg.Kids = append(msg.Kids, tel("RecurrenceId", src.text("RecurrenceId")))
		}
		for _, name := range meetingProps {
			if c := src.child(name); c != nil && name != "Subject" && name != "Body" && name != "UID" {
				msg.Kids = append(msg.Kids, c.clone())
			}
		}
		s.addItem(amb, amb.byDist["inbox"], msg, now)
	}
}

// attendeeCopy makes or updates amb's calendar item of the meeting it
// (or, for index > 0, the matching occurrence of amb's series), as the
// calendar assistant does on a request: tentative until answered.
func (s *Server) attendeeCopy(amb *mailbox, it *item, index int, now time.Time) *item {
	uid := it.props.text("UID")
	have := attendeeItem(amb, uid)
	if index > 0 && have != nil && have.cal != nil {
		if ai, ok := have.cal.instanceAt(it.cal.starts[index-1]); ok {
			ov := have.cal.override(ai, have.props.Local)
			for _, k := range it.cal.modified[index].kids() {
				ov.set(k.clone())
			}
			s.touch(amb, have, []string{"ModifiedOccurrences"}, now)
			return have
		}
	}
	p := el("CalendarItem")
	for _, name := range meetingProps {
		if c := it.props.child(name); c != nil {
			p.Kids = append(p.Kids, c.clone())
		}
	}
	p.Kids = append(p.Kids, tel("LegacyFreeBusyStatus", "Tentative"), tel("MyResponseType", "NoResponseReceived"))
	if have == nil {
		return s.addItem(amb, amb.byDist["calendar"], p, now)
	}
	for _, k := range p.Kids {
		have.props.set(k)
	}
	have.props.remove("IsCancelled")
	s.touch(amb, have, meetingProps, now)
	return have
}

// outdate marks the requests of uid in amb's inbox out of date: a later
// one supersedes them.
func (s *Server) outdate(amb *mailbox, uid string, now time.Time) {
	inbox := amb.byDist["inbox"]
	for _, m := range amb.items {
		if m.folder == inbox && m.props.Local == "MeetingRequest" && m.props.text("UID") == uid && m.props.text("IsOutOfDate") != "true" {
			m.props.set(tel("IsOutOfDate", "true"))
			s.touch(amb, m, []string{"IsOutOfDate"}, now)
		}
	}
}

// sendCancellations delivers a MeetingCancellation of organizer mb's
// meeting it (instance index when index > 0) to the attendees addrs of
// this server, and marks their calendar item (or its occurrence)
// IsCancelled, as the calendar assistant does.
func (s *Server) sendCancellations(mb *mailbox, it *item, index int, addrs []string, now time.Time) {
	src := it.props
	if index > 0 {
		src = it.cal.occurrence(it, index)
	}
	uid := it.props.text("UID")
	for _, addr := range addrs {
		amb := s.mailboxes[strings.ToLower(addr)]
		if amb == nil || amb == mb {
			continue
		}
		msg := el("MeetingCancellation", tel("Subject", "Canceled: "+src.text("Subject")), organizerNode("Sender", mb),
			organizerNode("From", mb), tel("IsRead", "false"))
		if have := attendeeItem(amb, uid); have != nil {
			s.cancelCopy(amb, have, it, index, now)
			msg.Kids = append(msg.Kids, itemIDNode("AssociatedCalendarItemId", have))
		}
		msg.Kids = append(msg.Kids, tel("IsOutOfDate", "false"), tel("HasBeenProcessed", "true"), tel("UID", uid),
			tel("DateTimeStamp", ewsTime(now)), tel("IsOrganizer", "false"))
		if index > 0 {
			msg.Kids = append(msg.Kids, tel("RecurrenceId", src.text("RecurrenceId")))
		}
		for _, name := range []string{"Start", "End", "Location", "Recurrence", "CalendarItemType"} {
			if c := src.child(name); c != nil {
				msg.Kids = append(msg.Kids, c.clone())
			}
		}
		s.outdate(amb, uid, now)
		s.addItem(amb, amb.byDist["inbox"], msg, now)
	}
}

// cancelCopy marks an attendee's calendar item have cancelled: the
// whole item, or the occurrence matching instance index of the
// organizer's series.
func (s *Server) cancelCopy(amb *mailbox, have, it *item, index int, now time.Time) {
	if index == 0 {
		have.props.set(tel("IsCancelled", "true"))
		s.touch(amb, have, []string{"IsCancelled"}, now)
		return
	}
	if have.cal == nil {
		return
	}
	if ai, ok := have.cal.instanceAt(it.cal.starts[index-1]); ok {
		have.cal.override(ai, have.props.Local).set(tel("IsCancelled", "true"))
		s.touch(amb, have, []string{"ModifiedOccurrences"}, now)
	}
}

// instanceAt is the index of the instance of c whose original start
// is t.
func (c *calState) instanceAt(t time.Time) (int, bool) {
	for i, st := range c.starts {
		if st.Equal(t) {
			return i + 1, true
		}
	}
	return 0, false
}

// cancelCalendarItem implements the CancelCalendarItem response object
// of CreateItem ([MS-OXWSMTGS] CancelCalendarItemType): only the
// organizer's item can be cancelled; the attendees get cancellations
// and the organizer's item goes to Deleted Items.
func (s *Server) cancelCalendarItem(req *request, n *node) *ewsError {
	mb, it, index, err := s.resolveItem(req, n.child("ReferenceItemId"))
	if err != nil {
		return err
	}
	if index > 0 || !organizes(mb, it) {
		return errf("ErrorItemNotFound", "CancelCalendarItem applies to the organizer's meeting only.")
	}
	s.sendCancellations(mb, it, 0, attendeeAddrs(it.props), req.now)
	if del := mb.byDist["deleteditems"]; it.folder != del {
		s.moveItem(mb, it, del, req.now)
	}
	return nil
}

// sendUpdate sends an organizer's update of meeting it (instance index
// when index > 0): a FullUpdate request to its attendees, and a
// cancellation to those the update removed (before are the attendees
// before it).
func (s *Server) sendUpdate(mb *mailbox, it *item, index int, before []string, now time.Time) {
	s.sendRequests(mb, it, index, "FullUpdate", now)
	after := attendeeAddrs(it.props)
	var removed []string
	for _, a := range before {
		if !slices.ContainsFunc(after, func(b string) bool { return strings.EqualFold(a, b) }) {
			removed = append(removed, a)
		}
	}
	if len(removed) > 0 {
		s.sendCancellations(mb, it, 0, removed, now)
	}
}

// responseKinds are the response objects an attendee answers a meeting
// with ([MS-OXWSMTGS] AcceptItemType, TentativelyAcceptItemType,
// DeclineItemType): the ResponseType each gives and the subject prefix
// of the MeetingResponse it sends.
var responseKinds = map[string]struct{ response, prefix string }{
	"AcceptItem": {"Accept", "Accepted: "}, "TentativelyAcceptItem": {"Tentative", "Tentative: "},
	"DeclineItem": {"Decline", "Declined: "},
}

// respond implements an AcceptItem, TentativelyAcceptItem or
// DeclineItem of CreateItem: ReferenceItemId names the meeting request
// or the attendee's calendar item. The attendee's item takes the answer
// as MyResponseType (a declined one goes to Deleted Items), the
// requests of its UID leave the inbox for Deleted Items, and unless disposition is SaveOnly the
// organizer, when a mailbox here, gets a MeetingResponse and the answer
// in the attendee's ResponseType of their item, as the calendar
// assistant records it.
func (s *Server) respond(req *request, n *node, disposition string) *ewsError {
	kind := responseKinds[n.Local]
	mb, ref, _, err := s.resolveItem(req, n.child("ReferenceItemId"))
	if err != nil {
		return err
	}
	if ref.props.Local != "MeetingRequest" && ref.props.Local != "CalendarItem" {
		return errf("ErrorInvalidRequest", "%s refers to neither a meeting request nor a calendar item.", n.Local)
	}
	uid := ref.props.text("UID")
	organizer := ref.props.path("Organizer", "Mailbox").text("EmailAddress")
	if organizer == "" || strings.EqualFold(organizer, mb.smtp) {
		return errf("ErrorInvalidRequest", "The organizer cannot respond to their own meeting.")
	}
	mine := attendeeItem(mb, uid)
	del, inbox := mb.byDist["deleteditems"], mb.byDist["inbox"]
	var answered []*item
	for _, m := range mb.items {
		if m.folder == inbox && m.props.Local == "MeetingRequest" && m.props.text("UID") == uid {
			answered = append(answered, m)
		}
	}
	for _, m := range answered {
		s.moveItem(mb, m, del, req.now)
	}
	if mine != nil {
		mine.props.set(tel("MyResponseType", kind.response))
		busy := map[string]string{"Accept": "Busy", "Tentative": "Tentative", "Decline": "Free"}[kind.response]
		mine.props.set(tel("LegacyFreeBusyStatus", busy))
		s.touch(mb, mine, []string{"MyResponseType", "LegacyFreeBusyStatus"}, req.now)
		if kind.response == "Decline" && mine.folder != del {
			s.moveItem(mb, mine, del, req.now)
		}
	}
	omb := s.mailboxes[strings.ToLower(organizer)]
	if disposition == "SaveOnly" || omb == nil {
		return nil
	}
	src := ref.props
	if mine != nil {
		src = mine.props
	}
	msg := el("MeetingResponse", tel("Subject", kind.prefix+src.text("Subject")), organizerNode("Sender", mb),
		organizerNode("From", mb), tel("IsRead", "false"))
	if org := attendeeItem(omb, uid); org != nil {
		for _, list := range []string{"RequiredAttendees", "OptionalAttendees", "Resources"} {
			for _, a := range org.props.child(list).kids() {
				if strings.EqualFold(a.path("Mailbox").text("EmailAddress"), mb.smtp) {
					a.set(tel("ResponseType", kind.response))
					a.set(tel("LastResponseTime", ewsTime(req.now)))
				}
			}
		}
		s.touch(omb, org, []string{"RequiredAttendees", "OptionalAttendees", "Resources"}, req.now)
		msg.Kids = append(msg.Kids, itemIDNode("AssociatedCalendarItemId", org))
	}
	msg.Kids = append(msg.Kids, tel("HasBeenProcessed", "true"), tel("ResponseType", kind.response), tel("UID", uid),
		tel("DateTimeStamp", ewsTime(req.now)), tel("IsOrganizer", "true"))
	for _, name := range []string{"Start", "End", "Location", "Recurrence", "CalendarItemType"} {
		if c := src.child(name); c != nil {
			msg.Kids = append(msg.Kids, c.clone())
		}
	}
	s.addItem(omb, omb.byDist["inbox"], msg, req.now)
	return nil
}
