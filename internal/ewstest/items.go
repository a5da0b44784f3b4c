package ewstest

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"
)

// itemOrder is the element order of each item type in the types schema
// (ItemType, then MessageType / CalendarItemType / ContactItemType /
// TaskType), used to write properties in sequence order whatever order
// they were set in.
var itemOrder = func() map[string]map[string]int {
	base := strings.Fields(`MimeContent ItemId ParentFolderId ItemClass Subject Sensitivity Body Attachments
		DateTimeReceived Size Categories Importance InReplyTo IsSubmitted IsDraft IsFromMe IsResend IsUnmodified
		InternetMessageHeaders DateTimeSent DateTimeCreated ResponseObjects ReminderDueBy ReminderIsSet
		ReminderNextTime ReminderMinutesBeforeStart DisplayCc DisplayTo HasAttachments ExtendedProperty Culture
		EffectiveRights LastModifiedName LastModifiedTime IsAssociated WebClientReadFormQueryString
		WebClientEditFormQueryString ConversationId UniqueBody Flag StoreEntryId InstanceKey NormalizedBody
		EntityExtractionResult PolicyTag ArchiveTag RetentionDate Preview RightsManagementLicenseData
		PredictedActionReasons IsClutter BlockStatus HasBlockedImages TextBody`)
	kinds := map[string]string{
		"Message": `Sender ToRecipients CcRecipients BccRecipients IsReadReceiptRequested IsDeliveryReceiptRequested
			ConversationIndex ConversationTopic From InternetMessageId IsRead IsResponseRequested References ReplyTo
			ReceivedBy ReceivedRepresenting ApprovalRequestData VotingInformation ReminderMessageData`,
		"CalendarItem": `UID RecurrenceId DateTimeStamp Start End OriginalStart IsAllDayEvent LegacyFreeBusyStatus
			Location When IsMeeting IsCancelled IsRecurring MeetingRequestWasSent IsResponseRequested
			CalendarItemType MyResponseType Organizer RequiredAttendees OptionalAttendees Resources
			ConflictingMeetingCount AdjacentMeetingCount ConflictingMeetings AdjacentMeetings Duration TimeZone
			AppointmentReplyTime AppointmentSequenceNumber AppointmentState Recurrence FirstOccurrence
			LastOccurrence ModifiedOccurrences DeletedOccurrences MeetingTimeZone StartTimeZone EndTimeZone
			ConferenceType AllowNewTimeProposal IsOnlineMeeting MeetingWorkspaceUrl NetShowUrl`,
		"Contact": `FileAs FileAsMapping DisplayName GivenName Initials MiddleName Nickname CompleteName CompanyName
			EmailAddresses PhysicalAddresses PhoneNumbers AssistantName Birthday BusinessHomePage Children
			Companies ContactSource Department Generation ImAddresses JobTitle Manager Mileage OfficeLocation
			PostalAddressIndex Profession SpouseName Surname WeddingAnniversary HasPicture PhoneticFullName
			PhoneticFirstName PhoneticLastName Alias Notes Photo UserSMIMECertificate MSExchangeCertificate
			DirectoryId ManagerMailbox DirectReports`,
		"Task": `ActualWork AssignedTime BillingInformation ChangeCount Companies CompleteDate Contacts
			DelegationState Delegator DueDate IsAssignmentEditable IsComplete IsRecurring IsTeamTask Mileage Owner
			PercentComplete Recurrence StartDate Status StatusDescription TotalWork`,
	}
	// Meeting messages ([MS-OXWSMTGS] MeetingMessageType and the types
	// extending it) are messages with meeting properties after them.
	meeting := kinds["Message"] + ` AssociatedCalendarItemId IsDelegated IsOutOfDate HasBeenProcessed ResponseType UID
		RecurrenceId DateTimeStamp IsOrganizer`
	kinds["MeetingMessage"] = meeting
	kinds["MeetingRequest"] = meeting + ` MeetingRequestType IntendedFreeBusyStatus Start End OriginalStart
		IsAllDayEvent LegacyFreeBusyStatus Location When IsMeeting IsCancelled IsRecurring MeetingRequestWasSent
		CalendarItemType MyResponseType Organizer RequiredAttendees OptionalAttendees Resources ConflictingMeetingCount
		AdjacentMeetingCount ConflictingMeetings AdjacentMeetings Duration TimeZone AppointmentReplyTime
		AppointmentSequenceNumber AppointmentState Recurrence FirstOccurrence LastOccurrence ModifiedOccurrences
		DeletedOccurrences MeetingTimeZone StartTimeZone EndTimeZone`
	kinds["MeetingResponse"] = meeting + ` Start End Location Recurrence CalendarItemType ProposedStart ProposedEnd`
	kinds["MeetingCancellation"] = meeting + ` Start End Location Recurrence CalendarItemType`
	out := map[string]map[string]int{}
	for kind, extra := range kinds {
		m := map[string]int{}
		for i, n := range append(slices.Clone(base), strings.Fields(extra)...) {
			m[n] = i
		}
		out[kind] = m
	}
	out["Item"] = out["Message"]
	return out
}()

// itemClass is the default ItemClass of each item element.
var itemClass = map[string]string{"Message": "IPM.Note", "CalendarItem": "IPM.Appointment", "Contact": "IPM.Contact", "Task": "IPM.Task", "Item": "IPM.Note",
	"MeetingRequest": "IPM.Schedule.Meeting.Request", "MeetingResponse": "IPM.Schedule.Meeting.Resp.Pos",
	"MeetingCancellation": "IPM.Schedule.Meeting.Canceled", "MeetingMessage": "IPM.Schedule.Meeting.Notification"}

// isMessage reports whether an item element is a message: a Message or
// a meeting message, which extends it.
func isMessage(local string) bool {
	return local == "Message" || strings.HasPrefix(local, "Meeting")
}

// defaultFolder is where CreateItem saves an item without
// SavedItemFolderId.
var defaultFolder = map[string]string{"Message": "drafts", "CalendarItem": "calendar", "Contact": "contacts", "Task": "tasks", "Item": "drafts",
	"MeetingRequest": "inbox", "MeetingResponse": "inbox", "MeetingCancellation": "inbox", "MeetingMessage": "inbox"}

// sortProps puts n's children in schema order (stable for unknowns).
func sortProps(n *node) {
	order := itemOrder[n.Local]
	slices.SortStableFunc(n.Kids, func(a, b *node) int {
		ia, oka := order[a.Local]
		ib, okb := order[b.Local]
		switch {
		case oka && okb:
			return ia - ib
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
}

func ewsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func itemIDNode(local string, it *item) *node {
	return tel(local, "").attr("Id", it.id).attr("ChangeKey", changeKey("I", it.ck))
}

// stamp writes the server-computed properties of it into its tree.
func (s *Server) stamp(mb *mailbox, it *item, now time.Time) {
	p := it.props
	p.set(itemIDNode("ItemId", it))
	p.set(folderIDNode("ParentFolderId", it.folder))
	if p.child("ItemClass") == nil {
		p.set(tel("ItemClass", itemClass[p.Local]))
	}
	if p.child("DateTimeCreated") == nil {
		p.set(tel("DateTimeCreated", ewsTime(now)))
	}
	p.set(tel("LastModifiedTime", ewsTime(now)))
	if p.child("DateTimeReceived") == nil {
		p.set(tel("DateTimeReceived", ewsTime(now)))
	}
	stampAttachments(it)
	p.remove("Size")
	size := 0
	if m := p.child("MimeContent"); m != nil {
		size = base64.StdEncoding.DecodedLen(len(strings.TrimSpace(m.Text)))
	}
	p.set(tel("Size", strconv.Itoa(size+len(p.text("Subject"))+len(p.text("Body")))))
	switch {
	case isMessage(p.Local):
		fillFromMIME(p)
		if p.child("IsRead") == nil {
			p.set(tel("IsRead", "false"))
		}
	case p.Local == "Contact":
		if p.child("DisplayName") == nil {
			p.set(tel("DisplayName", strings.TrimSpace(p.text("GivenName")+" "+p.text("Surname"))))
		}
		if p.child("FileAs") == nil {
			p.set(tel("FileAs", p.text("DisplayName")))
		}
	case p.Local == "CalendarItem":
		s.stampCalendar(mb, it)
	}
	sortProps(p)
}

// renderItem writes it (or one occurrence of it) in a shape.
func (s *Server) renderItem(mb *mailbox, it *item, index int, sh shape) *node {
	src := it.props
	if index > 0 {
		src = it.cal.occurrence(it, index)
	}
	out := &node{Space: nsTypes, Local: src.Local}
	for _, p := range src.Kids {
		if p.Local == "ItemId" || sh.extra[p.Local] ||
			((sh.base == "AllProperties" || sh.base == "Default") && p.Local != "MimeContent") {
			out.Kids = append(out.Kids, p)
			continue
		}
		if keys := sh.indexed[p.Local]; keys != nil {
			c := &node{Space: p.Space, Local: p.Local}
			for _, e := range p.Kids {
				if keys[e.get("Key")] {
					c.Kids = append(c.Kids, e)
				}
			}
			if len(c.Kids) > 0 {
				out.Kids = append(out.Kids, c)
			}
		}
	}
	if sh.extra["MimeContent"] && src.child("MimeContent") == nil && isMessage(src.Local) {
		out.Kids = append([]*node{tel("MimeContent", base64.StdEncoding.EncodeToString(synthMIME(src))).attr("CharacterSet", "UTF-8")}, out.Kids...)
	}
	return out
}

// getItem implements GetItem ([MS-OXWSCORE], the GetItem operation), occurrences by
// OccurrenceItemId included.
func (s *Server) getItem(req *request) (*node, *ewsError) {
	sh := parseShape(req.op.child("ItemShape"))
	if req.op.path("ItemShape").text("IncludeMimeContent") == "true" {
		sh.extra["MimeContent"] = true
	}
	if len(req.op.child("ItemIds").kids()) == 0 {
		// NonEmptyArrayOfBaseItemIdsType ([MS-OXWSCORE] §2.2.4.31):
		// Exchange's schema validation refuses an empty list.
		return nil, errf("ErrorSchemaValidation", "The request failed schema validation: ItemIds has no item id.")
	}
	var msgs []*node
	for _, ref := range req.op.child("ItemIds").kids() {
		mb, it, index, err := s.resolveItem(req, ref)
		if err != nil {
			msgs = append(msgs, responseMessage("GetItem", err))
			continue
		}
		msgs = append(msgs, responseMessage("GetItem", nil, mel("Items", s.renderItem(mb, it, index, sh))))
	}
	return operationResponse("GetItem", msgs...), nil
}

// findItem implements FindItem ([MS-OXWSSRCH], the FindItem operation): Shallow
// traversal, IndexedPageItemView paging or a CalendarView that expands
// recurring series, and the common restrictions (see restrict).
func (s *Server) findItem(req *request) (*node, *ewsError) {
	sh := parseShape(req.op.child("ItemShape"))
	for name := range sh.extra {
		if notInFindItem[name] {
			return operationResponse("FindItem", responseMessage("FindItem",
				errf("ErrorInvalidPropertyRequest", "The property %s can't be used in FindItem requests.", name))), nil
		}
	}
	v := parseView(req.op, "IndexedPageItemView")
	cv := req.op.child("CalendarView")
	var from, to time.Time
	if cv != nil {
		var e1, e2 error
		from, e1 = time.Parse(time.RFC3339, cv.get("StartDate"))
		to, e2 = time.Parse(time.RFC3339, cv.get("EndDate"))
		if e1 != nil || e2 != nil || !to.After(from) {
			return nil, errf("ErrorCalendarInvalidDayForTimeChangePattern", "CalendarView needs StartDate before EndDate.")
		}
		if m, err := strconv.Atoi(cv.get("MaxEntriesReturned")); err == nil && m > 0 {
			v.max = m
		}
	}
	var msgs []*node
	for _, ref := range req.op.child("ParentFolderIds").kids() {
		mb, f, err := s.resolveFolder(req, ref)
		if err != nil {
			msgs = append(msgs, responseMessage("FindItem", err))
			continue
		}
		var found []*node
		for _, it := range mb.itemsIn(f) {
			if r := req.op.child("Restriction"); r != nil && len(r.Kids) == 1 && !restrict(r.Kids[0], it.props) {
				continue
			}
			if cv == nil {
				found = append(found, findView(s.renderItem(mb, it, 0, sh)))
				continue
			}
			for _, idx := range it.inView(from, to) {
				found = append(found, findView(s.renderItem(mb, it, idx, sh)))
			}
		}
		lo, hi, next, last := v.page(len(found))
		list := el("Items", found[lo:hi]...)
		root := mel("RootFolder", list).attr("IndexedPagingOffset", strconv.Itoa(next)).
			attr("TotalItemsInView", strconv.Itoa(len(found))).attr("IncludesLastItemInRange", strconv.FormatBool(last))
		msgs = append(msgs, responseMessage("FindItem", nil, root))
	}
	return operationResponse("FindItem", msgs...), nil
}

// notInFindItem are the properties FindItem does not return, only
// GetItem: streamed and multi-valued ones ([MS-OXWSSRCH] FindItem;
// Exchange answers ErrorInvalidPropertyRequest when one is asked for and
// leaves them out of AllProperties).
var notInFindItem = map[string]bool{
	"MimeContent": true, "Body": true, "UniqueBody": true, "Attachments": true, "TextBody": true,
	"ToRecipients": true, "CcRecipients": true, "BccRecipients": true, "ReplyTo": true,
	"RequiredAttendees": true, "OptionalAttendees": true, "Resources": true,
	"ModifiedOccurrences": true, "DeletedOccurrences": true, "InternetMessageHeaders": true,
}

// findView drops what FindItem never returns from a rendered item.
func findView(n *node) *node {
	kept := n.Kids[:0]
	for _, k := range n.Kids {
		if !notInFindItem[k.Local] {
			kept = append(kept, k)
		}
	}
	n.Kids = kept
	return n
}

// itemsIn lists f's items in creation order.
func (mb *mailbox) itemsIn(f *folder) []*item {
	var out []*item
	for _, it := range mb.items {
		if it.folder == f {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b *item) int { return cmpUint(a.seq, b.seq) })
	return out
}

// restrict evaluates a restriction ([MS-OXWSSRCH] SearchExpressionType)
// on an item: IsEqualTo, IsNotEqualTo, Contains, And, Or, Not over
// property text. Any other expression matches nothing.
func restrict(e *node, p *node) bool {
	switch e.Local {
	case "And":
		for _, k := range e.Kids {
			if !restrict(k, p) {
				return false
			}
		}
		return true
	case "Or":
		for _, k := range e.Kids {
			if restrict(k, p) {
				return true
			}
		}
		return false
	case "Not":
		return len(e.Kids) == 1 && !restrict(e.Kids[0], p)
	case "IsEqualTo", "IsNotEqualTo":
		field := uriElement(e.child("FieldURI").get("FieldURI"))
		want := e.path("FieldURIOrConstant", "Constant").get("Value")
		eq := p.text(field) == want
		return eq == (e.Local == "IsEqualTo")
	case "Contains":
		field := uriElement(e.child("FieldURI").get("FieldURI"))
		return strings.Contains(strings.ToLower(p.text(field)), strings.ToLower(e.child("Constant").get("Value")))
	}
	return false
}

// createItem implements CreateItem ([MS-OXWSCORE], the CreateItem
// operation). Meeting invitations are recorded (see Server.Invitations)
// and delivered to the attendees of this server (meetings.go), as are a
// CancelCalendarItem's cancellation and an attendee's answer (AcceptItem,
// TentativelyAcceptItem, DeclineItem).
func (s *Server) createItem(req *request) (*node, *ewsError) {
	send := req.op.get("SendMeetingInvitations")
	disp := req.op.get("MessageDisposition")
	var msgs []*node
	for _, n := range req.op.child("Items").kids() {
		if n.Local == "CancelCalendarItem" {
			msgs = append(msgs, responseMessage("CreateItem", s.cancelCalendarItem(req, n), mel("Items")))
			continue
		}
		if _, ok := responseKinds[n.Local]; ok {
			msgs = append(msgs, responseMessage("CreateItem", s.respond(req, n, disp), mel("Items")))
			continue
		}
		if _, ok := itemClass[n.Local]; !ok {
			msgs = append(msgs, responseMessage("CreateItem", errf("ErrorInvalidRequest", "Items of type %s are not supported.", n.Local)))
			continue
		}
		if n.Local == "CalendarItem" && send == "" {
			msgs = append(msgs, responseMessage("CreateItem", errf("ErrorSendMeetingInvitationsRequired", "SendMeetingInvitations is required for calendar items.")))
			continue
		}
		var mb *mailbox
		var f *folder
		var err *ewsError
		if ref := req.op.child("SavedItemFolderId"); ref != nil && len(ref.Kids) == 1 {
			mb, f, err = s.resolveFolder(req, ref.Kids[0])
		} else {
			dist := defaultFolder[n.Local]
			if n.Local == "Message" && disp != "SaveOnly" {
				dist = "sentitems"
			}
			mb, f, err = s.resolveFolder(req, el("DistinguishedFolderId").attr("Id", dist))
		}
		if err == nil && n.Local == "CalendarItem" {
			err = checkCalendar(n)
		}
		if err == nil {
			err = checkAttachments(n)
		}
		if err != nil {
			msgs = append(msgs, responseMessage("CreateItem", err))
			continue
		}
		it := s.addItem(mb, f, n.clone(), req.now)
		if n.Local == "CalendarItem" && send != "SendToNone" {
			s.invite(mb, it)
		}
		if sends(send) && organizes(mb, it) {
			s.sendRequests(mb, it, 0, "NewMeetingRequest", req.now)
		}
		created := el(n.Local, itemIDNode("ItemId", it))
		if len(it.atts) > 0 {
			// The attachments' ids, as Exchange 2010 and later return
			// them for attachments created with their item.
			list := el("Attachments")
			for _, a := range it.atts {
				list.Kids = append(list.Kids, el(a.kind, a.idNode()))
			}
			created.Kids = append(created.Kids, list)
		}
		msgs = append(msgs, responseMessage("CreateItem", nil, mel("Items", created)))
	}
	return operationResponse("CreateItem", msgs...), nil
}

// addItem stores a new item in f and records the change.
func (s *Server) addItem(mb *mailbox, f *folder, props *node, now time.Time) *item {
	props.Space = nsTypes
	mb.cn++
	it := &item{id: s.newID(mb, "I"), ck: 1, folder: f, props: props, created: mb.cn, changed: mb.cn}
	it.seq = s.nextID
	mb.items[it.id] = it
	s.takeAttachments(mb, it, now)
	s.stamp(mb, it, now)
	s.emitItem(mb, "CreatedEvent", it)
	return it
}

// touch records a change to it: a new change number and change key.
func (s *Server) touch(mb *mailbox, it *item, fields []string, now time.Time) {
	mb.cn++
	it.changed = mb.cn
	it.history = append(it.history, fieldChange{ck: it.ck, fields: fields})
	if len(it.history) > 32 {
		it.history = it.history[1:]
	}
	it.ck++
	it.readOnly = len(fields) == 1 && fields[0] == "IsRead"
	s.stamp(mb, it, now)
	s.emitItem(mb, "ModifiedEvent", it)
}

// updateItem implements UpdateItem ([MS-OXWSCORE] §3.1.4.9):
// SetItemField, AppendToItemField and DeleteItemField on items and on
// occurrences (which become exceptions), with the ChangeKey checked by
// ConflictResolution.
func (s *Server) updateItem(req *request) (*node, *ewsError) {
	mode := req.op.get("ConflictResolution")
	if mode == "" {
		mode = "AutoResolve"
	}
	var msgs []*node
	for _, ch := range req.op.child("ItemChanges").kids() {
		var ref *node
		for _, k := range ch.Kids {
			if k.Local == "ItemId" || k.Local == "OccurrenceItemId" {
				ref = k
			}
		}
		if ref == nil {
			msgs = append(msgs, responseMessage("UpdateItem", errf("ErrorInvalidIdEmpty", "The item id is missing.")))
			continue
		}
		mb, it, index, err := s.resolveItem(req, ref)
		var fields []string
		if err == nil {
			fields = updatedFields(ch.child("Updates"))
			err = it.checkChangeKey(ref.get("ChangeKey"), mode, fields)
		}
		var before []string
		if err == nil {
			before = attendeeAddrs(it.props)
			// An ItemChange applies whole or not at all.
			saved := it.props.clone()
			var savedOv *node
			if ov := it.cal.modifiedAt(index); ov != nil {
				savedOv = ov.clone()
			}
			if err = s.applyUpdates(it, index, ch.child("Updates")); err != nil {
				it.props = saved
				it.cal.restore(index, savedOv)
			}
		}
		if err != nil {
			msgs = append(msgs, responseMessage("UpdateItem", err))
			continue
		}
		s.touch(mb, it, fields, req.now)
		if sends(req.op.get("SendMeetingInvitationsOrCancellations")) && organizes(mb, it) {
			s.sendUpdate(mb, it, index, before, req.now)
		}
		out := itemIDNode("ItemId", it)
		if index > 0 {
			out = tel("ItemId", "").attr("Id", occurrenceID(it, index)).attr("ChangeKey", changeKey("I", it.ck))
		}
		msgs = append(msgs, responseMessage("UpdateItem", nil, mel("Items", el(it.props.Local, out)),
			mel("ConflictResults", &node{Space: nsTypes, Local: "Count", Text: "0"})))
	}
	return operationResponse("UpdateItem", msgs...), nil
}

// updatedFields names the properties an Updates element touches.
func updatedFields(u *node) []string {
	var out []string
	for _, c := range u.Kids {
		for _, k := range c.Kids {
			switch k.Local {
			case "FieldURI":
				out = append(out, uriElement(k.get("FieldURI")))
			case "IndexedFieldURI":
				out = append(out, indexedContainer(k.get("FieldURI")))
			}
		}
	}
	return out
}

// checkChangeKey applies ConflictResolution ([MS-OXWSCORE] §3.1.4.9.4.1
// ConflictResolutionType): AlwaysOverwrite ignores the key,
// NeverOverwrite refuses a stale one, AutoResolve refuses a stale one
// only when a change since then touched the same properties.
func (it *item) checkChangeKey(ck, mode string, fields []string) *ewsError {
	if ck == "" || mode == "AlwaysOverwrite" || ck == changeKey("I", it.ck) {
		return nil
	}
	conflict := errf("ErrorIrresolvableConflict", "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.")
	if mode == "NeverOverwrite" {
		return conflict
	}
	seen := false
	for _, h := range it.history {
		if changeKey("I", h.ck) == ck {
			seen = true
		}
		if seen && slices.ContainsFunc(h.fields, func(f string) bool { return slices.Contains(fields, f) }) {
			return conflict
		}
	}
	if !seen {
		return errf("ErrorStaleObject", "The change key is unknown or too old.")
	}
	return nil
}

// applyUpdates changes it's tree (or an occurrence's overrides).
func (s *Server) applyUpdates(it *item, index int, u *node) *ewsError {
	target := it.props
	if index > 0 {
		target = it.cal.override(index, it.props.Local)
	}
	for _, c := range u.Kids {
		var uri *node
		var val *node
		for _, k := range c.Kids {
			switch k.Local {
			case "FieldURI", "IndexedFieldURI", "ExtendedFieldURI":
				uri = k
			default:
				val = k
			}
		}
		if uri == nil {
			return errf("ErrorInvalidPropertyRequest", "An update names no property.")
		}
		switch c.Local {
		case "SetItemField", "AppendToItemField":
			if val == nil || len(val.Kids) != 1 {
				return errf("ErrorIncorrectUpdatePropertyCount", "An object within a change description must contain one and only one property to modify.")
			}
			prop := val.Kids[0].clone()
			prop.Space = nsTypes
			switch {
			case uri.Local == "IndexedFieldURI":
				mergeIndexed(target, prop)
			case c.Local == "AppendToItemField" && target.child(prop.Local) != nil:
				old := target.child(prop.Local)
				if len(old.Kids) > 0 {
					old.Kids = append(old.Kids, prop.Kids...)
				} else {
					old.Text += prop.Text
				}
			default:
				target.set(prop)
			}
		case "DeleteItemField":
			if uri.Local == "IndexedFieldURI" {
				deleteIndexed(target, uri)
			} else {
				target.remove(uriElement(uri.get("FieldURI")))
			}
		}
	}
	if index == 0 && it.props.Local == "CalendarItem" {
		if err := checkCalendar(it.props); err != nil {
			return err
		}
		it.cal.reset(updatedFields(u))
	}
	return nil
}

// mergeIndexed sets one dictionary entry (EmailAddresses/Entry Key=...)
// in target; PhysicalAddresses entries merge by sub-element.
func mergeIndexed(target, prop *node) {
	cont := target.child(prop.Local)
	if cont == nil {
		target.Kids = append(target.Kids, prop)
		return
	}
	for _, e := range prop.Kids {
		var old *node
		for _, o := range cont.Kids {
			if o.get("Key") == e.get("Key") {
				old = o
			}
		}
		switch {
		case old == nil:
			cont.Kids = append(cont.Kids, e)
		case len(e.Kids) > 0:
			for _, sub := range e.Kids {
				old.set(sub)
			}
		default:
			*old = *e
		}
	}
}

// deleteIndexed removes a dictionary entry (or one sub-field of it).
func deleteIndexed(target, uri *node) {
	cont := target.child(indexedContainer(uri.get("FieldURI")))
	if cont == nil {
		return
	}
	parts := strings.Split(uri.get("FieldURI"), ":")
	kept := cont.Kids[:0]
	for _, e := range cont.Kids {
		if e.get("Key") == uri.get("FieldIndex") {
			if len(parts) == 3 {
				e.remove(parts[2])
				if len(e.Kids) > 0 {
					kept = append(kept, e)
				}
			}
			continue
		}
		kept = append(kept, e)
	}
	cont.Kids = kept
	if len(cont.Kids) == 0 {
		target.remove(cont.Local)
	}
}

// deleteItem implements DeleteItem ([MS-OXWSCORE], the DeleteItem operation):
// HardDelete, SoftDelete, MoveToDeletedItems; an occurrence id deletes
// that occurrence from its series.
func (s *Server) deleteItem(req *request) (*node, *ewsError) {
	kind := req.op.get("DeleteType")
	var msgs []*node
	for _, ref := range req.op.child("ItemIds").kids() {
		mb, it, index, err := s.resolveItem(req, ref)
		if err != nil {
			msgs = append(msgs, responseMessage("DeleteItem", err))
			continue
		}
		if sends(req.op.get("SendMeetingCancellations")) && organizes(mb, it) {
			s.sendCancellations(mb, it, index, attendeeAddrs(it.props), req.now)
		}
		switch {
		case index > 0:
			it.cal.deleted[index] = true
			delete(it.cal.modified, index)
			s.touch(mb, it, []string{"DeletedOccurrences"}, req.now)
		case kind == "MoveToDeletedItems" && it.folder != mb.byDist["deleteditems"]:
			s.moveItem(mb, it, mb.byDist["deleteditems"], req.now)
		default:
			s.removeItem(mb, it)
		}
		msgs = append(msgs, responseMessage("DeleteItem", nil))
	}
	return operationResponse("DeleteItem", msgs...), nil
}

func (s *Server) removeItem(mb *mailbox, it *item) {
	mb.cn++
	delete(mb.items, it.id)
	for _, a := range it.atts {
		delete(mb.atts, a.id)
	}
	mb.tombs = append(mb.tombs, tomb{id: it.id, parent: it.folder, cn: mb.cn, created: it.created})
	s.emitItem(mb, "DeletedEvent", it)
}

// moveItem moves it to another folder; as in Exchange, the item gets a
// new ItemId there (MovedEvent carries both).
func (s *Server) moveItem(mb *mailbox, it *item, to *folder, now time.Time) {
	old, oldID := it.folder, it.id
	mb.cn++
	mb.tombs = append(mb.tombs, tomb{id: it.id, parent: old, cn: mb.cn, created: it.created})
	delete(mb.items, it.id)
	it.id = s.newID(mb, "I")
	mb.items[it.id] = it
	it.folder = to
	it.created, it.changed = mb.cn, mb.cn
	it.ck++
	s.stamp(mb, it, now)
	s.emit(mb, "MovedEvent", to, old, func() []*node {
		return []*node{itemIDNode("ItemId", it), folderIDNode("ParentFolderId", to),
			tel("OldItemId", "").attr("Id", oldID), folderIDNode("OldParentFolderId", old)}
	})
}
