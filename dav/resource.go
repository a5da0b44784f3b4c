package dav

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/emersion/go-ical"
	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

// resourceHorizon bounds the conflict check of a booking that recurs
// without end: its instances in this span after its start are checked.
const resourceHorizon = 2 * 365 * 24 * time.Hour

// resourceDecision answers an invitation of a room or equipment at once
// (issue 14 item 7): DECLINED when any instance of the booking overlaps
// busy time of another object in the resource's calendars (checked
// through the store's time-range index) or the booking has more
// instances than Limits.MaxInstances; otherwise ACCEPTED under the
// default "auto" policy, NEEDS-ACTION (held until an approver answers)
// under the "manual" one.
func (h *Handler) resourceDecision(ctx context.Context, cu calUser, msg *ical.Calendar) (string, error) {
	cpy, err := cloneCalendar(msg)
	if err != nil {
		return "", err
	}
	data, err := encodeCalendar(withoutMethod(cpy))
	if err != nil {
		return "", err
	}
	obj, err := calendar.Parse(data, calendar.Limits{MaxSize: len(data) + 1, MaxAttendees: h.opts.Limits.MaxAttendees})
	if err != nil {
		return "DECLINED", nil
	}
	from, to := obj.Bounds()
	if to.IsZero() {
		to = from.Add(resourceHorizon)
	}
	if from.IsZero() {
		from = to.Add(-resourceHorizon)
	}
	want, err := obj.InZone(h.opts.FloatingLocation).Busy(from, to, h.opts.Limits.MaxInstances)
	if errors.Is(err, calendar.ErrTooManyInstances) {
		return "DECLINED", nil
	}
	if err != nil {
		return "", err
	}
	if len(want) > 0 {
		busy, err := h.busyExcept(ctx, cu.account, obj.UID(), want[0].Start, want[len(want)-1].End)
		if err != nil {
			return "", err
		}
		if overlaps(oneType(want), busy) {
			return "DECLINED", nil
		}
	}
	if cu.resource.Policy == directory.ResourcePolicyManual {
		// An approver answers (approverReplies); an answer already given
		// holds while the SEQUENCE stays (RFC 5546 §2.1.5).
		return h.heldAnswer(ctx, cu, obj.UID(), msg)
	}
	return "ACCEPTED", nil
}

// notifyApprovers gives each approver of a manual resource the booking
// (method REQUEST) or its cancellation in their inbox and calendar. The
// calendar copy is TRANSP:TRANSPARENT, so that bookings an approver
// answers for do not make the approver busy. Failures are logged: the
// booking itself stands.
func (h *Handler) notifyApprovers(ic itipCtx, cu calUser, method string, msg *ical.Calendar) {
	for _, id := range cu.resource.Approvers {
		if err := h.notifyApprover(ic.ctx, cu, id, method, msg); err != nil {
			ic.rq.log.Error("notifying a resource approver", "resource", cu.address, "approver", id, "err", err)
		}
	}
}

func (h *Handler) notifyApprover(ctx context.Context, res calUser, approverID, method string, msg *ical.Calendar) error {
	def, inbox, err := h.ensureCalendarHome(ctx, approverID)
	if err != nil {
		return err
	}
	cpy, err := cloneCalendar(msg)
	if err != nil {
		return err
	}
	for _, c := range scheduledComponents(cpy) {
		c.Props.SetText(ical.PropTransparency, "TRANSPARENT")
	}
	// The approver's copy is keyed by the resource's address, whose
	// PARTSTAT the approver sets.
	as := calUser{account: approverID, address: res.address}
	if method == methodCancel {
		err = h.applyCancel(ctx, as, cpy)
	} else {
		err = h.applyRequest(ctx, as, def, cpy, false)
	}
	if err != nil {
		return err
	}
	return h.putInbox(ctx, inbox, msg)
}

// approverReplies answers, on behalf of manual resources the user
// approves for, the bookings whose resource PARTSTAT the user changed in
// their copy: a REPLY to the organizer from the resource's address, and
// the resource's own calendar updated (a declined booking removed).
func (h *Handler) approverReplies(ic itipCtx, cal, prevCal *ical.Calendar) {
	org := organizerOf(cal)
	keys, props := attendeeSet(cal)
	for _, k := range keys {
		if !partStatChanged(cal, prevCal, k) {
			continue
		}
		cu, err := h.lookupCalendarUser(ic.ctx, props[k].Value)
		if err != nil || cu.resource == nil || cu.resource.Policy != directory.ResourcePolicyManual ||
			cu.tenant != ic.user.Tenant || !slices.Contains(cu.resource.Approvers, ic.user.ID) {
			continue
		}
		reply, err := replyMessage(cal, k, "")
		if err != nil {
			ic.rq.log.Error("building a REPLY", "err", err)
			continue
		}
		h.send(ic, props[k].Value, org.Value, methodReply, reply)
		if err := h.applyResourceAnswer(ic.ctx, cu, reply, partStat(scheduledComponents(cal)[0], k)); err != nil {
			ic.rq.log.Error("recording an approver's answer", "resource", cu.address, "err", err)
		}
	}
}

// applyResourceAnswer records an approver's answer in the resource's
// calendar: DECLINED frees the time, anything else updates PARTSTAT.
func (h *Handler) applyResourceAnswer(ctx context.Context, cu calUser, reply *ical.Calendar, partstat string) error {
	if partstat != "DECLINED" {
		return h.applyReply(ctx, cu, reply)
	}
	uid, _ := messageUID(reply)
	c, old, found, err := h.findByUID(ctx, cu.account, uid)
	if err != nil || !found {
		return err
	}
	return h.opts.Store.DeleteObject(ctx, c.ID, old.Name, "")
}

// busyExcept is an account's merged busy time in [from, to) over its
// calendars, leaving out the object with the given UID (the booking being
// decided, when it is updated).
func (h *Handler) busyExcept(ctx context.Context, account, uid string, from, to time.Time) ([]calendar.Period, error) {
	colls, err := h.opts.Store.ListCollections(ctx, account, store.KindCalendar)
	if err != nil {
		return nil, err
	}
	q := FreeBusyQuery{From: from, To: to, MaxInstances: h.opts.Limits.MaxInstances, FloatingLocation: h.opts.FloatingLocation,
		zones: h.zones, parsed: h.parsed, skipUID: uid, calZones: newCalendarZones(h.opts.Store)}
	var periods []calendar.Period
	for _, c := range colls {
		if c.Name == inboxName {
			continue
		}
		p, err := collectionBusy(ctx, h.opts.Store, &c, q)
		if err != nil {
			return nil, err
		}
		periods = append(periods, p...)
	}
	return oneType(periods), nil
}

// overlaps reports whether any period of a overlaps any of b; both are
// sorted by start.
func overlaps(a, b []calendar.Period) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i].Start.Before(b[j].End) && b[j].Start.Before(a[i].End) {
			return true
		}
		if a[i].End.Before(b[j].End) {
			i++
		} else {
			j++
		}
	}
	return false
}

// oneType merges periods regardless of their free/busy type, so that
// the result is sorted and disjoint.
func oneType(p []calendar.Period) []calendar.Period {
	out := make([]calendar.Period, len(p))
	for i := range p {
		out[i] = calendar.Period{Start: p[i].Start, End: p[i].End, Type: calendar.Busy}
	}
	return calendar.MergeBusy(out)
}

// heldAnswer is the PARTSTAT a manual resource's copy of a booking
// already has when the booking's SEQUENCE did not change, else
// NEEDS-ACTION.
func (h *Handler) heldAnswer(ctx context.Context, cu calUser, uid string, msg *ical.Calendar) (string, error) {
	_, old, found, err := h.findByUID(ctx, cu.account, uid)
	if err != nil || !found {
		return "NEEDS-ACTION", err
	}
	oldCal, err := ical.NewDecoder(bytes.NewReader(old.Data)).Decode()
	if err != nil {
		return "NEEDS-ACTION", nil
	}
	oc, nc := scheduledComponents(oldCal), scheduledComponents(msg)
	if len(oc) == 0 || len(nc) == 0 || sequenceOf(oc[0]) != sequenceOf(nc[0]) {
		return "NEEDS-ACTION", nil
	}
	if ps := partStat(oc[0], addrKey("mailto:"+cu.address)); ps != "" {
		return ps, nil
	}
	return "NEEDS-ACTION", nil
}
