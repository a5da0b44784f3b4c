package dav

import (
	"bytes"
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
	return writeXML(rq.w, http.StatusOK, h.freeBusyResponse(rq, req))
}

// parseFreeBusyRequest validates a POSTed scheduling message (RFC 6638
// §5.1 preconditions): iCalendar data with METHOD:REQUEST and one
// VFREEBUSY with DTSTART before DTEND, the user's own ORGANIZER (the
// owner's in an outbox the user is a write proxy of) and at
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
	if !isOwnAddress(h.scheduler(rq), org.Value) {
		// A write proxy posts to the owner's outbox as the owner
		// (delegate.go).
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

// fbAnswer is one recipient's part of a schedule-response: a
// request-status and, on success, its busy periods.
type fbAnswer struct {
	status  string
	account string // local calendar user, "" otherwise
	remote  bool   // asked of Options.RemoteFreeBusy
	busy    []BusyPeriod
}

// freeBusyResponse is the schedule-response (RFC 6638 §10.2) to a
// free/busy request: each recipient's request-status and, on success,
// its VFREEBUSY REPLY. The recipients are looked up first (in one call
// when the directory is an AddressesDirectory); then the
// local ones' busy time is one [FreeBusy] for all of them (one read of
// the store where it is a store.AccountsQuerier), and the others' one
// call of Options.RemoteFreeBusy, if set.
func (h *Handler) freeBusyResponse(rq *request, req fbRequest) *node {
	answers := make([]fbAnswer, len(req.recipients))
	var accounts, remote []string
	cus, errs := h.lookupCalendarUsers(rq.ctx, req.recipients)
	for i, r := range req.recipients {
		a := &answers[i]
		cu, err := cus[i], errs[i]
		switch {
		case (errors.Is(err, errNotCalendarUser) || errors.Is(err, errRemoteUser)) && h.opts.RemoteFreeBusy != nil && mailtoAddress(r) != "":
			a.remote = true
			remote = append(remote, mailtoAddress(r))
		case errors.Is(err, errNotCalendarUser), errors.Is(err, errRemoteUser):
			a.status = statusInvalidUser
		case err != nil:
			rq.log.Error("free/busy recipient lookup", "recipient", r, "err", err)
			a.status = statusUnavailable
		case cu.tenant != rq.user.Tenant:
			a.status = statusNoAuthority
		default:
			a.account = cu.account
			accounts = append(accounts, cu.account)
		}
	}
	q := FreeBusyQuery{Accounts: accounts, From: req.from, To: req.to,
		MaxInstances: h.opts.Limits.MaxInstances, FloatingLocation: h.opts.FloatingLocation, zones: h.zones, parsed: h.parsed}
	var local map[string][]BusyPeriod
	var localErr error
	if len(accounts) > 0 {
		local, localErr = FreeBusy(rq.ctx, h.opts.Store, q)
		if localErr != nil {
			rq.log.Error("free/busy of the recipients", "err", localErr)
		}
	}
	var far map[string][]BusyPeriod
	var farErr error
	if len(remote) > 0 {
		far, farErr = h.opts.RemoteFreeBusy(rq.ctx, remote, req.from, req.to)
		if farErr != nil {
			rq.log.Warn("remote free/busy", "recipients", remote, "err", farErr)
		}
	}
	resp := el(nsCalDAV, "schedule-response")
	for i, r := range req.recipients {
		a := &answers[i]
		switch {
		case a.account != "" && localErr != nil:
			a.status = statusUnavailable
		case a.account != "":
			a.status, a.busy = statusSuccess, local[a.account]
		case a.remote:
			busy, ok := far[mailtoAddress(r)]
			switch {
			case ok:
				a.status, a.busy = statusSuccess, busy
			case farErr != nil:
				a.status = statusUnavailable
			default:
				a.status = statusInvalidUser
			}
		}
		resp.Children = append(resp.Children, h.freeBusyReply(rq, req, r, a))
	}
	return resp
}

// freeBusyReply is one recipient's CALDAV:response of a schedule-response
// (RFC 6638 §10.2): request-status and, on success, the VFREEBUSY REPLY.
func (h *Handler) freeBusyReply(rq *request, req fbRequest, recipient string, a *fbAnswer) *node {
	out := el(nsCalDAV, "response", el(nsCalDAV, "recipient", href(recipient)))
	if a.status == statusSuccess {
		cal, err := freeBusyReplyData(req, recipient, a.busy)
		if err != nil {
			rq.log.Error("free/busy reply", "recipient", recipient, "err", err)
			a.status = statusUnavailable
		} else {
			out.Children = append(out.Children, textEl(nsCalDAV, "request-status", a.status), textEl(nsCalDAV, "calendar-data", cal))
			return out
		}
	}
	out.Children = append(out.Children, textEl(nsCalDAV, "request-status", a.status))
	return out
}

// freeBusyReplyData is the encoded VFREEBUSY REPLY of one recipient over
// the requested range.
func freeBusyReplyData(req fbRequest, recipient string, busy []BusyPeriod) (string, error) {
	periods := make([]calendar.Period, len(busy))
	for i, p := range busy {
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
