package dav

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// Calendar-proxy delegation (CalendarServer's caldav-proxy, proxy.go).
// The owner's PROPPATCH of a proxy principal's group-member-set makes
// each member a read or read-write proxy of the owner's whole calendar
// home: one Share with Home set per owner and proxy (share.go keeps it
// under o/<owner>/proxy/ and u/<proxy>/proxy/). The grant covers every
// calendar of the home, those the owner makes later included, and a
// proxy finds them in two places:
//
//   - at the owner's own URLs, /dav/calendars/<owner>/..., which Apple
//     Calendar opens after reading the calendar-home-set of each
//     principal in its calendar-proxy-read-for and -write-for (a proxy
//     may read that property of the owner's principal,
//     principal_peer.go);
//   - in the proxy's own home as shared-<hex>-<name>, as every shared
//     calendar is (share.go), for clients without caldav-proxy.
//
// At the owner's URLs a proxy may do what CalendarServer's ACLs allow
// (twistedcaldav: the home's ACEs for calendar-proxy-read and -write
// are inherited by its calendars and the schedule inbox; the outbox
// grants CALDAV:schedule-send to calendar-proxy-write only):
//
//   - the calendar home: PROPFIND; Depth 1 lists the calendars the proxy
//     may read, the schedule inbox and the outbox;
//   - a calendar and its objects: PROPFIND, REPORT, GET with any grant
//     that covers it (the proxy grant, or a grant of that one calendar,
//     whichever gives more); PUT and DELETE of objects with read-write.
//     Those writes are scheduled as the owner's (RFC 6638 implicit
//     scheduling with the owner as calendar user), and the messages name
//     the proxy in SENT-BY (RFC 5545 §3.2.18; implicit.go), so a write
//     proxy answers invitations on the owner's behalf;
//   - the schedule inbox: read with the proxy grant, DELETE of its
//     messages with read-write;
//   - the outbox: POST of free/busy requests as the owner with
//     read-write (CALDAV:schedule-send, RFC 6638 §6.1.1);
//   - nothing else: making, deleting, sharing a calendar or changing its
//     properties stays the owner's (403 need-privileges, RFC 3744
//     §7.1.1), and so does everything outside the calendar home.
//
// A user who holds grants of some of the owner's calendars but no proxy
// grant (listed in the owner's proxy groups all the same, proxy.go)
// reaches those calendars only in their own home: the owner's URLs answer
// such a grantee 403, as before. A proxy's grants of single calendars
// count there too (a read proxy with a read-write grant of one calendar
// writes in it). The owner must be a user, a room or equipment of the
// requester's tenant when the request is made: grants outlive no tenant
// move. A room or equipment has no PROPPATCH of its own proxy groups
// (nobody logs in as it): [Handler.Delegate] makes its proxies.

// proxyKeyKind is the <kind> segment of the keys of calendar-proxy
// grants in NamespaceShares.
const proxyKeyKind = "proxy"

// proxyGrantsPrefix starts the keys of the owner's calendar-proxy
// grants (o/<owner>/proxy/u:<grantee>).
func proxyGrantsPrefix(owner string) string { return "o/" + owner + "/" + proxyKeyKind + "/" }

// delegationsPrefix starts the keys of the calendar-proxy grants a user
// holds (u/<grantee>/proxy/<owner>).
func delegationsPrefix(user string) string { return "u/" + user + "/" + proxyKeyKind + "/" }

// homeGrant reads the calendar-proxy grant of the owner's home to a
// user, nil if there is none.
func (h *Handler) homeGrant(ctx context.Context, recs store.Records, owner, user string) (*Share, error) {
	r, err := recs.GetRecord(ctx, NamespaceShares, proxyGrantsPrefix(owner)+"u:"+user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Share
	if err := store.DecodeJSON(r, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// putHomeGrant makes the user a calendar proxy of the owner's home with
// the access given, replacing a proxy grant of the other access.
func putHomeGrant(ctx context.Context, recs store.Records, owner directory.User, u directory.User, a Access) error {
	s := Share{Owner: owner.ID, OwnerAddress: owner.Address, Kind: store.KindCalendar, Grantee: u.ID,
		GranteeAddress: u.Address, Access: a, Home: true}
	return recs.UpdateRecords(ctx, func(tx store.RecordTx) error {
		for _, k := range s.keys(owner.Tenant) {
			if err := store.PutJSON(tx, NamespaceShares, k, s, -1); err != nil {
				return err
			}
		}
		return nil
	})
}

// delegatedCalendars lists, for every home the user is a calendar proxy
// of, the proxy grant once per calendar of the owner (Collection set),
// which sharedWithUser shows in the user's home.
func (h *Handler) delegatedCalendars(rq *request, recs store.Records) ([]Share, error) {
	homes, err := listShares(rq.ctx, recs, delegationsPrefix(rq.user.ID))
	if err != nil {
		return nil, err
	}
	var out []Share
	for _, g := range homes {
		colls, err := h.opts.Store.ListCollections(rq.ctx, g.Owner, store.KindCalendar)
		if err != nil {
			return nil, err
		}
		for _, c := range colls {
			if !reservedName(c.Name) {
				s := g
				s.Collection = c.Name
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// delegation is what the user may do in the calendar home of another
// user, the owner of the request's target, as the owner's calendar
// proxy.
type delegation struct {
	// proxy is false when the user is no calendar proxy of the owner.
	proxy bool
	owner directory.User
	// home is the calendar-proxy grant.
	home *Share
	// grants holds, per calendar that has grants of its own, the one
	// that gives the user the most access, the proxy grant included.
	grants map[string]*Share
}

// access is the grant that lets the user reach a collection of the
// owner's calendar home by name, nil if none does: the proxy grant, or
// for a calendar with grants of its own the best of those and the proxy
// grant; never a reserved name (the GAL, the collections shared with
// the owner) but the inbox and the outbox.
func (d *delegation) access(coll string) *Share {
	fromHome := func() *Share {
		s := *d.home
		s.Collection = coll
		return &s
	}
	switch {
	case coll == inboxName || coll == outboxName:
		return fromHome()
	case coll == "" || reservedName(coll):
		return nil
	case d.grants[coll] != nil:
		return d.grants[coll]
	}
	return fromHome()
}

// delegationFor resolves, once per request, the user's delegation to
// the owner of the request's target; nil when there is none.
func (h *Handler) delegationFor(rq *request) (*delegation, error) {
	if rq.delegation == nil {
		d, err := h.resolveDelegation(rq, rq.t.user)
		if err != nil {
			return nil, err
		}
		rq.delegation = d
	}
	if !rq.delegation.proxy {
		return nil, nil
	}
	return rq.delegation, nil
}

// resolveDelegation reads the user's proxy grant of the owner's home
// and the grants of the owner's calendars that apply to the user, and
// checks that the owner is still the user they name, of the user's
// tenant; without a proxy grant there is no delegation.
func (h *Handler) resolveDelegation(rq *request, owner string) (*delegation, error) {
	none := &delegation{}
	recs, err := h.records()
	if err != nil {
		return none, nil
	}
	home, err := h.homeGrant(rq.ctx, recs, owner, rq.user.ID)
	if err != nil || home == nil {
		return none, err
	}
	all, err := h.calendarGrants(rq.ctx, owner)
	if err != nil {
		return nil, err
	}
	byColl := map[string][]Share{}
	for _, g := range all {
		byColl[g.Collection] = append(byColl[g.Collection], g)
	}
	d := &delegation{home: home, grants: map[string]*Share{}}
	for coll, gs := range byColl {
		hg := *home
		hg.Collection = coll
		best, err := h.bestGrant(rq, append(gs, hg))
		if err != nil {
			return nil, err
		}
		d.grants[coll] = best
	}
	u, ok, err := h.grantOwner(rq, owner, home.OwnerAddress)
	if err != nil || !ok {
		return none, err
	}
	d.proxy, d.owner = true, u
	rq.owner = &d.owner // scheduling acts as the owner (share.go scheduler)
	return d, nil
}

// grantOwner finds the owner of grants by ID (or, over a directory that
// cannot, by the address the grants recorded): a user, or a room or
// equipment (resourceOwner); ok is false when the owner is gone or not
// of the requester's tenant.
func (h *Handler) grantOwner(rq *request, id, addr string) (directory.User, bool, error) {
	var u directory.User
	var err error
	if ud, ok := h.opts.Directory.(userDirectory); ok {
		u, err = ud.User(rq.ctx, id)
		if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid) {
			// A room's or equipment's calendar is delegated as a user's.
			r, rerr := h.peerResource(rq, id)
			if rerr == nil {
				return resourceOwner(r), true, nil
			}
			if !errors.Is(rerr, errNotPeer) {
				return u, false, rerr
			}
		}
	} else {
		var e directory.Entry
		e, err = h.opts.Directory.LookupAddress(rq.ctx, addr)
		if err == nil {
			u, _ = grantsOwner(e)
		}
	}
	if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid) {
		return u, false, nil
	}
	if err != nil {
		return u, false, err
	}
	return u, u.ID == id && u.Tenant == rq.user.Tenant, nil
}

// holdsProxyGrant reports whether the user is a calendar proxy of the
// owner: holds the proxy grant of the owner's home.
func (h *Handler) holdsProxyGrant(rq *request, owner string) bool {
	recs, err := h.records()
	if err != nil {
		return false
	}
	g, err := h.homeGrant(rq.ctx, recs, owner, rq.user.ID)
	if err != nil {
		rq.log.Error("reading a proxy grant", "err", err)
	}
	return g != nil
}

// errNotYours refuses a path of another user that no grant opens.
var errNotYours = precondition(http.StatusForbidden, nsDAV, "need-privileges", "not your resource")

// checkDelegate decides a request for another user's resource (other
// than their principal, principal_peer.go): a calendar proxy of the
// owner may do what the comment above lists; everything else is 403. An allowed request runs with rq.share set to the grant,
// so that its writes are scheduled as the owner's.
func (h *Handler) checkDelegate(rq *request) error {
	t := rq.t
	switch t.kind {
	case kindCalHome, kindCalendar, kindCalObject, kindOutbox:
	default:
		return errNotYours
	}
	d, err := h.delegationFor(rq)
	if err != nil {
		return err
	}
	if d == nil {
		return errNotYours
	}
	m := rq.r.Method
	if t.kind == kindCalHome {
		if m == "PROPFIND" {
			return nil
		}
		return needPrivileges(h.hrefOf(t), "bind")
	}
	g := d.access(t.coll)
	if g == nil {
		return errNotYours
	}
	rq.share = &shareRef{Share: *g}
	write := g.Access == AccessReadWrite
	priv := ""
	switch {
	case m == "PROPFIND" || m == "REPORT" || m == http.MethodGet || m == http.MethodHead:
		return nil
	case t.kind == kindOutbox && m == http.MethodPost:
		if write {
			return nil
		}
		priv = "schedule-send"
	case t.kind == kindCalObject && (m == http.MethodPut || m == http.MethodDelete):
		if write {
			return nil
		}
		priv = "write-content"
		if m == http.MethodDelete {
			priv = "unbind"
		}
	case m == "PROPPATCH":
		priv = "write-properties"
	case m == http.MethodDelete:
		priv = "unbind" // the collection itself
	case m == http.MethodPost:
		priv = "share"
	default:
		priv = "bind" // MKCOL, MKCALENDAR
	}
	if priv == "schedule-send" {
		return precondition(http.StatusForbidden, nsDAV, "need-privileges", "read-only proxy",
			el(nsDAV, "resource", textEl(nsDAV, "href", h.hrefOf(t)), el(nsDAV, "privilege", el(nsCalDAV, priv))))
	}
	return needPrivileges(h.hrefOf(t), priv)
}

// checkDelegatedTarget refuses a target in another user's home (a
// multiget's href) that the request's delegation does not reach.
func (h *Handler) checkDelegatedTarget(rq *request, t target) error {
	if t.user != rq.t.user {
		return errNotYours
	}
	d, err := h.delegationFor(rq)
	if err != nil {
		return err
	}
	if d == nil || d.access(t.coll) == nil {
		return errNotYours
	}
	return nil
}

// delegateAccess is the access the user has to a target in another
// user's calendar home (AccessRead when no grant names it).
func (h *Handler) delegateAccess(rq *request, t target) Access {
	if d, err := h.delegationFor(rq); err == nil && d != nil && t.user == rq.t.user {
		if g := d.access(t.coll); g != nil {
			return g.Access
		}
	}
	return AccessRead
}

// walkDelegatedHome lists, for a PROPFIND Depth 1 of another user's
// calendar home, the collections the user's delegation reaches.
func (h *Handler) walkDelegatedHome(rq *request, fn func(*resource) error) error {
	d, err := h.delegationFor(rq)
	if err != nil || d == nil {
		return err
	}
	colls, err := h.opts.Store.ListCollections(rq.ctx, rq.t.user, store.KindCalendar)
	if err != nil {
		return err
	}
	for i := range colls {
		if d.access(colls[i].Name) == nil {
			continue
		}
		if err := fn(&resource{t: target{kind: kindCalendar, user: rq.t.user, coll: colls[i].Name}, coll: &colls[i]}); err != nil {
			return err
		}
	}
	if d.access(outboxName) != nil {
		return fn(&resource{t: target{kind: kindOutbox, user: rq.t.user, coll: outboxName}})
	}
	return nil
}

// Delegate makes proxy (a user's address) a calendar proxy of owner with
// the access given, as the owner's PROPPATCH of a proxy principal's
// group-member-set does for each member: the grant covers the owner's
// whole calendar home, calendars made later included, and replaces a
// proxy grant of the other access. The owner is a user's address or a
// room's or equipment's (directory.Resource): nobody logs in as a
// resource, so this is how an administrator makes its delegates
// (booking managers), who then read (and with read-write write) its
// calendar at its own URLs and in their home, while everyone else sees
// only its free/busy. Owner and proxy must be of one tenant.
func (h *Handler) Delegate(ctx context.Context, owner, proxy string, access Access) (Share, error) {
	recs, err := h.records()
	if err != nil {
		return Share{}, err
	}
	if access != AccessRead && access != AccessReadWrite {
		return Share{}, fmt.Errorf("%w: access %q is neither read nor read-write", ErrShareInvalid, access)
	}
	o, p, err := h.delegationParties(ctx, owner, proxy)
	if err != nil {
		return Share{}, err
	}
	if err := putHomeGrant(ctx, recs, o, p, access); err != nil {
		return Share{}, err
	}
	return Share{Owner: o.ID, OwnerAddress: o.Address, Kind: store.KindCalendar, Grantee: p.ID,
		GranteeAddress: p.Address, Access: access, Home: true}, nil
}

// Undelegate takes the calendar-proxy grant of owner's home (see
// [Handler.Delegate]) from proxy. Grants of single calendars stay
// ([Handler.Unshare] takes those); removing a grant that does not exist
// is no error.
func (h *Handler) Undelegate(ctx context.Context, owner, proxy string) error {
	recs, err := h.records()
	if err != nil {
		return err
	}
	o, p, err := h.delegationParties(ctx, owner, proxy)
	if err != nil {
		return err
	}
	return deleteShare(ctx, recs, Share{Owner: o.ID, Grantee: p.ID, Home: true}, o.Tenant)
}

// delegationParties resolves the owner (a user, room or equipment) and
// the proxy (another user of the owner's tenant) of a calendar-proxy
// grant.
func (h *Handler) delegationParties(ctx context.Context, owner, proxy string) (o, p directory.User, err error) {
	oe, err := h.shareParty(ctx, owner)
	if err != nil {
		return o, p, err
	}
	o, ok := grantsOwner(oe)
	if !ok {
		return o, p, fmt.Errorf("%w: the owner %s is no user, room or equipment", ErrShareInvalid, owner)
	}
	pe, err := h.shareParty(ctx, proxy)
	if err != nil {
		return o, p, err
	}
	switch {
	case pe.User == nil:
		return o, p, fmt.Errorf("%w: the proxy %s is no user", ErrShareInvalid, proxy)
	case pe.User.Tenant != o.Tenant:
		return o, p, fmt.Errorf("%w: %s is of another tenant", ErrShareInvalid, proxy)
	case pe.User.ID == o.ID:
		return o, p, fmt.Errorf("%w: the owner has the calendar home already", ErrShareInvalid)
	}
	return o, *pe.User, nil
}
