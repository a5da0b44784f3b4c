package dav

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// The sharing protocol as clients see it: CalendarServer's sharing
// extension (calendarserver-sharing.txt: CS:invite, CS:share POST,
// CS:shared and CS:shared-owner resource types, CS:allowed-sharing-modes),
// which Apple clients and Nextcloud speak, and the later
// draft-pot-webdav-resource-sharing (DAV:share-access, DAV:sharees,
// DAV:share-resource POST). Invitations are accepted at once: there is no
// notification collection, a share appears in the grantee's home when it
// is granted.

// shareAccess is the access the user has to a target through a share or
// in another user's calendar home (delegate.go), "" for the user's own
// resources.
func (h *Handler) shareAccess(rq *request, t target) Access {
	if t.user != "" && t.user != rq.user.ID {
		return h.delegateAccess(rq, t)
	}
	if !isShared(t) {
		return ""
	}
	ref, err := h.shareFor(rq, t)
	if err != nil {
		return AccessRead
	}
	return ref.Access
}

// ownCollection reports whether res is a calendar or address book of the
// user's own that can be shared.
func ownCollection(rq *request, res *resource) bool {
	return res.coll != nil && res.coll.Account == rq.user.ID && (res.t.kind == kindCalendar || res.t.kind == kindBook) &&
		!reservedName(res.coll.Name)
}

// grantsOf lists the grants of one of the user's collections; a failure
// is logged and lists none.
func (h *Handler) grantsOf(rq *request, c *store.Collection) []Share {
	recs, err := h.records()
	if err != nil {
		return nil
	}
	grants, err := listShares(rq.ctx, recs, "o/"+c.Account+"/"+string(c.Kind)+"/"+c.Name+"/")
	if err != nil {
		rq.log.Error("listing grants", "err", err)
	}
	return grants
}

// sharedType adds to a collection's resourcetype CS:shared (shared with
// the user) or CS:shared-owner (the user's, shared with others).
func (h *Handler) sharedType(rq *request, res *resource) []*node {
	switch {
	case res.t.kind != kindCalendar && res.t.kind != kindBook:
		return nil
	case isShared(res.t):
		return []*node{el(nsCS, "shared")}
	case ownCollection(rq, res) && len(h.grantsOf(rq, res.coll)) > 0:
		return []*node{el(nsCS, "shared-owner")}
	}
	return nil
}

// shareProps are the sharing properties of calendars and address books.
func shareProps() []propDef {
	prop := func(space, local string, v func(h *Handler, rq *request, res *resource) []*node) propDef {
		name := xml.Name{Space: space, Local: local}
		return propDef{name: name, value: func(h *Handler, rq *request, res *resource) *node {
			return &node{Name: name, Children: v(h, rq, res)}
		}}
	}
	accessEl := func(space string, a Access) *node { return el(space, string(a)) }
	return []propDef{
		// calendarserver-sharing §5.2.1: the sharees, and for a sharee
		// the owner as CS:organizer.
		prop(nsCS, "invite", func(h *Handler, rq *request, res *resource) []*node {
			var out []*node
			if isShared(res.t) {
				if ref, err := h.shareFor(rq, res.t); err == nil {
					out = append(out, el(nsCS, "organizer", href("mailto:"+ref.OwnerAddress)))
				}
				return out
			}
			if !ownCollection(rq, res) {
				return nil
			}
			for _, g := range h.grantsOf(rq, res.coll) {
				out = append(out, el(nsCS, "user", href("mailto:"+g.GranteeAddress),
					textEl(nsCS, "common-name", g.GranteeAddress), el(nsCS, "invite-accepted"),
					el(nsCS, "access", accessEl(nsCS, g.Access))))
			}
			return out
		}),
		// calendarserver-sharing §5.2.3: what the owner may do.
		prop(nsCS, "allowed-sharing-modes", func(_ *Handler, rq *request, res *resource) []*node {
			if ownCollection(rq, res) {
				return []*node{el(nsCS, "can-be-shared")}
			}
			return nil
		}),
		// draft-pot-webdav-resource-sharing §4.4.1.
		prop(nsDAV, "share-access", func(h *Handler, rq *request, res *resource) []*node {
			switch {
			case isShared(res.t):
				return []*node{accessEl(nsDAV, h.shareAccess(rq, res.t))}
			case ownCollection(rq, res) && len(h.grantsOf(rq, res.coll)) > 0:
				return []*node{el(nsDAV, "shared-owner")}
			}
			return []*node{el(nsDAV, "not-shared")}
		}),
		// draft-pot-webdav-resource-sharing §4.4.2, for the owner.
		prop(nsDAV, "sharees", func(h *Handler, rq *request, res *resource) []*node {
			if !ownCollection(rq, res) {
				return nil
			}
			var out []*node
			for _, g := range h.grantsOf(rq, res.coll) {
				out = append(out, el(nsDAV, "sharee", href("mailto:"+g.GranteeAddress),
					el(nsDAV, "invite-accepted"), el(nsDAV, "share-access", accessEl(nsDAV, g.Access))))
			}
			return out
		}),
	}
}

// shareChange is one grant or removal a sharing POST asks for.
type shareChange struct {
	grantee string
	access  Access // "" removes
}

// postShare answers the owner's POST to a calendar or address book of a
// CalendarServer CS:share body (set with CS:read or CS:read-write,
// remove) or a draft-pot-webdav-resource-sharing DAV:share-resource body
// (sharee with DAV:read, DAV:read-write or DAV:no-access). Every change
// is checked before any is made; a grantee that cannot be granted (not a
// user or group of the tenant) refuses the whole request with 403.
func (h *Handler) postShare(rq *request) error {
	if ct := rq.r.Header.Get("Content-Type"); ct != "" && !strings.Contains(ct, "xml") {
		return errMethodNotAllowed("POST to a collection takes a sharing request (CS:share, DAV:share-resource)")
	}
	if isShared(rq.t) || h.isGAL(rq.t) || reservedName(rq.t.coll) {
		return needPrivileges(h.hrefOf(rq.t), "share")
	}
	c, err := h.collection(rq, rq.t)
	if err != nil {
		return err
	}
	body, err := h.readXML(rq.w, rq.r)
	if err != nil {
		return err
	}
	changes, err := parseShareBody(body)
	if err != nil {
		return err
	}
	for _, ch := range changes {
		if _, _, err := h.shareOf(rq.ctx, rq.user.Address, c.Kind, c.Name, mailtoAddress(ch.grantee)); err != nil {
			if errors.Is(err, ErrShareInvalid) {
				return precondition(http.StatusForbidden, nsDAV, "need-privileges", "cannot share with "+ch.grantee+": "+err.Error())
			}
			return err
		}
	}
	for _, ch := range changes {
		g := mailtoAddress(ch.grantee)
		if ch.access == "" {
			err = h.Unshare(rq.ctx, rq.user.Address, c.Kind, c.Name, g)
		} else {
			_, err = h.Share(rq.ctx, rq.user.Address, c.Kind, c.Name, g, ch.access)
		}
		if errors.Is(err, ErrSharingUnsupported) {
			return &httpError{status: http.StatusNotImplemented, msg: "sharing is not available"}
		}
		if err != nil {
			return err
		}
	}
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

// parseShareBody reads a CS:share or DAV:share-resource body.
func parseShareBody(body *node) ([]shareChange, error) {
	bad := func(msg string) error { return &httpError{status: http.StatusBadRequest, msg: msg} }
	var out []shareChange
	shareeOf := func(n *node) (string, error) {
		hr := n.child(nsDAV, "href")
		if hr == nil || mailtoAddress(hr.Text) == "" {
			return "", bad("a sharee is named by a mailto: href")
		}
		return hr.Text, nil
	}
	switch {
	case body.is(nsCS, "share"):
		for _, n := range body.Children {
			a, err := shareeOf(n)
			if err != nil {
				return nil, err
			}
			switch {
			case n.is(nsCS, "set") && n.child(nsCS, "read-write") != nil:
				out = append(out, shareChange{a, AccessReadWrite})
			case n.is(nsCS, "set") && n.child(nsCS, "read") != nil:
				out = append(out, shareChange{a, AccessRead})
			case n.is(nsCS, "remove"):
				out = append(out, shareChange{grantee: a})
			default:
				return nil, bad("CS:share holds CS:set with CS:read or CS:read-write, and CS:remove")
			}
		}
	case body.is(nsDAV, "share-resource"):
		for _, n := range body.Children {
			if !n.is(nsDAV, "sharee") {
				continue
			}
			a, err := shareeOf(n)
			if err != nil {
				return nil, err
			}
			acc := n.child(nsDAV, "share-access")
			switch {
			case acc != nil && acc.child(nsDAV, "read-write") != nil:
				out = append(out, shareChange{a, AccessReadWrite})
			case acc != nil && acc.child(nsDAV, "read") != nil:
				out = append(out, shareChange{a, AccessRead})
			case acc != nil && acc.child(nsDAV, "no-access") != nil:
				out = append(out, shareChange{grantee: a})
			default:
				return nil, bad("DAV:sharee needs DAV:share-access of read, read-write or no-access")
			}
		}
	default:
		return nil, bad("POST to a collection takes CS:share or DAV:share-resource")
	}
	if len(out) == 0 || len(out) > maxShares {
		return nil, bad("no sharee, or too many")
	}
	return out, nil
}
