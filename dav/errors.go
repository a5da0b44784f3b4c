package dav

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// errNotHere: the path is outside the URL layout (404).
var errNotHere = errors.New("no such resource")

// httpError is a refusal with its status and, for the preconditions and
// postconditions of RFC 4918 §16, RFC 4791 §1.3 and RFC 6352 §1.3, the
// condition element answered in a DAV:error body.
type httpError struct {
	status     int
	msg        string
	cond       *node
	retryAfter time.Duration
}

func (e *httpError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return http.StatusText(e.status)
}

// precondition returns a refusal naming a failed precondition.
func precondition(status int, space, local, msg string, children ...*node) *httpError {
	return &httpError{status: status, msg: msg, cond: el(space, local, children...)}
}

// errorStatus maps an error of a method to its answer.
func asHTTPError(err error) *httpError {
	if he, ok := errors.AsType[*httpError](err); ok {
		return he
	}
	switch {
	case errors.Is(err, errNotHere):
		return &httpError{status: http.StatusNotFound}
	case errors.Is(err, errBadPath):
		return &httpError{status: http.StatusBadRequest, msg: err.Error()}
	}
	return nil
}

// writeError answers a refused request: a DAV:error body when a
// condition is named, else a short plain-text reason. Errors that are no
// refusal are server faults, logged and answered 500 without detail.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	he := asHTTPError(err)
	if he == nil {
		h.opts.Logger.Error("dav request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		he = &httpError{status: http.StatusInternalServerError, msg: "internal server error"}
	}
	if he.retryAfter > 0 {
		secs := int64((he.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	if he.cond != nil {
		_ = writeXML(w, he.status, el(nsDAV, "error", he.cond))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(he.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(he.Error() + "\n"))
	}
}
