package dav

import (
	"errors"

	"github.com/emersion/go-ical"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mailyard/mailyard/dav/internal/contact"
	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

// Media types of object resources (RFC 5545 §8.1, RFC 6350 §10.1).
const (
	typeCalendar = "text/calendar"
	typeVCard    = "text/vcard"
)

// parsed is a validated object resource ready to store.
type parsed struct {
	uid        string
	component  string
	cal        *ical.Calendar // of a calendar object
	start, end time.Time
	mediaType  string
}

// put answers PUT of a calendar object resource (RFC 4791 §5.3.2) or an
// address object resource (RFC 6352 §6.3.2): the data is validated
// before anything is stored, and a refusal names the failed
// precondition in a DAV:error body.
func (h *Handler) put(rq *request) error {
	if rq.t.kind != kindCalObject && rq.t.kind != kindCard {
		return errMethodNotAllowed("PUT creates object resources inside a calendar or an address book")
	}
	if readOnly(rq.t) {
		return needPrivileges(h.hrefOf(rq.t), "write-content")
	}
	if err := refuseInboxWrite(rq.t); err != nil {
		return err
	}
	cal := rq.t.kind == kindCalObject
	if err := checkMediaType(rq.r, cal); err != nil {
		return err
	}
	data, err := h.readResource(rq, cal)
	if err != nil {
		return err
	}
	c, err := h.collection(rq, rq.t)
	if he := asHTTPError(err); he != nil && he.status == http.StatusNotFound {
		// RFC 4918 §9.7.1: the parent collection does not exist.
		return &httpError{status: http.StatusConflict, msg: "no such collection"}
	}
	if err != nil {
		return err
	}
	p, err := h.validate(data, cal, c)
	if err != nil {
		return err
	}
	existed, prev, err := h.checkPutConditions(rq, c)
	if err != nil {
		return err
	}
	o := store.Object{Name: rq.t.name, UID: p.uid, ContentType: p.mediaType, Data: data,
		Component: p.component, Start: p.start, End: p.end}
	opts := store.PutOptions{IfNoneMatch: rq.r.Header.Get("If-None-Match") == "*"}
	if opts.IfMatch, err = ifMatchHeader(rq.r); err != nil {
		return err
	}
	stored, err := h.opts.Store.PutObject(rq.ctx, c.ID, o, opts)
	if err != nil {
		return h.putError(rq, c, p.uid, cal, err)
	}
	if cal && h.rewriteScheduled(rq, c, o, stored, prev, p) {
		// RFC 4791 §5.3.4: the stored data is not what the client sent
		// (SCHEDULE-STATUS was recorded), so no ETag is returned.
	} else {
		rq.w.Header().Set("ETag", quoteETag(stored.ETag))
	}
	if existed {
		rq.w.WriteHeader(http.StatusNoContent)
	} else {
		rq.w.Header().Set("Location", h.hrefOf(rq.t))
		rq.w.WriteHeader(http.StatusCreated)
	}
	return nil
}

// checkMediaType refuses a body that says it is something else than the
// collection holds (RFC 4791 §5.3.2.1 supported-calendar-data, RFC 6352
// §6.3.2.1 supported-address-data). A missing Content-Type is read as the
// collection's type.
func checkMediaType(r *http.Request, cal bool) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case cal && err == nil && mt == typeCalendar:
		return nil
	case !cal && err == nil && (mt == typeVCard || mt == "text/x-vcard"):
		return nil
	case cal:
		return precondition(http.StatusUnsupportedMediaType, nsCalDAV, "supported-calendar-data", "calendar objects are text/calendar")
	}
	return precondition(http.StatusUnsupportedMediaType, nsCardDAV, "supported-address-data", "address objects are text/vcard")
}

// readResource reads a PUT body of at most Limits.MaxResourceSize.
func (h *Handler) readResource(rq *request, cal bool) ([]byte, error) {
	limit := h.opts.Limits.MaxResourceSize
	tooLarge := func() error {
		if cal {
			return precondition(http.StatusForbidden, nsCalDAV, "max-resource-size", "calendar object too large")
		}
		return precondition(http.StatusForbidden, nsCardDAV, "max-resource-size", "vCard too large")
	}
	if rq.r.ContentLength > limit {
		return nil, tooLarge()
	}
	data, err := io.ReadAll(http.MaxBytesReader(serverWriter(rq.w), rq.r.Body, limit))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, tooLarge()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, bodyTimeout()
	}
	if err != nil {
		return nil, &httpError{status: http.StatusBadRequest, msg: "reading the body failed"}
	}
	return data, nil
}

// validate parses the data with the collection's semantics; nothing
// that fails here is stored.
func (h *Handler) validate(data []byte, cal bool, c store.Collection) (parsed, error) {
	lim := h.opts.Limits
	if !cal {
		card, err := contact.Parse(data, contact.Limits{MaxSize: int(lim.MaxResourceSize)})
		if pe, ok := errors.AsType[*contact.PreconditionError](err); ok {
			return parsed{}, precondition(http.StatusForbidden, nsCardDAV, pe.Name, pe.Error())
		}
		if err != nil {
			return parsed{}, precondition(http.StatusForbidden, nsCardDAV, contact.ValidAddressData, err.Error())
		}
		return parsed{uid: card.UID(), component: "VCARD", mediaType: typeVCard + "; charset=utf-8"}, nil
	}
	obj, err := calendar.Parse(data, calendar.Limits{MaxSize: int(lim.MaxResourceSize), MaxAttendees: lim.MaxAttendees})
	if pe, ok := errors.AsType[*calendar.PreconditionError](err); ok {
		return parsed{}, precondition(http.StatusForbidden, nsCalDAV, pe.Name, pe.Error())
	}
	if err != nil {
		return parsed{}, precondition(http.StatusForbidden, nsCalDAV, calendar.CondValidData, err.Error())
	}
	comp := obj.Component()
	if len(c.Components) > 0 && !slices.Contains(c.Components, comp) {
		return parsed{}, precondition(http.StatusForbidden, nsCalDAV, calendar.CondSupportedComponent,
			comp+" is not among this calendar's components "+strings.Join(c.Components, ", "))
	}
	start, end := obj.Bounds()
	return parsed{uid: obj.UID(), component: comp, start: start, end: end, cal: obj.Calendar(), mediaType: typeCalendar + "; charset=utf-8"}, nil
}

// checkPutConditions reports whether the resource exists and refuses a
// new one beyond Limits.MaxObjectsPerCollection, and an If-None-Match
// list naming the current ETag (RFC 9110 §13.1.2). The count is only
// taken when it could be over the limit: a collection's sync token
// grows with every change, so it bounds the number of objects.
func (h *Handler) checkPutConditions(rq *request, c store.Collection) (bool, []byte, error) {
	cur, err := h.opts.Store.GetObject(rq.ctx, c.ID, rq.t.name)
	existed := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, nil, err
	}
	if inm := rq.r.Header.Get("If-None-Match"); inm != "" && inm != "*" && existed && etagListMatches(inm, cur.ETag) {
		return existed, nil, &httpError{status: http.StatusPreconditionFailed, msg: "If-None-Match matches the current ETag"}
	}
	max := h.opts.Limits.MaxObjectsPerCollection
	if existed || c.SyncToken < uint64(max) {
		return existed, cur.Data, nil
	}
	objs, err := h.opts.Store.ListObjects(rq.ctx, c.ID)
	if err != nil {
		return existed, nil, err
	}
	if len(objs) >= max {
		return existed, nil, &httpError{status: http.StatusInsufficientStorage, msg: "too many objects in this collection"}
	}
	return existed, nil, nil
}

// putError maps a store refusal of PutObject.
func (h *Handler) putError(rq *request, c store.Collection, uid string, cal bool, err error) error {
	switch {
	case errors.Is(err, store.ErrPreconditionFailed):
		return &httpError{status: http.StatusPreconditionFailed, msg: "the If-Match or If-None-Match condition failed"}
	case errors.Is(err, store.ErrExists):
		// RFC 4791 §5.3.2.1, RFC 6352 §6.3.2.1 no-uid-conflict: name the
		// resource that holds the UID.
		ns := nsCardDAV
		if cal {
			ns = nsCalDAV
		}
		var children []*node
		if other, err := h.opts.Store.ObjectByUID(rq.ctx, c.ID, uid); err == nil {
			t := rq.t
			t.name = other.Name
			children = append(children, href(h.hrefOf(t)))
		}
		return precondition(http.StatusConflict, ns, "no-uid-conflict", "another resource has this UID", children...)
	case errors.Is(err, store.ErrInvalid):
		return &httpError{status: http.StatusBadRequest, msg: "invalid resource name"}
	}
	return err
}
