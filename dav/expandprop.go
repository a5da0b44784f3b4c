package dav

import (
	"encoding/xml"
	"net/http"
)

// maxExpandLevels bounds how deep an expand-property REPORT follows
// hrefs (a principal's proxy-for list, then those principals' own
// properties).
const maxExpandLevels = 2

// expandProperty answers the expand-property REPORT (RFC 3253 §3.8) on
// the user's principal or one of its proxy principals, which Apple
// clients send to read calendar-proxy-read-for, calendar-proxy-write-for
// and group-member-set with each referenced principal's name and
// addresses in one request: each DAV:property whose value holds DAV:href
// elements and that names properties of its own has each href replaced
// by a DAV:response with those properties of the resource named. A
// colleague's principal answers as to PROPFIND (peerProps), a room's or
// equipment's of the tenant (in the calendar-proxy-*-for of its
// delegates) as its principal does (resourceProps); other resources get
// a status of 403.
func (h *Handler) expandProperty(rq *request, body *node) error {
	if rq.t.kind != kindPrincipal && rq.t.kind != kindProxy {
		return precondition(http.StatusForbidden, nsDAV, "supported-report", "expand-property applies to principals")
	}
	ms := newMultistatus(rq.w)
	if err := ms.response(h.hrefOf(rq.t), h.expandedProps(rq, rq.t, body.Children, 0)...); err != nil {
		return nil
	}
	_ = ms.close()
	return nil
}

// expandedProps answers the DAV:property requests reqs for the target t
// (the user's own principal or proxy principal, or a colleague's
// principal), expanding hrefs below maxExpandLevels.
func (h *Handler) expandedProps(rq *request, t target, reqs []*node, level int) []propstat {
	var pr propRequest
	sub := map[xml.Name][]*node{}
	for _, r := range reqs {
		if !r.is(nsDAV, "property") {
			continue
		}
		local, _ := r.attr("name")
		space, ok := r.attr("namespace")
		if !ok {
			space = nsDAV // RFC 3253 §3.8: the default namespace
		}
		if local == "" {
			continue
		}
		n := xml.Name{Space: space, Local: local}
		pr.names = append(pr.names, n)
		sub[n] = r.Children
	}
	var stats []propstat
	if t.user == rq.user.ID {
		stats = h.props(rq, &resource{t: t}, pr)
	} else if u, err := h.peerUser(rq, t.user); err == nil {
		stats = h.peerProps(rq, u, t, pr)
	} else if r, rerr := h.peerResource(rq, t.user); rerr == nil && t.kind == kindPrincipal {
		// A room or equipment, named in the calendar-proxy-*-for of its
		// booking managers (principal_resource.go).
		stats = h.resourceProps(r, pr)
	} else {
		return []propstat{{status: http.StatusForbidden, props: namesOnly(pr.names)}}
	}
	if level >= maxExpandLevels {
		return stats
	}
	for _, p := range stats[0].props {
		if len(sub[p.Name]) == 0 {
			continue
		}
		for i, c := range p.Children {
			if c.is(nsDAV, "href") {
				p.Children[i] = h.expandedHref(rq, c.Text, sub[p.Name], level+1)
			}
		}
	}
	return stats
}

// expandedHref is the DAV:response for one href of an expanded property.
func (h *Handler) expandedHref(rq *request, ref string, reqs []*node, level int) *node {
	r := el(nsDAV, "response", href(ref))
	t, err := h.hrefTarget(ref)
	if err != nil || (t.kind != kindPrincipal && t.kind != kindProxy) || (t.kind == kindProxy && t.user != rq.user.ID) {
		r.Children = append(r.Children, statusEl(http.StatusForbidden))
		return r
	}
	for _, s := range h.expandedProps(rq, t, reqs, level) {
		if len(s.props) > 0 {
			r.Children = append(r.Children, el(nsDAV, "propstat", el(nsDAV, "prop", s.props...), statusEl(s.status)))
		}
	}
	return r
}

// namesOnly is the empty property elements of names.
func namesOnly(names []xml.Name) []*node {
	out := make([]*node, len(names))
	for i, n := range names {
		out[i] = &node{Name: n}
	}
	return out
}
