package dav

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mailyard/mailyard/store"
)

// multiget answers calendar-multiget (RFC 4791 §7.9) and
// addressbook-multiget (RFC 6352 §8.7): each href gets its object's
// properties, or 404 if there is none, or 403 if it is not an object of
// the collection's kind in the home of the request-URI that the user may
// read (their own, or one they are a calendar proxy in, delegate.go).
// A body naming more than Limits.MaxMultigetHrefs resources is refused
// with 413 before anything is read.
func (h *Handler) multiget(rq *request, body *node) error {
	if rq.t.kind != kindCalendar && rq.t.kind != kindBook && rq.t.kind != kindCalObject && rq.t.kind != kindCard {
		return &httpError{status: http.StatusForbidden, msg: "multiget applies to a calendar or an address book"}
	}
	rp, err := parseReportProps(body)
	if err != nil {
		return err
	}
	objKind := kindCalObject
	if rq.t.collKind() == store.KindAddressBook {
		objKind = kindCard
	}
	// Each resource is answered once, however many times (and however
	// spelt) the body names it: RFC 4791 §7.9 and RFC 6352 §8.7 ask for
	// the resources, not for one response per DAV:href, and a body
	// repeating one href would otherwise make the server read and send
	// the object as often. The first spelling is the one answered.
	var hrefs []string
	type hrefKey struct {
		t   target
		raw string // an href that names no target
	}
	seen := map[hrefKey]bool{}
	for _, c := range body.Children {
		if !c.is(nsDAV, "href") {
			continue
		}
		key := hrefKey{raw: c.Text}
		if t, err := h.hrefTarget(c.Text); err == nil {
			key = hrefKey{t: t}
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		if len(hrefs) == h.opts.Limits.MaxMultigetHrefs {
			return &httpError{status: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("a multiget may name at most %d resources; ask for the rest in another", h.opts.Limits.MaxMultigetHrefs)}
		}
		hrefs = append(hrefs, c.Text)
	}
	if _, err := h.collection(rq, rq.t); err != nil {
		return err
	}
	ms := newMultistatus(rq.w)
	colls := map[string]*store.Collection{}
	for _, ref := range hrefs {
		if err := h.multigetOne(rq, ms, ref, objKind, rp, colls); err != nil {
			if errors.Is(err, errInstanceLimit) {
				return h.endQuery(rq, ms, err)
			}
			rq.log.Error("multiget stopped", "err", err)
			return nil
		}
	}
	_ = ms.close()
	return nil
}

func (h *Handler) multigetOne(rq *request, ms *multistatus, ref string, objKind kind, rp reportProps, colls map[string]*store.Collection) error {
	t, err := h.hrefTarget(ref)
	if err != nil || t.kind != objKind || t.user != rq.t.user {
		return ms.status(ref, http.StatusForbidden, nil)
	}
	if h.isGAL(t) {
		gal := h.galCollection(rq)
		o, err := h.galObject(rq, t.name)
		if he := asHTTPError(err); he != nil && he.status == http.StatusNotFound {
			return ms.status(ref, http.StatusNotFound, nil)
		}
		if err != nil {
			return err
		}
		return h.objectResponse(rq, ms, &resource{t: t, coll: &gal, obj: &o}, rp, nil)
	}
	c, ok := colls[t.coll]
	if !ok {
		cc, err := h.collection(rq, t)
		if he := asHTTPError(err); he != nil && he.status == http.StatusForbidden {
			return ms.status(ref, http.StatusForbidden, nil) // a calendar no delegation reaches
		} else if he != nil && he.status == http.StatusNotFound {
			err = store.ErrNotFound
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil {
			c = &cc
		}
		colls[t.coll] = c
	}
	if c == nil {
		return ms.status(ref, http.StatusNotFound, nil)
	}
	o, err := h.opts.Store.GetObject(rq.ctx, c.ID, t.name)
	if errors.Is(err, store.ErrNotFound) {
		return ms.status(ref, http.StatusNotFound, nil)
	}
	if err != nil {
		return err
	}
	return h.objectResponse(rq, ms, &resource{t: t, coll: c, obj: &o}, rp, nil)
}
