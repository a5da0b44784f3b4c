package dav

import (
	"errors"
	"net/http"

	"github.com/mailyard/mailyard/store"
)

// ensureDefaults creates the default calendar and address book of a user
// who has none of that kind, the first time the user looks at a home,
// the principal or the root (DAV.md). A concurrent creation is no error.
func (h *Handler) ensureDefaults(rq *request) error {
	if _, _, err := h.ensureCalendarHome(rq.ctx, rq.user.ID); err != nil {
		return err
	}
	c := store.Collection{Account: rq.user.ID, Kind: store.KindAddressBook, Name: defaultName,
		DisplayName: defaultBookDisplay}
	have, err := h.opts.Store.ListCollections(rq.ctx, rq.user.ID, c.Kind)
	if err != nil || len(have) > 0 {
		return err
	}
	if _, err := h.opts.Store.CreateCollection(rq.ctx, c); err != nil && !errors.Is(err, store.ErrExists) {
		return err
	}
	return nil
}

// collection loads the collection a target names; 404 if there is none.
func (h *Handler) collection(rq *request, t target) (store.Collection, error) {
	if h.isGAL(t) {
		return h.galCollection(rq), nil
	}
	if t.user != rq.user.ID {
		if err := h.checkDelegatedTarget(rq, t); err != nil {
			return store.Collection{}, err
		}
	} else if isShared(t) {
		ref, err := h.shareFor(rq, t)
		if err != nil {
			return store.Collection{}, err
		}
		return ref.coll, nil
	}
	c, err := h.opts.Store.Collection(rq.ctx, t.user, t.collKind(), t.coll)
	if errors.Is(err, store.ErrNotFound) {
		return c, &httpError{status: http.StatusNotFound, msg: "no such collection"}
	}
	return c, err
}

// object loads an object resource (with its data) and its collection.
func (h *Handler) object(rq *request, t target) (store.Collection, store.Object, error) {
	c, err := h.collection(rq, t)
	if err != nil {
		return c, store.Object{}, err
	}
	if h.isGAL(t) {
		o, err := h.galObject(rq, t.name)
		return c, o, err
	}
	o, err := h.opts.Store.GetObject(rq.ctx, c.ID, t.name)
	if errors.Is(err, store.ErrNotFound) {
		return c, o, &httpError{status: http.StatusNotFound, msg: "no such object"}
	}
	return c, o, err
}
