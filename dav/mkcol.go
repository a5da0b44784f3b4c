package dav

import (
	"errors"
	"net/http"

	"github.com/mailyard/mailyard/store"
)

// mkcalendar answers MKCALENDAR (RFC 4791 §5.3.1): a calendar with the
// properties of an optional C:mkcalendar body.
func (h *Handler) mkcalendar(rq *request) error {
	if rq.t.kind != kindCalendar {
		return precondition(http.StatusForbidden, nsCalDAV, "calendar-collection-location-ok", "calendars are made in the calendar home")
	}
	body, err := h.readXML(rq.w, rq.r)
	if err != nil {
		return err
	}
	var set []*node
	if body != nil {
		if !body.is(nsCalDAV, "mkcalendar") {
			return &httpError{status: http.StatusBadRequest, msg: "MKCALENDAR body must be CALDAV:mkcalendar"}
		}
		set = body.Children
	}
	return h.makeCollection(rq, set, el(nsCalDAV, "mkcalendar-response"))
}

// mkcol answers MKCOL (RFC 4918 §9.3) and extended MKCOL (RFC 5689 §3):
// in the calendar home it makes a calendar, in the address-book home an
// address book (RFC 6352 §6.3.1); the homes hold nothing else. An
// extended MKCOL's DAV:resourcetype must name the home's kind.
func (h *Handler) mkcol(rq *request) error {
	if rq.t.kind != kindCalendar && rq.t.kind != kindBook {
		return &httpError{status: http.StatusForbidden, msg: "collections are made in the calendar and address-book homes"}
	}
	body, err := h.readXML(rq.w, rq.r)
	if err != nil {
		return err
	}
	var set []*node
	if body != nil {
		if !body.is(nsDAV, "mkcol") {
			return &httpError{status: http.StatusUnsupportedMediaType, msg: "MKCOL body must be DAV:mkcol (RFC 5689)"}
		}
		set = body.Children
		if !validResourceType(rq.t, parseUpdates(set)) {
			return precondition(http.StatusForbidden, nsDAV, "valid-resourcetype", "resourcetype does not fit this home")
		}
	}
	return h.makeCollection(rq, set, el(nsDAV, "mkcol-response"))
}

// validResourceType checks the resourcetype an extended MKCOL asks for:
// a collection of the home's kind, and nothing else.
func validResourceType(t target, updates []propUpdate) bool {
	for _, u := range updates {
		if !u.prop.is(nsDAV, "resourcetype") {
			continue
		}
		want := resourceType(t.kind)
		if len(u.prop.Children) != len(want) {
			return false
		}
		for _, c := range u.prop.Children {
			if !c.is(want[0].Name.Space, want[0].Name.Local) && !c.is(want[1].Name.Space, want[1].Name.Local) {
				return false
			}
		}
	}
	return true
}

// makeCollection creates the target collection with the set
// instructions applied, all or nothing: if one property cannot be set
// nothing is created and the answer is 403 with a response element
// holding each property's status (RFC 5689 §3, RFC 4791 §5.3.1).
func (h *Handler) makeCollection(rq *request, set []*node, respName *node) error {
	if reservedName(rq.t.coll) {
		return precondition(http.StatusForbidden, nsDAV, "resource-must-be-null", "the name "+rq.t.coll+" is reserved")
	}
	c := store.Collection{Account: rq.user.ID, Kind: rq.t.collKind(), Name: rq.t.coll}
	if c.Kind == store.KindCalendar {
		c.Components = []string{"VEVENT", "VTODO"}
	}
	updates := parseUpdates(set)
	var cp *collProps
	if _, err := h.records(); err == nil {
		cp = &collProps{}
	}
	statuses, ok := h.applyUpdates(rq.t.kind, &c, cp, updates, true)
	if !ok {
		for _, ps := range propstats(updates, statuses) {
			respName.Children = append(respName.Children,
				el(nsDAV, "propstat", el(nsDAV, "prop", ps.props...), statusEl(ps.status)))
		}
		_ = writeXML(rq.w, http.StatusForbidden, respName)
		return nil
	}
	have, err := h.opts.Store.ListCollections(rq.ctx, rq.user.ID, c.Kind)
	if err != nil {
		return err
	}
	for _, hc := range have {
		if hc.Name == c.Name {
			// RFC 4918 §9.3.1: MKCOL on an existing resource.
			return &httpError{status: http.StatusMethodNotAllowed, msg: "the collection exists", cond: el(nsDAV, "resource-must-be-null")}
		}
	}
	if len(have) >= h.opts.Limits.MaxCollections {
		// RFC 4918 §9.3.1: 507, the server cannot store the collection
		// for this account.
		return &httpError{status: http.StatusInsufficientStorage, msg: "too many collections"}
	}
	if _, err := h.opts.Store.CreateCollection(rq.ctx, c); err != nil {
		if errors.Is(err, store.ErrExists) {
			return &httpError{status: http.StatusMethodNotAllowed, msg: "the collection exists", cond: el(nsDAV, "resource-must-be-null")}
		}
		if errors.Is(err, store.ErrInvalid) {
			return &httpError{status: http.StatusForbidden, msg: "invalid collection name"}
		}
		return err
	}
	if cp != nil {
		// Written over any record a deleted namesake left behind.
		recs, _ := h.records()
		if err := recs.UpdateRecords(rq.ctx, func(tx store.RecordTx) error { return putCollProps(tx, c, cp) }); err != nil {
			return err
		}
	}
	rq.w.Header().Set("Location", h.hrefOf(rq.t))
	rq.w.WriteHeader(http.StatusCreated)
	return nil
}

// deleteCollection answers DELETE of a calendar or address book.
func (h *Handler) deleteCollection(rq *request) error {
	if readOnly(rq.t) {
		return needPrivileges(h.hrefOf(rq.t), "unbind")
	}
	if err := refuseInboxWrite(rq.t); err != nil {
		return err
	}
	err := h.opts.Store.DeleteCollection(rq.ctx, rq.user.ID, rq.t.collKind(), rq.t.coll)
	if errors.Is(err, store.ErrNotFound) {
		return &httpError{status: http.StatusNotFound, msg: "no such collection"}
	}
	if err != nil {
		return err
	}
	if err := h.dropGrants(rq.ctx, rq.user, rq.t.collKind(), rq.t.coll); err != nil {
		return err
	}
	if err := h.dropCollProps(rq.ctx, store.Collection{Account: rq.user.ID, Kind: rq.t.collKind(), Name: rq.t.coll}); err != nil {
		return err
	}
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}
