package dav

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// Implicit scheduling (RFC 6638 §3): when a calendar user stores or
// deletes a scheduling object resource, the server sends the iTIP
// messages (RFC 5546) a client would otherwise send:
//   - the ORGANIZER's PUT sends a REQUEST to every ATTENDEE and a CANCEL
//     to every attendee it removed; a DELETE sends CANCEL to all. Local
//     attendees get the message in their schedule inbox and a copy in
//     their calendar; remote ones go to Options.IMIP. Each ATTENDEE of
//     the organizer's copy records the outcome in SCHEDULE-STATUS
//     (§3.2.9): 1.1 sent, 1.2 delivered, 3.7 invalid user, 3.8 no
//     authority, 5.1 delivery failed, 5.3 no scheduling support.
//   - an ATTENDEE's PUT that changes their PARTSTAT sends a REPLY that
//     updates their PARTSTAT in the organizer's copy; an attendee's
//     DELETE replies DECLINED.
//
// SCHEDULE-AGENT=CLIENT or NONE on a property (§7.1) leaves that
// calendar user to the client. Local delivery reaches users and
// resources of the organizer's tenant; addresses of other tenants and
// domains are remote. An inbox holds the latest message per UID (the
// store keeps UIDs unique per collection).

// itipCtx is one scheduling operation.
type itipCtx struct {
	ctx  context.Context
	rq   *request
	user directory.User
}

// scheduleOnPut runs implicit scheduling for a stored calendar object
// and returns the object's data with SCHEDULE-STATUS and resource
// replies recorded, or nil if nothing changed.
func (h *Handler) scheduleOnPut(rq *request, prev []byte, cal *ical.Calendar) []byte {
	org := organizerOf(cal)
	if org == nil || isInbox(rq.t) {
		return nil
	}
	var prevCal *ical.Calendar
	if prev != nil {
		prevCal, _ = ical.NewDecoder(strings.NewReader(string(prev))).Decode()
	}
	u := h.scheduler(rq)
	ic := itipCtx{ctx: rq.ctx, rq: rq, user: u}
	if isOwnAddress(u, org.Value) {
		if clientScheduled(org) || !h.organizerSend(ic, cal, prevCal) {
			return nil
		}
		data, err := encodeCalendar(cal)
		if err != nil {
			rq.log.Error("encoding the organizer's copy", "err", err)
			return nil
		}
		return data
	}
	h.attendeeReply(ic, cal, prevCal, "")
	return nil
}

// scheduleOnDelete sends what deleting a scheduling object means: a
// CANCEL to every attendee when the organizer deletes it, a REPLY
// DECLINED when an attendee does (RFC 6638 §3.2.2.3, §3.2.3.3 style).
func (h *Handler) scheduleOnDelete(rq *request, data []byte) {
	cal, err := ical.NewDecoder(strings.NewReader(string(data))).Decode()
	if err != nil || isInbox(rq.t) {
		return
	}
	org := organizerOf(cal)
	if org == nil || clientScheduled(org) {
		return
	}
	u := h.scheduler(rq)
	ic := itipCtx{ctx: rq.ctx, rq: rq, user: u}
	if isOwnAddress(u, org.Value) {
		keys, props := attendeeSet(cal)
		for _, k := range keys {
			if p := props[k]; !clientScheduled(&p) && !isOwnAddress(u, p.Value) {
				h.send(ic, org.Value, p.Value, methodCancel, cal)
			}
		}
		return
	}
	h.attendeeReply(ic, cal, nil, "DECLINED")
}

// organizerSend delivers REQUEST to the current and CANCEL to removed
// attendees and records the outcomes in cal. It reports whether cal
// changed.
func (h *Handler) organizerSend(ic itipCtx, cal, prevCal *ical.Calendar) bool {
	org := organizerOf(cal)
	keys, props := attendeeSet(cal)
	if len(keys) > h.opts.Limits.MaxAttendees {
		return false // validate refused such objects already
	}
	changed := false
	var unchanged map[string]string
	if prevCal != nil && organizerOf(prevCal) != nil && addrKey(organizerOf(prevCal).Value) == addrKey(org.Value) {
		unchanged = unchangedFor(cal, prevCal)
	}
	for _, k := range keys {
		p := props[k]
		if clientScheduled(&p) || isOwnAddress(ic.user, p.Value) {
			continue
		}
		if prevStatus, ok := unchanged[k]; ok {
			// Nothing the attendee is told about changed: no REQUEST;
			// the outcome of the last one stays recorded.
			if prevStatus != "" && p.Params.Get(paramScheduleStatus) != prevStatus {
				setAttendeeParam(cal, k, paramScheduleStatus, prevStatus)
				changed = true
			}
			continue
		}
		if p.Params.Get(paramScheduleForceSend) != "" {
			delAttendeeParam(cal, k, paramScheduleForceSend) // RFC 6638 §7.2: not stored
			changed = true
		}
		status, partstat, cuType := h.send(ic, org.Value, p.Value, methodRequest, cal)
		setAttendeeParam(cal, k, paramScheduleStatus, scheduleStatus(status))
		if cuType != "" && cuType != cuIndividual && p.Params.Get(ical.ParamCalendarUserType) == "" {
			setAttendeeParam(cal, k, ical.ParamCalendarUserType, cuType) // RFC 5545 §3.2.3
		}
		if partstat != "" {
			setAttendeeParam(cal, k, ical.ParamParticipationStatus, partstat)
		}
		changed = true
	}
	if prevCal == nil || organizerOf(prevCal) == nil || addrKey(organizerOf(prevCal).Value) != addrKey(org.Value) {
		return changed
	}
	oldKeys, oldProps := attendeeSet(prevCal)
	for _, k := range oldKeys {
		p := oldProps[k]
		if _, still := props[k]; still || clientScheduled(&p) || isOwnAddress(ic.user, p.Value) {
			continue
		}
		// RFC 5546 §3.2.5: an attendee removed from the event is told so.
		h.send(ic, org.Value, p.Value, methodCancel, prevCal)
	}
	return changed
}

// paramSentBy names who acts for a calendar user (RFC 5545 §3.2.18).
const paramSentBy = "SENT-BY"

// setSentBy records in a message who sent it for the calendar user
// from: SENT-BY (RFC 5545 §3.2.18) on the ORGANIZER of a REQUEST or
// CANCEL, on the replying ATTENDEE of a REPLY, naming by (an address),
// the authenticated user acting for another calendar user (a calendar
// proxy for the owner, delegate.go; an approver for a resource,
// resource.go); by "" (the calendar user sends it) removes it. What a
// client wrote there is replaced: the server names who actually sent
// the message.
func setSentBy(msg *ical.Calendar, method, from, by string) {
	name := ical.PropOrganizer
	if method == methodReply {
		name = ical.PropAttendee
	}
	for _, c := range scheduledComponents(msg) {
		props := c.Props[name]
		for i := range props {
			if addrKey(props[i].Value) != addrKey(from) {
				continue
			}
			switch {
			case by != "" && props[i].Params == nil:
				props[i].Params = ical.Params{paramSentBy: {"mailto:" + by}}
			case by != "":
				props[i].Params.Set(paramSentBy, "mailto:"+by)
			case props[i].Params != nil:
				props[i].Params.Del(paramSentBy)
			}
		}
	}
}

// scheduleStatus is the code part of a request status ("1.2;Delivered" ->
// "1.2"), the value of SCHEDULE-STATUS (RFC 6638 §7.3).
func scheduleStatus(s string) string {
	code, _, _ := strings.Cut(s, ";")
	return code
}

// send delivers one iTIP message from the calendar user from to the
// calendar user to, locally or through Options.IMIP, and returns the
// request status, for a resource that answered at once its PARTSTAT, and
// for a local recipient its calendar user type.
func (h *Handler) send(ic itipCtx, from, to, method string, cal *ical.Calendar) (status, partstat, cuType string) {
	msg, err := itipMessage(cal, method)
	if err != nil {
		ic.rq.log.Error("building an iTIP message", "err", err)
		return statusUnavailable, "", ""
	}
	sentBy := ""
	if !isOwnAddress(ic.rq.user, from) {
		sentBy = ic.rq.user.Address
	}
	setSentBy(msg, method, from, sentBy)
	cu, err := h.lookupCalendarUser(ic.ctx, to)
	switch {
	case errors.Is(err, errNotCalendarUser):
		return statusInvalidUser, "", ""
	case errors.Is(err, errRemoteUser):
		return h.sendRemote(ic, from, to, method, msg), "", ""
	case err != nil:
		ic.rq.log.Error("scheduling recipient lookup", "recipient", to, "err", err)
		return statusUnavailable, "", ""
	case cu.tenant != ic.user.Tenant:
		return h.sendRemote(ic, from, to, method, msg), "", ""
	}
	partstat, err = h.deliverLocal(ic, cu, method, msg)
	if errors.Is(err, errOtherOrganizer) {
		return statusNoAuthority, "", ""
	}
	if err != nil {
		ic.rq.log.Error("scheduling delivery", "recipient", to, "method", method, "err", err)
		return statusUnavailable, "", ""
	}
	return statusDelivered, partstat, cu.cuType
}

// sendRemote hands a message for a calendar user of another domain or
// tenant to Options.IMIP.
func (h *Handler) sendRemote(ic itipCtx, from, to, method string, msg *ical.Calendar) string {
	if h.opts.IMIP == nil {
		return statusNoSupport
	}
	if err := h.opts.IMIP.Send(ic.ctx, mailtoAddress(from), []string{mailtoAddress(to)}, method, msg); err != nil {
		ic.rq.log.Warn("iMIP hand-off failed", "recipient", to, "method", method, "err", err)
		return statusUnavailable
	}
	return "1.1;Sent"
}

// deliverLocal puts a message into a local calendar user's inbox and
// applies it to their calendar (RFC 6638 §4): a REQUEST creates or
// updates their copy, a CANCEL marks it cancelled, a REPLY updates the
// organizer's copy. A resource answers a REQUEST at once (resource.go).
func (h *Handler) deliverLocal(ic itipCtx, cu calUser, method string, msg *ical.Calendar) (string, error) {
	def, inbox, err := h.ensureCalendarHome(ic.ctx, cu.account)
	if err != nil {
		return "", err
	}
	if err := h.checkOrganizer(ic.ctx, cu.account, msg); err != nil {
		return "", err
	}
	partstat := ""
	switch method {
	case methodRequest:
		if cu.resource != nil {
			if partstat, err = h.resourceDecision(ic.ctx, cu, msg); err != nil {
				return "", err
			}
			setAttendeeParam(msg, addrKey("mailto:"+cu.address), ical.ParamParticipationStatus, partstat)
		}
		err = h.applyRequest(ic.ctx, cu, def, msg, partstat == "DECLINED")
		if err == nil && partstat == "NEEDS-ACTION" {
			h.notifyApprovers(ic, cu, method, msg)
		}
	case methodCancel:
		err = h.applyCancel(ic.ctx, cu, msg)
		if errors.Is(err, errStale) {
			return "", nil // obsolete: neither the copy nor the inbox changes
		}
		if err == nil && cu.resource != nil && cu.resource.Policy == directory.ResourcePolicyManual {
			h.notifyApprovers(ic, cu, method, msg)
		}
	case methodReply:
		err = h.applyReply(ic.ctx, cu, msg)
	}
	if err != nil {
		return "", err
	}
	return partstat, h.putInbox(ic.ctx, inbox, msg)
}

// errOtherOrganizer: a message about a UID whose copy at the recipient
// has another ORGANIZER (RFC 6638 §3.2.4.1 style: the UID is not the
// sender's to change).
var errOtherOrganizer = errors.New("dav: the recipient's object of this UID has another organizer")

// checkOrganizer refuses a message whose UID the recipient already holds
// with a different ORGANIZER, so that nobody can overwrite or cancel
// another organizer's event (or booking) by reusing its UID.
func (h *Handler) checkOrganizer(ctx context.Context, account string, msg *ical.Calendar) error {
	uid, _ := messageUID(msg)
	_, old, found, err := h.findByUID(ctx, account, uid)
	if err != nil || !found {
		return err
	}
	oldCal, err := ical.NewDecoder(strings.NewReader(string(old.Data))).Decode()
	if err != nil {
		return err
	}
	a, b := organizerOf(oldCal), organizerOf(msg)
	if a == nil || b == nil || addrKey(a.Value) != addrKey(b.Value) {
		return errOtherOrganizer
	}
	return nil
}

// putInbox stores a scheduling message in an inbox, replacing an earlier
// one of the same UID. A full inbox keeps its messages; the calendar
// copy was delivered anyway.
func (h *Handler) putInbox(ctx context.Context, inbox store.Collection, msg *ical.Calendar) error {
	data, err := encodeCalendar(msg)
	if err != nil {
		return err
	}
	uid, comp := messageUID(msg)
	name := messageName()
	if old, err := h.opts.Store.ObjectByUID(ctx, inbox.ID, uid); err == nil {
		name = old.Name
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	} else if inbox.SyncToken >= uint64(h.opts.Limits.MaxObjectsPerCollection) {
		objs, err := h.opts.Store.ListObjects(ctx, inbox.ID)
		if err != nil || len(objs) >= h.opts.Limits.MaxObjectsPerCollection {
			return err
		}
	}
	o := store.Object{Name: name, UID: uid, ContentType: typeCalendar + "; charset=utf-8", Data: data, Component: comp}
	_, err = h.opts.Store.PutObject(ctx, inbox.ID, o, store.PutOptions{})
	return err
}

// messageUID is the UID and main component of a message.
func messageUID(cal *ical.Calendar) (uid, comp string) {
	for _, c := range scheduledComponents(cal) {
		if p := c.Props.Get(ical.PropUID); p != nil {
			return p.Value, c.Name
		}
	}
	return "", ""
}

// findByUID finds an account's copy of an object by UID in its
// calendars (not the inbox).
func (h *Handler) findByUID(ctx context.Context, account, uid string) (store.Collection, store.Object, bool, error) {
	colls, err := h.opts.Store.ListCollections(ctx, account, store.KindCalendar)
	if err != nil {
		return store.Collection{}, store.Object{}, false, err
	}
	for _, c := range colls {
		if c.Name == inboxName {
			continue
		}
		obj, err := h.opts.Store.ObjectByUID(ctx, c.ID, uid)
		if err == nil {
			return c, obj, true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return c, obj, false, err
		}
	}
	return store.Collection{}, store.Object{}, false, nil
}

// storeCopy validates and stores a calendar copy under a name with the
// store's conditions (If-Match, If-None-Match: *).
func (h *Handler) storeCopy(ctx context.Context, c store.Collection, name string, cal *ical.Calendar, opts store.PutOptions) error {
	data, err := encodeCalendar(withoutMethod(cal))
	if err != nil {
		return err
	}
	p, err := h.validate(data, true, c)
	if err != nil {
		return err
	}
	o := store.Object{Name: name, UID: p.uid, ContentType: p.mediaType, Data: data, Component: p.component, Start: p.start, End: p.end}
	_, err = h.opts.Store.PutObject(ctx, c.ID, o, opts)
	return err
}

// copyName is the resource name of a delivered copy: the UID when it is
// a plain name, else a fresh one.
func copyName(uid string) string {
	for _, r := range uid {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r)) {
			return messageName()
		}
	}
	if uid == "" || len(uid) > 200 || strings.HasPrefix(uid, ".") {
		return messageName()
	}
	return uid + ".ics"
}

// applyRequest creates or updates the attendee's copy. An attendee's own
// PARTSTAT survives an update that keeps the SEQUENCE (RFC 5546 §2.1.5:
// only a new sequence asks again). A declined resource booking is not
// stored, and an earlier copy is removed.
func (h *Handler) applyRequest(ctx context.Context, cu calUser, def store.Collection, msg *ical.Calendar, declined bool) error {
	cpy, err := cloneCalendar(msg)
	if err != nil {
		return err
	}
	uid, _ := messageUID(cpy)
	c, old, found, err := h.findByUID(ctx, cu.account, uid)
	if err != nil {
		return err
	}
	if declined {
		if found {
			return h.opts.Store.DeleteObject(ctx, c.ID, old.Name, "")
		}
		return nil
	}
	if found {
		keepPartStat(cpy, old.Data, addrKey("mailto:"+cu.address))
		return h.storeCopy(ctx, c, old.Name, cpy, store.PutOptions{IfMatch: old.ETag})
	}
	// A new copy never replaces an unrelated object that has the name.
	err = h.storeCopy(ctx, def, copyName(uid), cpy, store.PutOptions{IfNoneMatch: true})
	if errors.Is(err, store.ErrPreconditionFailed) {
		err = h.storeCopy(ctx, def, messageName(), cpy, store.PutOptions{IfNoneMatch: true})
	}
	return err
}

// keepPartStat carries an attendee's PARTSTAT from their old copy into a
// new one of the same SEQUENCE.
func keepPartStat(cpy *ical.Calendar, oldData []byte, key string) {
	old, err := ical.NewDecoder(strings.NewReader(string(oldData))).Decode()
	if err != nil {
		return
	}
	oldComps := map[string]*ical.Component{}
	for _, c := range scheduledComponents(old) {
		oldComps[componentKey(c)] = c
	}
	for _, c := range scheduledComponents(cpy) {
		oc := oldComps[componentKey(c)]
		if oc == nil || sequenceOf(oc) != sequenceOf(c) {
			continue
		}
		if ps := partStat(oc, key); ps != "" {
			atts := c.Props[ical.PropAttendee]
			for i := range atts {
				if addrKey(atts[i].Value) == key {
					atts[i].Params.Set(ical.ParamParticipationStatus, ps)
				}
			}
		}
	}
}

// applyCancel marks the attendee's copy cancelled (RFC 5546 §3.2.5):
// the whole object, or with a CANCEL naming RECURRENCE-IDs only those
// instances (itip_order.go). A CANCEL older than the copy (a lower
// SEQUENCE, RFC 5546 §2.1.5) changes nothing (errStale).
func (h *Handler) applyCancel(ctx context.Context, cu calUser, msg *ical.Calendar) error {
	uid, _ := messageUID(msg)
	c, old, found, err := h.findByUID(ctx, cu.account, uid)
	if err != nil || !found {
		return err
	}
	oldCal, err := ical.NewDecoder(strings.NewReader(string(old.Data))).Decode()
	if err != nil {
		return err
	}
	cpy, err := cloneCalendar(msg)
	if err != nil {
		return err
	}
	current := currentComponents(oldCal, cpy)
	if len(current) == 0 {
		return errStale
	}
	if instancesOnly(cpy) && hasMaster(oldCal) {
		cancelInstances(oldCal, current)
		return h.storeCopy(ctx, c, old.Name, oldCal, store.PutOptions{IfMatch: old.ETag})
	}
	if cu.resource != nil {
		// A resource keeps no cancelled bookings: the time is free again.
		return h.opts.Store.DeleteObject(ctx, c.ID, old.Name, "")
	}
	for _, comp := range scheduledComponents(cpy) {
		comp.Props.SetText(ical.PropStatus, "CANCELLED") // RFC 5546 §3.2.5
	}
	return h.storeCopy(ctx, c, old.Name, cpy, store.PutOptions{IfMatch: old.ETag})
}

// errStale: a REPLY older than the organizer's copy.
var errStale = errors.New("dav: stale reply")

// applyReply records a replying attendee's PARTSTAT in the organizer's
// copy (RFC 5546 §3.2.3) for each component the reply names whose
// SEQUENCE is not older than the organizer's. A concurrent change is
// retried.
func (h *Handler) applyReply(ctx context.Context, cu calUser, msg *ical.Calendar) error {
	uid, _ := messageUID(msg)
	for range 3 {
		c, old, found, err := h.findByUID(ctx, cu.account, uid)
		if err != nil || !found {
			return err
		}
		orgCal, err := ical.NewDecoder(strings.NewReader(string(old.Data))).Decode()
		if err != nil {
			return err
		}
		if !mergeReply(orgCal, msg) {
			return nil
		}
		err = h.storeCopy(ctx, c, old.Name, orgCal, store.PutOptions{IfMatch: old.ETag})
		if !errors.Is(err, store.ErrPreconditionFailed) {
			return err
		}
	}
	return errStale
}

// mergeReply copies the PARTSTAT of the reply's attendees into the
// organizer's components of the same RECURRENCE-ID (the master when the
// reply names an instance the organizer has no override for). It
// reports whether anything changed.
func mergeReply(orgCal, reply *ical.Calendar) bool {
	orgComps := map[string]*ical.Component{}
	for _, c := range scheduledComponents(orgCal) {
		orgComps[componentKey(c)] = c
	}
	changed := false
	for _, rc := range scheduledComponents(reply) {
		oc := orgComps[componentKey(rc)]
		if oc == nil {
			oc = orgComps[""]
		}
		if oc == nil || sequenceOf(rc) < sequenceOf(oc) {
			continue
		}
		stamp := dtstampOf(rc)
		for _, ra := range rc.Props[ical.PropAttendee] {
			ps := strings.ToUpper(ra.Params.Get(ical.ParamParticipationStatus))
			if ps == "" {
				continue
			}
			atts := oc.Props[ical.PropAttendee]
			for i := range atts {
				if addrKey(atts[i].Value) != addrKey(ra.Value) || olderReply(atts[i], stamp) {
					continue // RFC 5546 §2.1.5: a later reply was applied
				}
				if !strings.EqualFold(atts[i].Params.Get(ical.ParamParticipationStatus), ps) {
					atts[i].Params.Set(ical.ParamParticipationStatus, ps)
					changed = true
				}
				if stamp != "" && atts[i].Params.Get(paramReplyStamp) != stamp {
					atts[i].Params.Set(paramReplyStamp, stamp)
					changed = true
				}
			}
		}
	}
	return changed
}

// attendeeReply sends a REPLY to the organizer when the user, an
// attendee, changed their PARTSTAT in any component (or, with
// force, replies force for all of them).
func (h *Handler) attendeeReply(ic itipCtx, cal, prevCal *ical.Calendar, force string) {
	org := organizerOf(cal)
	keys, props := attendeeSet(cal)
	me := ""
	for _, k := range keys {
		if p := props[k]; isOwnAddress(ic.user, p.Value) {
			me = k
			if clientScheduled(&p) {
				return
			}
			break
		}
	}
	if me == "" && force == "" {
		h.approverReplies(ic, cal, prevCal)
		return
	}
	if me == "" || (force == "" && !partStatChanged(cal, prevCal, me)) {
		return
	}
	reply, err := replyMessage(cal, me, force)
	if err != nil {
		ic.rq.log.Error("building a REPLY", "err", err)
		return
	}
	h.send(ic, props[me].Value, org.Value, methodReply, reply)
}

// partStatChanged reports whether an attendee's PARTSTAT differs from
// the previous version in any component (a new object counts as a
// change unless it still needs action).
func partStatChanged(cal, prevCal *ical.Calendar, key string) bool {
	prev := map[string]string{}
	if prevCal != nil {
		for _, c := range scheduledComponents(prevCal) {
			prev[componentKey(c)] = partStat(c, key)
		}
	}
	for _, c := range scheduledComponents(cal) {
		now := partStat(c, key)
		before, ok := prev[componentKey(c)]
		if !ok {
			before = "NEEDS-ACTION"
		}
		if now != "" && now != before {
			return true
		}
	}
	return false
}

// replyMessage is the REPLY of one attendee (RFC 5546 §3.2.3): the
// object with only that attendee's ATTENDEE, PARTSTAT forced if asked,
// stamped now (itip_order.go).
func replyMessage(cal *ical.Calendar, key, force string) (*ical.Calendar, error) {
	msg, err := itipMessage(cal, methodReply)
	if err != nil {
		return nil, err
	}
	stampNow(msg, time.Now())
	for _, c := range scheduledComponents(msg) {
		var keep []ical.Prop
		for _, a := range c.Props[ical.PropAttendee] {
			if addrKey(a.Value) == key {
				if force != "" {
					a.Params.Set(ical.ParamParticipationStatus, force)
				}
				keep = append(keep, a)
			}
		}
		c.Props[ical.PropAttendee] = keep
	}
	return msg, nil
}

// rewriteScheduled runs implicit scheduling after a PUT stored o and, if
// the organizer's copy gained SCHEDULE-STATUS or resource replies, stores
// that version unless the object changed meanwhile. It reports whether
// the stored data is no longer what the client sent.
func (h *Handler) rewriteScheduled(rq *request, c store.Collection, o, stored store.Object, prev []byte, p parsed) bool {
	if p.cal == nil {
		return false
	}
	data := h.scheduleOnPut(rq, prev, p.cal)
	if data == nil {
		return false
	}
	o.Data = data
	if _, err := h.opts.Store.PutObject(rq.ctx, c.ID, o, store.PutOptions{IfMatch: stored.ETag}); err != nil {
		if !errors.Is(err, store.ErrPreconditionFailed) {
			rq.log.Error("recording SCHEDULE-STATUS", "err", err)
		}
		return false
	}
	return true
}
