package dav

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/mailyard/mailyard/directory"
)

// Rooms and equipment (directory.Resource) are calendar principals
// (issue 14 item 7) at /dav/principals/<resourceID>/, the resource's
// directory ID being its store account as for scheduling
// (scheduling.go). Every user of the resource's tenant may PROPFIND the
// principal (and find it with principal-property-search,
// principal_search.go): resourcetype, displayname, principal-URL,
// principal-collection-set, calendar-user-address-set (and
// CalendarServer's CS:email-address-set), calendar-user-type
// (ROOM for a room, RESOURCE for equipment: RFC 6638 §2.4.2, RFC 5545
// §3.2.3), calendar-home-set and schedule-inbox-URL. Nobody logs in as a
// resource, so the principal has no current-user-principal of its own
// and no outbox.
//
// What the resource's calendar holds is seen read-only as free/busy: an
// outbox free/busy request (RFC 6638 §5) naming the resource's address
// answers its busy time to any user, as for a colleague. A booking is
// made by inviting the resource (implicit.go, resource.go) and answered
// by the resource or, under the manual policy, by an approver in their
// own copy. The calendar home itself, named by calendar-home-set, stays
// closed (403 need-privileges) to every user, approvers included, but
// for the grants an administrator makes with the resource as owner
// ([Handler.Share], [Handler.Delegate]): they are the grants of users'
// calendars, read on the same path (share.go, delegate.go, with
// resourceOwner standing for the owner), so a booking manager reads and
// writes the resource's calendar as a user's delegate does.

// resourceDirectory is the optional part of a Directory that finds a
// resource by ID (*builtin.Directory, *directory.SourcedAuth), so that
// a resource's principal can be read.
type resourceDirectory interface {
	Resource(ctx context.Context, id string) (directory.Resource, error)
}

// peerResource finds the resource of the requester's tenant whose
// principal has the given ID: errNotPeer for anything else, or when the
// directory cannot find resources by ID.
func (h *Handler) peerResource(rq *request, id string) (directory.Resource, error) {
	rd, ok := h.opts.Directory.(resourceDirectory)
	if !ok {
		return directory.Resource{}, errNotPeer
	}
	r, err := rd.Resource(rq.ctx, id)
	if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid) || (err == nil && (r.Tenant != rq.user.Tenant || r.ID != id)) {
		return directory.Resource{}, errNotPeer
	}
	return r, err
}

// resourceCUType is the calendar-user-type of a resource (RFC 6638
// §2.4.2): ROOM for a room, RESOURCE for anything else.
func resourceCUType(r directory.Resource) string {
	if r.Kind == directory.ResourceRoom || r.Kind == "" {
		return cuRoom
	}
	return cuResource
}

// resourcePrincipalValues are the properties of a resource's principal,
// in the order allprop and propname list them.
func (h *Handler) resourcePrincipalValues(r directory.Resource) []*node {
	name := r.DisplayName
	if name == "" {
		name = r.Address
	}
	prop := func(space, local string, children ...*node) *node { return el(space, local, children...) }
	return []*node{
		prop(nsDAV, "resourcetype", resourceType(kindPrincipal)...),
		textEl(nsDAV, "displayname", name),
		prop(nsDAV, "principal-URL", href(h.hrefOf(target{kind: kindPrincipal, user: r.ID}))),
		prop(nsDAV, "principal-collection-set", href(h.hrefOf(target{kind: kindPrincipals}))),
		prop(nsCalDAV, "calendar-user-address-set", addressSetHrefs([]string{r.Address})...),
		prop(nsCS, "email-address-set", emailAddressSet([]string{r.Address})...),
		textEl(nsCalDAV, "calendar-user-type", resourceCUType(r)),
		prop(nsCalDAV, "calendar-home-set", href(h.hrefOf(target{kind: kindCalHome, user: r.ID}))),
		prop(nsCalDAV, "schedule-inbox-URL", href(h.hrefOf(target{kind: kindCalendar, user: r.ID, coll: inboxName}))),
	}
}

// resourceProps answers pr for a resource's principal: 200 with the
// properties it has, 404 for the rest (RFC 4918 §9.1).
func (h *Handler) resourceProps(r directory.Resource, pr propRequest) []propstat {
	ok := propstat{status: http.StatusOK}
	missing := propstat{status: http.StatusNotFound}
	values := h.resourcePrincipalValues(r)
	switch {
	case pr.propname:
		for _, v := range values {
			ok.props = append(ok.props, &node{Name: v.Name})
		}
		return []propstat{ok, missing}
	case pr.allprop:
		ok.props = values
	}
	for _, n := range pr.names {
		i := slices.IndexFunc(values, func(v *node) bool { return v.Name == n })
		switch {
		case i >= 0 && !pr.allprop:
			ok.props = append(ok.props, values[i])
		case i >= 0:
		default:
			missing.props = append(missing.props, &node{Name: n})
		}
	}
	return []propstat{ok, missing}
}

// resourceOwner is a room or equipment as the owner of grants of its
// calendar (share.go, delegate.go) and as the calendar user its
// delegates' writes are scheduled as: its ID (its store account),
// tenant, address and name. Nobody logs in as it.
func resourceOwner(r directory.Resource) directory.User {
	return directory.User{ID: r.ID, Tenant: r.Tenant, Address: r.Address, DisplayName: r.DisplayName}
}
