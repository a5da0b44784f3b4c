package dav

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// Calendar user proxies (CalendarServer's caldav-proxy extension, which
// Apple Calendar and other delegation-aware clients use): each user
// principal has two child principals, calendar-proxy-read and
// calendar-proxy-write, groups (RFC 3744 §4) whose members are the
// user's read-only and read-write delegates. They are not stored on
// their own: they are the grants of share.go and delegate.go seen per
// owner.
//
//   - A user who holds the owner's calendar-proxy grant (delegate.go: the
//     whole calendar home) or a grant of any of the owner's calendars is
//     a member of the owner's calendar-proxy-read for read access, of
//     calendar-proxy-write for read-write. Group grants make their
//     members delegates too (in the members' calendar-proxy-*-for and
//     group-membership) but are not listed in group-member-set: a group
//     has no principal here.
//   - The owner's PROPPATCH of DAV:group-member-set (RFC 3744 §4.3) on a
//     proxy principal gives each member the calendar-proxy grant of that
//     access to the owner's home (all calendars, those made later too,
//     the schedule inbox and outbox; delegate.go), replacing a proxy
//     grant of the other access, and removes the grants of that access
//     of each member left out. Members are named by principal URL
//     (resolved through a Directory that also has User(ctx, id), as
//     *builtin.Directory and *directory.SourcedAuth do) or mailto: href,
//     and must be users of the owner's tenant; anyone else makes the
//     whole PROPPATCH fail with 403. Other users get 403 on the owner's
//     proxy principals.
//   - The delegate's principal lists whom they are a proxy for
//     (CS:calendar-proxy-read-for, CS:calendar-proxy-write-for) and the
//     proxy groups they are in (DAV:group-membership, RFC 3744 §4.4).
//     The delegate reaches the owner's calendars at the owner's URLs
//     and in their own calendar home, as every shared calendar is
//     (delegate.go).

// Names of the proxy principals under a user principal.
const (
	proxyRead  = "calendar-proxy-read"
	proxyWrite = "calendar-proxy-write"
)

// proxyAccess is the access a proxy principal's members have.
func proxyAccess(name string) Access {
	if name == proxyWrite {
		return AccessReadWrite
	}
	return AccessRead
}

// proxyName is the proxy principal whose members have access a.
func proxyName(a Access) string {
	if a == AccessReadWrite {
		return proxyWrite
	}
	return proxyRead
}

// userDirectory is the optional part of a Directory that finds a user by
// ID, to resolve the principal URLs of a group-member-set and to show a
// colleague's principal (*builtin.Directory, *directory.SourcedAuth).
type userDirectory interface {
	User(ctx context.Context, id string) (directory.User, error)
}

// proxyProps are the live properties of a proxy principal.
func proxyProps(common []propDef) []propDef {
	def := func(local string, v func(h *Handler, rq *request, res *resource) []*node) propDef {
		return propDef{name: nsName(nsDAV, local), value: func(h *Handler, rq *request, res *resource) *node {
			return &node{Name: nsName(nsDAV, local), Children: v(h, rq, res)}
		}}
	}
	self := func(h *Handler, _ *request, res *resource) []*node { return []*node{href(h.hrefOf(res.t))} }
	return append(common[:len(common):len(common)],
		propDef{name: nsName(nsDAV, "displayname"), allprop: true, value: func(_ *Handler, _ *request, res *resource) *node {
			return textEl(nsDAV, "displayname", res.t.coll)
		}},
		def("principal-URL", self),
		def("principal-collection-set", func(h *Handler, _ *request, _ *resource) []*node {
			return []*node{href(h.hrefOf(target{kind: kindPrincipals}))}
		}),
		def("group-member-set", func(h *Handler, rq *request, res *resource) []*node {
			var out []*node
			for _, id := range h.proxyMembers(rq, res.t.user, proxyAccess(res.t.coll)) {
				out = append(out, href(h.hrefOf(target{kind: kindPrincipal, user: id})))
			}
			return out
		}),
		// A proxy group is in no group itself.
		def("group-membership", func(*Handler, *request, *resource) []*node { return nil }),
	)
}

// principalProxyProps are the proxy properties of a user principal: for
// whom the user is a read-only or read-write proxy (caldav-proxy §5.3.1,
// §5.3.2), and the proxy groups the user is a member of (RFC 3744 §4.4).
func principalProxyProps() []propDef {
	prop := func(space, local string, v func(h *Handler, rq *request) []*node) propDef {
		return propDef{name: nsName(space, local), value: func(h *Handler, rq *request, _ *resource) *node {
			return &node{Name: nsName(space, local), Children: v(h, rq)}
		}}
	}
	forAccess := func(a Access) func(h *Handler, rq *request) []*node {
		return func(h *Handler, rq *request) []*node {
			var out []*node
			for _, owner := range h.proxyFor(rq)[a] {
				out = append(out, href(h.hrefOf(target{kind: kindPrincipal, user: owner})))
			}
			return out
		}
	}
	return []propDef{
		prop(nsCS, "calendar-proxy-read-for", forAccess(AccessRead)),
		prop(nsCS, "calendar-proxy-write-for", forAccess(AccessReadWrite)),
		prop(nsDAV, "group-membership", func(h *Handler, rq *request) []*node {
			var out []*node
			for _, a := range []Access{AccessRead, AccessReadWrite} {
				for _, owner := range h.proxyFor(rq)[a] {
					out = append(out, href(h.hrefOf(target{kind: kindProxy, user: owner, coll: proxyName(a)})))
				}
			}
			return out
		}),
	}
}

// proxyFor lists, by access, the owners whose calendars are shared with
// the user (directly or through a group), each once per access and in
// order; a failure is logged and lists none. The answer is kept for the
// request, whose principal PROPFIND may ask for three properties made
// of it.
func (h *Handler) proxyFor(rq *request) map[Access][]string {
	if rq.proxyOwners != nil {
		return rq.proxyOwners
	}
	refs, err := h.sharedWithUser(rq, store.KindCalendar)
	if err != nil {
		rq.log.Error("listing the calendars shared with the user", "err", err)
	}
	grants := make([]Share, 0, len(refs))
	for _, ref := range refs {
		grants = append(grants, ref.Share)
	}
	if recs, err := h.records(); err == nil {
		// The proxy grants, also of homes without a calendar to share.
		homes, err := listShares(rq.ctx, recs, delegationsPrefix(rq.user.ID))
		if err != nil {
			rq.log.Error("listing the user's proxy grants", "err", err)
		}
		grants = append(grants, homes...)
	}
	out := map[Access][]string{}
	for _, g := range grants {
		if !slices.Contains(out[g.Access], g.Owner) {
			out[g.Access] = append(out[g.Access], g.Owner)
		}
	}
	for _, owners := range out {
		slices.Sort(owners)
	}
	rq.proxyOwners = out
	return out
}

// calendarGrants lists the grants of all the owner's calendars; a
// store without records has none.
func (h *Handler) calendarGrants(ctx context.Context, owner string) ([]Share, error) {
	recs, err := h.records()
	if err != nil {
		return nil, nil
	}
	return listShares(ctx, recs, "o/"+owner+"/"+string(store.KindCalendar)+"/")
}

// proxyGrants lists the calendar-proxy grants of the owner's home
// (delegate.go); a store without records has none.
func (h *Handler) proxyGrants(ctx context.Context, owner string) ([]Share, error) {
	recs, err := h.records()
	if err != nil {
		return nil, nil
	}
	return listShares(ctx, recs, proxyGrantsPrefix(owner))
}

// proxyMembers lists the IDs of the users granted access a to the
// owner's calendar home or to any of the owner's calendars, sorted; a
// failure is logged and lists none.
func (h *Handler) proxyMembers(rq *request, owner string, a Access) []string {
	grants, err := h.calendarGrants(rq.ctx, owner)
	if err != nil {
		rq.log.Error("listing the grants of the user's calendars", "err", err)
	}
	homes, err := h.proxyGrants(rq.ctx, owner)
	if err != nil {
		rq.log.Error("listing the user's proxy grants", "err", err)
	}
	grants = append(grants, homes...)
	var out []string
	for _, g := range grants {
		if !g.Group && g.Access == a && !slices.Contains(out, g.Grantee) {
			out = append(out, g.Grantee)
		}
	}
	slices.Sort(out)
	return out
}

// errNotProxyMember refuses a group-member-set member that cannot be a
// proxy of the owner.
var errNotProxyMember = errors.New("not a user of the owner's tenant")

// proppatchProxy answers the owner's PROPPATCH of a proxy principal:
// only DAV:group-member-set may be set or removed (emptied); all the
// instructions are applied or none (RFC 4918 §9.2).
func (h *Handler) proppatchProxy(rq *request) error {
	body, err := h.readXML(rq.w, rq.r)
	if err != nil {
		return err
	}
	if body == nil || !body.is(nsDAV, "propertyupdate") {
		return &httpError{status: http.StatusBadRequest, msg: "PROPPATCH body must be DAV:propertyupdate"}
	}
	updates := parseUpdates(body.Children)
	statuses := make([]int, len(updates))
	var members []directory.User
	set, ok := false, true
	for i, u := range updates {
		statuses[i] = http.StatusOK
		switch {
		case !u.prop.is(nsDAV, "group-member-set"):
			statuses[i] = http.StatusForbidden // RFC 4918 §9.2.1: protected
		case u.remove:
			members, set = nil, true
		default:
			m, err := h.groupMemberSet(rq, u.prop)
			if errors.Is(err, errNotProxyMember) {
				rq.log.Info("group-member-set refused", "err", err)
				statuses[i] = http.StatusForbidden
			} else if err != nil {
				return err
			}
			members, set = m, true
		}
		ok = ok && statuses[i] == http.StatusOK
	}
	if !ok {
		for i, s := range statuses {
			if s == http.StatusOK {
				statuses[i] = http.StatusFailedDependency
			}
		}
	} else if set {
		err := h.setProxyMembers(rq, proxyAccess(rq.t.coll), members)
		if errors.Is(err, ErrSharingUnsupported) {
			return &httpError{status: http.StatusNotImplemented, msg: "sharing is not available"}
		}
		if err != nil {
			return err
		}
	}
	h.writePatchResult(rq, updates, statuses)
	return nil
}

// groupMemberSet resolves the hrefs of a group-member-set to users of
// the owner's tenant other than the owner (errNotProxyMember otherwise).
func (h *Handler) groupMemberSet(rq *request, prop *node) ([]directory.User, error) {
	var out []directory.User
	for _, c := range prop.Children {
		if !c.is(nsDAV, "href") {
			continue
		}
		u, err := h.proxyMember(rq, c.Text)
		if err != nil {
			return nil, err
		}
		if u.Tenant != rq.user.Tenant || u.ID == rq.user.ID {
			return nil, fmt.Errorf("%w: %s", errNotProxyMember, c.Text)
		}
		if !slices.ContainsFunc(out, func(o directory.User) bool { return o.ID == u.ID }) {
			out = append(out, u)
		}
	}
	if len(out) > maxShares {
		return nil, fmt.Errorf("%w: too many members", errNotProxyMember)
	}
	return out, nil
}

// proxyMember resolves one member href: a user principal's URL or a
// mailto: address.
func (h *Handler) proxyMember(rq *request, ref string) (directory.User, error) {
	bad := fmt.Errorf("%w: %s", errNotProxyMember, ref)
	if addr := mailtoAddress(ref); addr != "" {
		e, err := h.opts.Directory.LookupAddress(rq.ctx, addr)
		if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid) || (err == nil && e.User == nil) {
			return directory.User{}, bad
		}
		if err != nil {
			return directory.User{}, err
		}
		return *e.User, nil
	}
	t, err := h.hrefTarget(ref)
	ud, ok := h.opts.Directory.(userDirectory)
	if err != nil || t.kind != kindPrincipal || !ok {
		return directory.User{}, bad
	}
	u, err := ud.User(rq.ctx, t.user)
	if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid) {
		return directory.User{}, bad
	}
	return u, err
}

// setProxyMembers makes members the owner's (the user's) proxies of
// access a: each gets the calendar-proxy grant of access a to the
// owner's home (delegate.go), which covers every calendar the owner has
// or makes later and replaces a proxy grant of the other access; the
// grants of single calendars of a member who was no proxy of access a
// before are dropped, as the home grant replaces them. Users left out
// lose their proxy grant and their calendar grants of access a.
func (h *Handler) setProxyMembers(rq *request, a Access, members []directory.User) error {
	recs, err := h.records()
	if err != nil {
		return err
	}
	current := h.proxyMembers(rq, rq.user.ID, a)
	grants, err := h.calendarGrants(rq.ctx, rq.user.ID)
	if err != nil {
		return err
	}
	homes, err := h.proxyGrants(rq.ctx, rq.user.ID)
	if err != nil {
		return err
	}
	isMember := func(id string) bool {
		return slices.ContainsFunc(members, func(u directory.User) bool { return u.ID == id })
	}
	for _, g := range append(grants, homes...) {
		leftOut := g.Access == a && !isMember(g.Grantee)
		added := !g.Home && isMember(g.Grantee) && !slices.Contains(current, g.Grantee)
		if g.Group || !(leftOut || added) {
			continue
		}
		if err := deleteShare(rq.ctx, recs, g, rq.user.Tenant); err != nil {
			return err
		}
	}
	for _, u := range members {
		if err := putHomeGrant(rq.ctx, recs, rq.user, u, a); err != nil {
			return err
		}
	}
	return nil
}

func nsName(space, local string) xml.Name { return xml.Name{Space: space, Local: local} }
