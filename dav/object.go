package dav

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/mailyard/mailyard/store"
)

// get answers GET and HEAD of an object resource (RFC 4791 §5.3.4 for
// its ETag). Collections have no body to get.
func (h *Handler) get(rq *request) error {
	if rq.t.kind != kindCalObject && rq.t.kind != kindCard {
		return errMethodNotAllowed("GET of a collection is not supported; use PROPFIND")
	}
	_, o, err := h.object(rq, rq.t)
	if err != nil {
		return err
	}
	hd := rq.w.Header()
	hd.Set("Content-Type", o.ContentType)
	hd.Set("Content-Length", strconv.Itoa(len(o.Data)))
	hd.Set("ETag", quoteETag(o.ETag))
	hd.Set("Last-Modified", httpDate(o.Modified))
	if inm := rq.r.Header.Get("If-None-Match"); inm != "" && etagListMatches(inm, o.ETag) {
		rq.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	rq.w.WriteHeader(http.StatusOK)
	if rq.r.Method != http.MethodHead {
		_, _ = rq.w.Write(o.Data)
	}
	return nil
}

// delete answers DELETE of an object (with If-Match, RFC 9110 §13.1.1)
// or a collection.
func (h *Handler) delete(rq *request) error {
	switch rq.t.kind {
	case kindCalendar, kindBook:
		return h.deleteCollection(rq)
	case kindCalObject, kindCard:
	default:
		return &httpError{status: http.StatusForbidden, msg: "this resource cannot be deleted"}
	}
	if readOnly(rq.t) {
		return needPrivileges(h.hrefOf(rq.t), "unbind")
	}
	ifMatch, err := ifMatchHeader(rq.r)
	if err != nil {
		return err
	}
	c, err := h.collection(rq, rq.t)
	if err != nil {
		return err
	}
	var prev store.Object
	if rq.t.kind == kindCalObject && !isInbox(rq.t) {
		// The data is needed for the CANCEL or REPLY it may cause.
		if prev, err = h.opts.Store.GetObject(rq.ctx, c.ID, rq.t.name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	err = h.opts.Store.DeleteObject(rq.ctx, c.ID, rq.t.name, ifMatch)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &httpError{status: http.StatusNotFound, msg: "no such object"}
	case errors.Is(err, store.ErrPreconditionFailed):
		return &httpError{status: http.StatusPreconditionFailed, msg: "If-Match does not match the current ETag"}
	case err != nil:
		return err
	}
	if prev.Data != nil {
		h.scheduleOnDelete(rq, prev.Data) // RFC 6638 §3.2.2.3, §3.2.3.3
	}
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

// ifMatchHeader returns the one strong ETag of If-Match; "*" means any
// existing resource and is returned as "*". Lists of several ETags are
// refused: no client of calendars sends them, and the store compares
// one.
func ifMatchHeader(r *http.Request) (string, error) {
	v := r.Header.Get("If-Match")
	if v == "" {
		return "", nil
	}
	if v == "*" {
		return "*", nil
	}
	etag, ok := unquoteETag(v)
	if !ok {
		return "", &httpError{status: http.StatusPreconditionFailed, msg: "If-Match must be one strong entity tag"}
	}
	return stripGzipETag(etag), nil // the tag of a gzip-coded GET names the stored version (gzip.go)
}

// etagListMatches reports whether an If-None-Match list names etag or is
// "*" (RFC 9110 §13.1.2, weak comparison).
func etagListMatches(list, etag string) bool {
	for _, v := range splitList(list) {
		if v == "*" {
			return true
		}
		if len(v) > 2 && v[:2] == "W/" {
			v = v[2:]
		}
		if e, ok := unquoteETag(v); ok && stripGzipETag(e) == etag {
			return true
		}
	}
	return false
}
