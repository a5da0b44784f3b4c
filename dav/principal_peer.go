package dav

import (
	"encoding/xml"
	"errors"
	"net/http"
	"slices"

	"github.com/mailyard/mailyard/directory"
)

// A user may PROPFIND the principal of a colleague (a user of the same
// tenant), so that a client can show who the members of a proxy group
// (proxy.go) or the owners in calendar-proxy-*-for are: name, addresses
// and type, nothing that leads into the colleague's data, unless the
// user is the colleague's calendar proxy: a proxy also reads where the
// colleague's calendar home, inbox and outbox are, which Apple Calendar
// asks for (expand-property of calendar-proxy-write-for) before it opens
// the home (delegate.go). Depth 1 lists no members. Everything else of
// another user's principal stays 403.

// peerPrincipalProps are the properties of a colleague's principal a
// user may read.
var peerPrincipalProps = []xml.Name{
	{Space: nsDAV, Local: "resourcetype"},
	{Space: nsDAV, Local: "displayname"},
	{Space: nsDAV, Local: "principal-URL"},
	{Space: nsCalDAV, Local: "calendar-user-address-set"},
	{Space: nsCS, Local: "email-address-set"},
	{Space: nsCalDAV, Local: "calendar-user-type"},
	{Space: nsCS, Local: "first-name"},
	{Space: nsCS, Local: "last-name"},
}

// proxyPrincipalProps are the properties of a colleague's principal
// that a calendar proxy of the colleague (the holder of the proxy grant
// of the colleague's home, delegate.go) may read besides.
var proxyPrincipalProps = []xml.Name{
	{Space: nsCalDAV, Local: "calendar-home-set"},
	{Space: nsCalDAV, Local: "schedule-inbox-URL"},
	{Space: nsCalDAV, Local: "schedule-outbox-URL"},
}

// errNotPeer refuses a principal that is no colleague's (another
// tenant's, or no user's).
var errNotPeer = precondition(http.StatusForbidden, nsDAV, "need-privileges", "not your resource")

// peerUser finds the colleague whose principal has the given ID:
// errNotPeer for anyone who is not a user of the requester's tenant, or
// when the directory cannot find users by ID.
func (h *Handler) peerUser(rq *request, id string) (directory.User, error) {
	ud, ok := h.opts.Directory.(userDirectory)
	if !ok {
		return directory.User{}, errNotPeer
	}
	u, err := ud.User(rq.ctx, id)
	if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid) || (err == nil && u.Tenant != rq.user.Tenant) {
		return directory.User{}, errNotPeer
	}
	return u, err
}

// peerProps answers pr for a colleague's principal t: the allowed
// properties (peerPrincipalProps, and proxyPrincipalProps for a proxy),
// made as for the colleague's own request, and 404 for the rest.
func (h *Handler) peerProps(rq *request, u directory.User, t target, pr propRequest) []propstat {
	missing := propstat{status: http.StatusNotFound}
	allowed := peerPrincipalProps
	if h.holdsProxyGrant(rq, u.ID) {
		allowed = append(allowed[:len(allowed):len(allowed)], proxyPrincipalProps...)
	}
	var want propRequest
	switch {
	case pr.propname, pr.allprop:
		want.names = allowed
	default:
		for _, n := range pr.names {
			if slices.Contains(allowed, n) {
				want.names = append(want.names, n)
			} else {
				missing.props = append(missing.props, &node{Name: n})
			}
		}
	}
	peer := &request{w: rq.w, r: rq.r, ctx: rq.ctx, user: u, t: t, log: rq.log}
	stats := h.props(peer, &resource{t: t}, want)
	if pr.propname {
		for _, p := range stats[0].props {
			p.Children, p.Text = nil, ""
		}
	}
	return append(stats[:1], missing)
}

// propfindPeerPrincipal answers a PROPFIND of a colleague's principal
// (peerProps); Depth 1 lists no members.
func (h *Handler) propfindPeerPrincipal(rq *request) error {
	d, err := parseDepth(rq.r, depthInfinity)
	if err != nil {
		return err
	}
	if d == depthInfinity {
		return precondition(http.StatusForbidden, nsDAV, "propfind-finite-depth", "Depth: infinity is not supported")
	}
	u, err := h.peerUser(rq, rq.t.user)
	var room *directory.Resource
	if errors.Is(err, errNotPeer) {
		// A room or equipment of the tenant (principal_resource.go).
		r, rerr := h.peerResource(rq, rq.t.user)
		if rerr != nil {
			return rerr
		}
		room = &r
	} else if err != nil {
		return err
	}
	body, err := h.readXML(rq.w, rq.r)
	if err != nil {
		return err
	}
	pr, err := parsePropfind(body)
	if err != nil {
		return err
	}
	var stats []propstat
	if room != nil {
		stats = h.resourceProps(*room, pr)
	} else {
		stats = h.peerProps(rq, u, rq.t, pr)
	}
	if preferMinimal(rq.r) {
		rq.w.Header().Set("Preference-Applied", "return=minimal")
		stats = stats[:1] // RFC 8144 §2.1
	}
	ms := newMultistatus(rq.w)
	if err := ms.response(h.hrefOf(rq.t), stats...); err != nil {
		return nil
	}
	_ = ms.close()
	return nil
}
