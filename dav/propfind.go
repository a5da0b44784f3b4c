package dav

import (
	"encoding/xml"
	"net/http"
	"strings"
)

// depth is a Depth header's value (RFC 4918 §10.2).
type depth int

const (
	depth0 depth = iota
	depth1
	depthInfinity
)

// parseDepth reads the Depth header; def is used when it is absent.
func parseDepth(r *http.Request, def depth) (depth, error) {
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Depth"))) {
	case "":
		return def, nil
	case "0":
		return depth0, nil
	case "1":
		return depth1, nil
	case "infinity":
		return depthInfinity, nil
	}
	return 0, &httpError{status: http.StatusBadRequest, msg: "invalid Depth header"}
}

// propRequest is what a PROPFIND (or a REPORT's DAV:prop) asks for.
type propRequest struct {
	allprop  bool
	propname bool
	names    []xml.Name // DAV:prop, or allprop's DAV:include
}

// parsePropfind reads a PROPFIND body (RFC 4918 §14.20); an empty body
// is allprop (§9.1).
func parsePropfind(body *node) (propRequest, error) {
	if body == nil {
		return propRequest{allprop: true}, nil
	}
	if !body.is(nsDAV, "propfind") {
		return propRequest{}, &httpError{status: http.StatusBadRequest, msg: "PROPFIND body must be DAV:propfind"}
	}
	var pr propRequest
	for _, c := range body.Children {
		switch {
		case c.is(nsDAV, "prop"):
			pr.names = append(pr.names, names(c)...)
		case c.is(nsDAV, "allprop"):
			pr.allprop = true
		case c.is(nsDAV, "propname"):
			pr.propname = true
		case c.is(nsDAV, "include"):
			pr.names = append(pr.names, names(c)...)
		}
	}
	if !pr.allprop && !pr.propname && len(pr.names) == 0 {
		return pr, &httpError{status: http.StatusBadRequest, msg: "PROPFIND names no properties"}
	}
	return pr, nil
}

// propfind answers PROPFIND (RFC 4918 §9.1) with Depth 0 or 1; Depth
// infinity (also the default) is refused with propfind-finite-depth.
func (h *Handler) propfind(rq *request) error {
	d, err := parseDepth(rq.r, depthInfinity)
	if err != nil {
		return err
	}
	if d == depthInfinity {
		return precondition(http.StatusForbidden, nsDAV, "propfind-finite-depth", "Depth: infinity is not supported")
	}
	body, err := h.readXML(rq.w, rq.r)
	if err != nil {
		return err
	}
	pr, err := parsePropfind(body)
	if err != nil {
		return err
	}
	minimal := preferMinimal(rq.r)
	if minimal {
		rq.w.Header().Set("Preference-Applied", "return=minimal")
	}
	var ms *multistatus
	err = h.walk(rq, d, func(res *resource) error {
		if ms == nil {
			ms = newMultistatus(rq.w)
		}
		stats := h.props(rq, res, pr)
		if minimal {
			stats = stats[:1] // RFC 8144 §2.1: no 404 propstat
		}
		return ms.response(h.hrefOf(res.t), stats...)
	})
	if ms == nil {
		return err
	}
	if err != nil {
		rq.log.Error("PROPFIND stopped", "err", err)
		return nil
	}
	return ms.close()
}

// preferMinimal reports whether the client asked for Prefer:
// return=minimal (RFC 7240 §4.2, RFC 8144 §2.1).
func preferMinimal(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range splitList(v) {
			if strings.EqualFold(strings.ReplaceAll(p, " ", ""), "return=minimal") {
				return true
			}
		}
	}
	return false
}

// props answers a propRequest for one resource: 200 with the values it
// has, 404 for the names it does not have (RFC 4918 §9.1). A
// calendar's or address book's calendar-timezone and dead properties
// come from NamespaceProps, read only when asked for (allprop returns
// the dead ones, not calendar-timezone: RFC 4791 §5.2.2).
func (h *Handler) props(rq *request, res *resource, pr propRequest) []propstat {
	defs := h.propDefs[propKind(res.t)]
	ok := propstat{status: http.StatusOK}
	missing := propstat{status: http.StatusNotFound}
	var cp *collProps
	record := func() *collProps {
		if cp == nil {
			cp = &collProps{}
			if (res.t.kind == kindCalendar || res.t.kind == kindBook) && res.coll != nil {
				if loaded, err := h.collProps(rq.ctx, *res.coll); err == nil {
					cp = loaded
				} else {
					rq.log.Error("reading collection properties", "err", err)
				}
			}
		}
		return cp
	}
	if pr.propname {
		for _, d := range defs {
			ok.props = append(ok.props, &node{Name: d.name})
		}
		if record().Timezone != "" {
			ok.props = append(ok.props, el(nsCalDAV, "calendar-timezone"))
		}
		for _, n := range record().Dead {
			ok.props = append(ok.props, &node{Name: n.Name})
		}
		return []propstat{ok}
	}
	if pr.allprop {
		for _, d := range defs {
			if d.allprop {
				ok.props = append(ok.props, d.value(h, rq, res))
			}
		}
		ok.props = append(ok.props, record().Dead...)
	}
	for _, name := range pr.names {
		d, found := findProp(defs, name)
		switch {
		case found && (!pr.allprop || !d.allprop):
			ok.props = append(ok.props, d.value(h, rq, res))
		case found:
		case name == xml.Name{Space: nsCalDAV, Local: "calendar-timezone"} && record().Timezone != "":
			ok.props = append(ok.props, textEl(nsCalDAV, "calendar-timezone", record().Timezone))
		case record().dead(name) != nil:
			if !pr.allprop {
				ok.props = append(ok.props, record().dead(name))
			}
		default:
			missing.props = append(missing.props, &node{Name: name})
		}
	}
	return []propstat{ok, missing}
}

func findProp(defs []propDef, name xml.Name) (propDef, bool) {
	for _, d := range defs {
		if d.name == name {
			return d, true
		}
	}
	return propDef{}, false
}

// walk calls fn for the target and, at Depth 1, for its members. The
// target is loaded (and 404 returned) before fn is first called.
func (h *Handler) walk(rq *request, d depth, fn func(*resource) error) error {
	t := rq.t
	switch t.kind {
	case kindRoot, kindPrincipal, kindCalHome, kindBookHome:
		if t.user != "" && t.user != rq.user.ID {
			// A proxy looks at the owner's calendar home (delegate.go),
			// whose inbox exists as for the owner.
			if _, _, err := h.ensureCalendarHome(rq.ctx, t.user); err != nil {
				return err
			}
			break
		}
		if err := h.ensureDefaults(rq); err != nil {
			return err
		}
	}
	switch {
	case h.isGAL(t) && t.kind == kindBook:
		return h.walkGAL(rq, d, fn)
	}
	switch t.kind {
	case kindCalendar, kindBook:
		return h.walkCollection(rq, d, fn)
	case kindCalObject, kindCard:
		c, o, err := h.object(rq, t)
		if err != nil {
			return err
		}
		return fn(&resource{t: t, coll: &c, obj: &o})
	}
	if err := fn(&resource{t: t}); err != nil || d == depth0 {
		return err
	}
	return h.walkChildren(rq, fn)
}

// walkChildren lists the members of the root, the principals collection
// and the homes.
func (h *Handler) walkChildren(rq *request, fn func(*resource) error) error {
	u := rq.user.ID
	switch rq.t.kind {
	case kindRoot:
		for _, k := range []kind{kindPrincipal, kindCalHome, kindBookHome} {
			if err := fn(&resource{t: target{kind: k, user: u}}); err != nil {
				return err
			}
		}
	case kindPrincipals:
		return fn(&resource{t: target{kind: kindPrincipal, user: u}})
	case kindPrincipal:
		// The calendar user proxy groups (proxy.go).
		for _, p := range []string{proxyRead, proxyWrite} {
			if err := fn(&resource{t: target{kind: kindProxy, user: u, coll: p}}); err != nil {
				return err
			}
		}
	case kindCalHome, kindBookHome:
		if rq.t.user != u {
			return h.walkDelegatedHome(rq, fn)
		}
		colls, err := h.opts.Store.ListCollections(rq.ctx, u, rq.t.collKind())
		if err != nil {
			return err
		}
		k := kindCalendar
		if rq.t.kind == kindBookHome {
			k = kindBook
		}
		for i := range colls {
			if err := fn(&resource{t: target{kind: k, user: u, coll: colls[i].Name}, coll: &colls[i]}); err != nil {
				return err
			}
		}
		shared, err := h.sharedWithUser(rq, rq.t.collKind())
		if err != nil {
			return err
		}
		for _, ref := range shared {
			if err := fn(&resource{t: target{kind: k, user: u, coll: shareName(ref.Owner, ref.Collection)}, coll: &ref.coll}); err != nil {
				return err
			}
		}
		if k == kindCalendar {
			return fn(&resource{t: target{kind: kindOutbox, user: u, coll: outboxName}})
		}
		if k == kindBook && h.opts.GAL != nil {
			gal := h.galCollection(rq)
			return fn(&resource{t: target{kind: kindBook, user: u, coll: galName}, coll: &gal})
		}
	}
	return nil
}

// walkCollection answers for a calendar or address book and, at Depth
// 1, its objects (without their data).
func (h *Handler) walkCollection(rq *request, d depth, fn func(*resource) error) error {
	c, err := h.collection(rq, rq.t)
	if err != nil {
		return err
	}
	if err := fn(&resource{t: rq.t, coll: &c}); err != nil || d == depth0 {
		return err
	}
	objs, err := h.opts.Store.ListObjects(rq.ctx, c.ID)
	if err != nil {
		return err
	}
	k := kindCalObject
	if rq.t.kind == kindBook {
		k = kindCard
	}
	for i := range objs {
		t := target{kind: k, user: rq.t.user, coll: rq.t.coll, name: objs[i].Name}
		if err := fn(&resource{t: t, coll: &c, obj: &objs[i]}); err != nil {
			return err
		}
	}
	return nil
}
