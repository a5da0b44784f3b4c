package dav

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/calendar"
)

// Handler serves CalDAV and CardDAV; see the package documentation. It
// is safe for concurrent use.
type Handler struct {
	opts     Options
	auth     *authCache
	propDefs map[kind][]propDef
	// galTokens caches GAL sync tokens per tenant.
	galTokens *galTokens
	// zones shares parsed VTIMEZONEs between the objects queries parse.
	zones *calendar.ZoneCache
	// parsed keeps parsed calendar objects by version for the read
	// paths (calendar-query, calendar-data, free/busy).
	parsed *parsedCache
}

// NewHandler returns a handler over opts.Store and opts.Directory, or an
// error naming every invalid option.
func NewHandler(opts Options) (*Handler, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Handler{opts: o, auth: newAuthCache(o.AuthCacheTTL, DefaultAuthCacheSize, time.Now), propDefs: propTable(),
		galTokens: &galTokens{now: time.Now, entries: map[string]galTokenEntry{}}, zones: calendar.NewZoneCache(0),
		parsed: newParsedCache(parsedCacheBytes)}, nil
}

// request is one authenticated request being answered.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	user directory.User
	t    target
	log  *slog.Logger
	// share is the shared collection the target is in (share.go), nil
	// for the user's own; shares and groups cache share resolutions and
	// group memberships for the request; owner is the shared calendar's
	// owner once scheduling looked them up.
	share  *shareRef
	shares map[string]*shareRef
	groups memberships
	owner  *directory.User
	// expanded counts the instances the request's calendar-data
	// expansions returned, all objects together (Limits.MaxInstances
	// bounds the sum).
	expanded int
	// calZones reads the calendar-timezone of the calendars whose
	// objects the request expands (calzone.go).
	calZones *calendarZones
	// proxyOwners caches proxyFor (proxy.go) for the request.
	proxyOwners map[Access][]string
	// delegation is the user's delegation to the owner of a target in
	// another user's calendar home (delegate.go), once resolved.
	delegation *delegation
}

// davCompliance is the DAV header (RFC 4918 §10.1, RFC 4791 §5.1, RFC
// 6352 §6.1, RFC 5689 §3.1, RFC 6638 §2, caldav-proxy §5.1).
const davCompliance = "1, 3, calendar-access, calendar-auto-schedule, addressbook, extended-mkcol, calendar-proxy"

// allowed lists the methods served (RFC 9110 §10.2.1 Allow).
const allowed = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, MKCALENDAR, REPORT, POST"

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.wellKnown(w, r) {
		return
	}
	t, err := h.parsePath(r.URL.EscapedPath())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("DAV", davCompliance)
	if r.Method == http.MethodOptions {
		// RFC 9110 §9.3.7: capabilities, no authentication needed.
		w.Header().Set("Allow", allowed)
		w.WriteHeader(http.StatusOK)
		return
	}
	if ce := r.Header.Values("Content-Encoding"); len(ce) > 0 && !identityCoding(ce) {
		// RFC 9110 §15.5.16, §12.5.3: request bodies are taken as they
		// are, never decoded, so a coded one (a gzip bomb or not) is
		// refused before anything is read, and the answer says which
		// coding would be accepted.
		w.Header().Set("Accept-Encoding", "identity")
		h.writeError(w, r, &httpError{status: http.StatusUnsupportedMediaType, msg: "request bodies must not be content-coded"})
		return
	}
	if compressible(r) {
		w.Header().Add("Vary", "Accept-Encoding") // RFC 9110 §12.5.5
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			gw := newGzipWriter(w, r)
			defer gw.finish()
			w = gw
		}
	}
	user, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	rq := &request{w: w, r: r, ctx: r.Context(), user: user, t: t,
		log: h.opts.Logger.With("user", user.ID, "method", r.Method)}
	if err := h.dispatch(rq); err != nil {
		h.writeError(w, r, err)
	}
}

// wellKnown answers the bootstrapping URLs of RFC 6764 §5 with a
// redirect to the context path, where clients look for
// current-user-principal. GET and HEAD get 301; every other method (the
// PROPFIND clients start with) gets 308 (RFC 9110 §15.4.9), because
// clients may turn a 301'd request into a GET (§15.4.2 note; Go's
// net/http does) and the PROPFIND would be lost.
func (h *Handler) wellKnown(w http.ResponseWriter, r *http.Request) bool {
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/.well-known/caldav", "/.well-known/carddav":
		code := http.StatusPermanentRedirect
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			code = http.StatusMovedPermanently
		}
		w.Header().Set("Location", h.opts.Prefix+"/")
		w.WriteHeader(code)
		return true
	}
	return false
}

// dispatch checks that the target belongs to the user and runs the
// method. An error is returned only before anything was written.
func (h *Handler) dispatch(rq *request) error {
	if rq.t.user != "" && rq.t.user != rq.user.ID {
		if rq.t.kind == kindPrincipal && rq.r.Method == "PROPFIND" {
			return h.propfindPeerPrincipal(rq) // a colleague's name and addresses
		}
		// A user reaches another's calendar home only as their calendar
		// proxy or grantee (delegate.go); what others share appears in
		// the user's own home too (share.go).
		if err := h.checkDelegate(rq); err != nil {
			return err
		}
	} else if isShared(rq.t) {
		if handled, err := h.checkShared(rq); handled || err != nil {
			return err
		}
	}
	switch rq.r.Method {
	case "PROPFIND":
		return h.propfind(rq)
	case "PROPPATCH":
		return h.proppatch(rq)
	case "MKCALENDAR":
		return h.mkcalendar(rq)
	case "MKCOL":
		return h.mkcol(rq)
	case http.MethodGet, http.MethodHead:
		return h.get(rq)
	case http.MethodPut:
		return h.put(rq)
	case http.MethodDelete:
		return h.delete(rq)
	case "REPORT":
		return h.report(rq)
	case http.MethodPost:
		if rq.t.kind == kindCalendar || rq.t.kind == kindBook {
			return h.postShare(rq)
		}
		return h.postOutbox(rq)
	}
	rq.w.Header().Set("Allow", allowed)
	return &httpError{status: http.StatusMethodNotAllowed}
}

// errMethodNotAllowed refuses a method on a resource that does not
// support it.
func errMethodNotAllowed(msg string) error {
	return &httpError{status: http.StatusMethodNotAllowed, msg: msg}
}
