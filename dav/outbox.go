package dav

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/mailyard/mailyard/internal/calendar"
)

// fbRequest is a validated free/busy request POSTed to the outbox.
type fbRequest struct {
	uid        string
	organizer  string
	recipients []string
	from, to   time.Time
}

// postOutbox answers POST to the schedule outbox (RFC 6638 §5): a
// VFREEBUSY REQUEST whose ORGANIZER is the authenticated user, answered
// with a schedule-response (§10.2) holding each recipient's VFREEBUSY
// REPLY or the reason there is none. Free/busy of users and resources of
// the same tenant is visible to every colleague; others get 3.8.
func (h *Handler) postOutbox(rq *request) error {
	if rq.t.kind != kindOutbox {
		return errMethodNotAllowed("POST applies to the schedule outbox")
	}
	if err := checkMediaType(rq.r, true); err != nil {
		return err
	}
	data, err := h.readResource(rq, true)
	if err != nil {
		return err
	}
	req, err := h.parseFreeBusyRequest(rq, data)
	if err != nil {
		return err
	}
	resp := el(nsCalDAV, "schedule-response")
	for _, r := range req.recipients {
		resp.Children = append(resp.Children, h.freeBusyReply(rq, req, r))
	}
	return writeXML(rq.w, http.StatusOK, resp)
}

// parseFreeBusyRequest validates a POSTed scheduling message (RFC 6638
// §5.1 preconditions): iCalendar data with METHOD:REQUEST and one
// VFREEBUSY with DTSTART before DTEND, the user's own ORGANIZER and at
// least one, at most Limits.MaxRecipients, ATTENDEE.
func (h *Handler) parseFreeBusyRequest(rq *request, data []byte) (fbRequest, error) {
	invalid := func(msg string) error {
		return precondition(http.StatusBadRequest, nsCalDAV, "valid-calendar-data", msg)
	}
	cal, err := ical.NewDecoder(bytes.NewReader(data)).Decode()
	if err != nil {
		return fbRequest{}, invalid("the body is no iCalendar object: " + err.Error())
	}
	var fb *ical.Component
	for _, c := range cal.Children {
		if c.Name == ical.CompFreeBusy && fb == nil {
			fb = c
		} else if c.Name != ical.CompTimezone {
			fb = nil
			break
		}
	}
	if m := cal.Props.Get(ical.PropMethod); m == nil || !strings.EqualFold(m.Value, "REQUEST") || fb == nil {
		return fbRequest{}, precondition(http.StatusForbidden, nsCalDAV, "valid-scheduling-message",
			"the outbox takes a METHOD:REQUEST with one VFREEBUSY (RFC 6638 §5)")
	}
	var req fbRequest
	if p := fb.Props.Get(ical.PropUID); p != nil {
		req.uid = p.Value
	}
	if req.from, req.to, err = freeBusyRange(fb); err != nil {
		return req, invalid(err.Error())
	}
	org := fb.Props.Get(ical.PropOrganizer)
	if org == nil {
		return req, precondition(http.StatusForbidden, nsCalDAV, "organizer-allowed", "the request has no ORGANIZER")
	}
	if !isOwnAddress(rq.user, org.Value) {
		return req, precondition(http.StatusForbidden, nsCalDAV, "organizer-allowed", "ORGANIZER is not one of your addresses")
	}
	req.organizer = org.Value
	for _, a := range fb.Props.Values(ical.PropAttendee) {
		req.recipients = append(req.recipients, a.Value)
	}
	if len(req.recipients) == 0 {
		return req, precondition(http.StatusForbidden, nsCalDAV, "recipient-specified", "the request has no ATTENDEE")
	}
	if len(req.recipients) > h.opts.Limits.MaxRecipients {
		return req, precondition(http.StatusForbidden, nsCalDAV, "recipient-permissions",
			"too many recipients in one request")
	}
	return req, nil
}

// freeBusyRange reads DTSTART and DTEND of a VFREEBUSY request.
func freeBusyRange(fb *ical.Component) (from, to time.Time, err error) {
	ps, pe := fb.Props.Get(ical.PropDateTimeStart), fb.Props.Get(ical.PropDateTimeEnd)
	if ps == nil || pe == nil {
		return from, to, errors.New("VFREEBUSY needs DTSTART and DTEND")
	}
	if from, err = ps.DateTime(time.UTC); err != nil {
		return from, to, err
	}
	if to, err = pe.DateTime(time.UTC); err != nil {
		return from, to, err
	}
	if !to.After(from) {
		return from, to, errors.New("DTEND must be after DTSTART")
	}
	return from.UTC(), to.UTC(), nil
}

// freeBusyReply is one recipient's CALDAV:response of a schedule-response
// (RFC 6638 §10.2): request-status and, on success, the VFREEBUSY REPLY.
func (h *Handler) freeBusyReply(rq *request, req fbRequest, recipient string) *node {
	out := el(nsCalDAV, "response", el(nsCalDAV, "recipient", href(recipient)))
	status := func(s string) *node {
		out.Children = append(out.Children, textEl(nsCalDAV, "request-status", s))
		return out
	}
	cu, err := h.lookupCalendarUser(rq.ctx, recipient)
	switch {
	case errors.Is(err, errNotCalendarUser), errors.Is(err, errRemoteUser):
		return status(statusInvalidUser)
	case err != nil:
		rq.log.Error("free/busy recipient lookup", "recipient", recipient, "err", err)
		return status(statusUnavailable)
	case cu.tenant != rq.user.Tenant:
		return status(statusNoAuthority)
	}
	cal, err := h.accountFreeBusy(rq.ctx, cu.account, req, recipient)
	if err != nil {
		rq.log.Error("free/busy of a recipient", "recipient", recipient, "err", err)
		return status(statusUnavailable)
	}
	status(statusSuccess)
	out.Children = append(out.Children, textEl(nsCalDAV, "calendar-data", cal))
	return out
}

// accountFreeBusy is the encoded VFREEBUSY REPLY of one account over the
// requested range, through [FreeBusy] (transparent, cancelled and
// private events respected).
func (h *Handler) accountFreeBusy(ctx context.Context, account string, req fbRequest, recipient string) (string, error) {
	busy, err := FreeBusy(ctx, h.opts.Store, FreeBusyQuery{Accounts: []string{account}, From: req.from, To: req.to,
		MaxInstances: h.opts.Limits.MaxInstances, FloatingLocation: h.opts.FloatingLocation, zones: h.zones, parsed: h.parsed})
	if err != nil {
		return "", err
	}
	periods := make([]calendar.Period, len(busy[account]))
	for i, p := range busy[account] {
		periods[i] = calendar.Period(p)
	}
	cal := calendar.FreeBusyCalendar(periods, calendar.FreeBusyInfo{From: req.from, To: req.to, Stamp: time.Now(),
		UID: req.uid, Organizer: req.organizer, Attendee: recipient})
	var b bytes.Buffer
	if err := ical.NewEncoder(&b).Encode(cal); err != nil {
		return "", err
	}
	return b.String(), nil
}
