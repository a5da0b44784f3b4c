package dav

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// Sharing (issue 14 item 8). An owner (a user, or a room or equipment
// through an administrator, principal_resource.go) grants a colleague of the same
// tenant, or a group of it, read or read-write access to one calendar or
// address book. The grantee finds the collection in their own home as
// "shared-<hex of the owner's ID>-<collection>" (reserved: no client may
// create a collection of that form), with a current-user-privilege-set
// that says what the grant allows (RFC 3744 §5.4). A read-only grantee's
// PUT and DELETE get 403 need-privileges (§7.1.1); a read-write
// grantee's writes are scheduled as the owner's (RFC 6638 implicit
// scheduling runs with the owner as the calendar user), so a delegate
// with read-write access answers invitations on the owner's behalf. A
// grantee's DELETE of the shared collection removes their own grant
// (declines the share); PROPPATCH of it is refused. The owner's paths
// stay the owner's, other users get 403 there, except that the owner's
// calendar proxies reach the calendar home (delegate.go). Free/busy
// is not a grant: every colleague of the tenant may ask for it (the
// schedule outbox, [FreeBusy]).
//
// Grants are made through [Handler.Share] and [Handler.Unshare] (the
// reference server's `mailserver share`) or by the owner's POST of a
// CalendarServer CS:share or a draft-pot-webdav-resource-sharing
// DAV:share-resource body to the collection; the collection's CS:invite
// and DAV:sharees properties list them.

// NamespaceShares is the store.Records namespace of sharing grants. Each
// grant is one JSON [Share] kept under three keys, written and deleted
// together:
//
//	o/<ownerID>/<kind>/<collection>/<grantee>   the collection's grants
//	u/<granteeUserID>/<kind>/<ownerID>/<collection>   a user's shares
//	g/<tenant>/<kind>/<groupID>/<ownerID>/<collection>   a tenant's group shares
//
// where <kind> is "calendar" or "addressbook" and <grantee> is "u:" and
// a user ID or "g:" and a group ID. A calendar-proxy grant (Share.Home,
// delegate.go) covers a whole calendar home and is kept under two keys:
//
//	o/<ownerID>/proxy/u:<granteeUserID>   the owner's proxies
//	u/<granteeUserID>/proxy/<ownerID>     the homes a user is a proxy of
const NamespaceShares = "dav.share"

// Namespaces returns the store.Records namespaces package dav owns, for
// a check that no two owners claim one.
func Namespaces() []string { return []string{NamespaceShares, NamespaceProps} }

// Access is what a grant allows.
type Access string

// Access levels of a [Share].
const (
	// AccessRead allows reading the collection and its objects.
	AccessRead Access = "read"
	// AccessReadWrite also allows creating, changing and deleting its
	// objects.
	AccessReadWrite Access = "read-write"
)

// Share is one grant of a collection to a user or a group.
type Share struct {
	Owner        string // the owner's user or resource ID, the store account of the collection
	OwnerAddress string
	Kind         store.CollectionKind
	Collection   string // the collection's name in the owner's home
	// Grantee is the user ID, or with Group the group ID, granted.
	Grantee        string
	GranteeAddress string
	Group          bool
	Access         Access
	// Home marks a calendar-proxy grant (delegate.go): it covers every
	// calendar of the owner's home, those made later included, and the
	// schedule inbox and outbox; Collection is empty and the grantee a
	// user.
	Home bool `json:",omitempty"`
}

// Errors of [Handler.Share] and [Handler.Unshare].
var (
	// ErrSharingUnsupported: Options.Store keeps no store.Records.
	ErrSharingUnsupported = errors.New("dav: the store keeps no records, so nothing can be shared")
	// ErrShareInvalid: the owner, grantee, collection or access cannot
	// be shared that way.
	ErrShareInvalid = errors.New("dav: invalid share")
)

// maxShares bounds the grants one listing reads (the shares of one home,
// the grants of one collection).
const maxShares = 1000

// maxGroupDepth bounds the nesting of groups followed to find a member.
const maxGroupDepth = 3

// sharePrefix starts the name a shared collection has in a grantee's home.
const sharePrefix = "shared-"

// shareName is the name of an owner's collection in a grantee's home.
func shareName(owner, coll string) string {
	return sharePrefix + hex.EncodeToString([]byte(owner)) + "-" + coll
}

// parseShareName splits a shared collection's name; ok is false for any
// other name.
func parseShareName(name string) (owner, coll string, ok bool) {
	rest, found := strings.CutPrefix(name, sharePrefix)
	if !found {
		return "", "", false
	}
	h, coll, found := strings.Cut(rest, "-")
	b, err := hex.DecodeString(h)
	if !found || err != nil || len(b) == 0 || coll == "" {
		return "", "", false
	}
	return string(b), coll, true
}

func (s Share) granteeKey() string {
	if s.Group {
		return "g:" + s.Grantee
	}
	return "u:" + s.Grantee
}

// keys are the record keys of a grant (NamespaceShares).
func (s Share) keys(tenant string) []string {
	if s.Home {
		return []string{proxyGrantsPrefix(s.Owner) + s.granteeKey(), delegationsPrefix(s.Grantee) + s.Owner}
	}
	k := string(s.Kind)
	out := []string{"o/" + s.Owner + "/" + k + "/" + s.Collection + "/" + s.granteeKey()}
	if s.Group {
		return append(out, "g/"+tenant+"/"+k+"/"+s.Grantee+"/"+s.Owner+"/"+s.Collection)
	}
	return append(out, "u/"+s.Grantee+"/"+k+"/"+s.Owner+"/"+s.Collection)
}

func (h *Handler) records() (store.Records, error) {
	r, ok := h.opts.Store.(store.Records)
	if !ok {
		return nil, ErrSharingUnsupported
	}
	return r, nil
}

// shareParty resolves the owner or grantee address of a grant.
func (h *Handler) shareParty(ctx context.Context, addr string) (directory.Entry, error) {
	e, err := h.opts.Directory.LookupAddress(ctx, strings.TrimSpace(addr))
	if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid) {
		return e, fmt.Errorf("%w: %s is no user or group here", ErrShareInvalid, addr)
	}
	return e, err
}

// Share grants grantee (a user's or a group's address) access to the
// owner's collection of the given kind and name; a grant that exists is
// changed to the new access. The owner is a user's address, or a room's
// or equipment's (directory.Resource), whose calendar nobody else can
// share: an administrator grants its booking managers access this way
// (or with [Handler.Delegate]), and everyone else keeps seeing only its
// free/busy. Owner and grantee must be of one tenant; the schedule inbox
// and the global address list cannot be shared.
func (h *Handler) Share(ctx context.Context, owner string, kind store.CollectionKind, coll, grantee string, access Access) (Share, error) {
	recs, err := h.records()
	if err != nil {
		return Share{}, err
	}
	if access != AccessRead && access != AccessReadWrite {
		return Share{}, fmt.Errorf("%w: access %q is neither read nor read-write", ErrShareInvalid, access)
	}
	s, tenant, err := h.shareOf(ctx, owner, kind, coll, grantee)
	if err != nil {
		return Share{}, err
	}
	if strings.EqualFold(coll, inboxName) || strings.EqualFold(coll, galName) {
		return Share{}, fmt.Errorf("%w: %s cannot be shared", ErrShareInvalid, coll)
	}
	if _, err := h.opts.Store.Collection(ctx, s.Owner, kind, coll); errors.Is(err, store.ErrNotFound) {
		return Share{}, fmt.Errorf("%w: %s has no %s %q", ErrShareInvalid, owner, kind, coll)
	} else if err != nil {
		return Share{}, err
	}
	s.Access = access
	err = recs.UpdateRecords(ctx, func(tx store.RecordTx) error {
		for _, k := range s.keys(tenant) {
			if err := store.PutJSON(tx, NamespaceShares, k, s, -1); err != nil {
				return err
			}
		}
		return nil
	})
	return s, err
}

// shareOf resolves the parties of a grant: the owner must be a user, a
// room or equipment (grantsOwner), the grantee another user or a group
// of the owner's tenant.
func (h *Handler) shareOf(ctx context.Context, owner string, kind store.CollectionKind, coll, grantee string) (Share, string, error) {
	if kind != store.KindCalendar && kind != store.KindAddressBook {
		return Share{}, "", fmt.Errorf("%w: kind %q", ErrShareInvalid, kind)
	}
	if !safeSegment(coll) {
		return Share{}, "", fmt.Errorf("%w: collection name %q", ErrShareInvalid, coll)
	}
	o, err := h.shareParty(ctx, owner)
	if err != nil {
		return Share{}, "", err
	}
	ou, ok := grantsOwner(o)
	if !ok {
		return Share{}, "", fmt.Errorf("%w: the owner %s is no user, room or equipment", ErrShareInvalid, owner)
	}
	g, err := h.shareParty(ctx, grantee)
	if err != nil {
		return Share{}, "", err
	}
	s := Share{Owner: ou.ID, OwnerAddress: ou.Address, Kind: kind, Collection: coll}
	var tenant string
	switch {
	case g.User != nil:
		s.Grantee, s.GranteeAddress, tenant = g.User.ID, g.User.Address, g.User.Tenant
	case g.Group != nil:
		s.Grantee, s.GranteeAddress, s.Group, tenant = g.Group.ID, g.Group.Address, true, g.Group.Tenant
	default:
		return Share{}, "", fmt.Errorf("%w: %s is no user or group", ErrShareInvalid, grantee)
	}
	if tenant != ou.Tenant {
		return Share{}, "", fmt.Errorf("%w: %s is of another tenant", ErrShareInvalid, grantee)
	}
	if s.Grantee == s.Owner {
		return Share{}, "", fmt.Errorf("%w: the owner has the collection already", ErrShareInvalid)
	}
	return s, tenant, nil
}

// Unshare removes the grant of the owner's collection to grantee (a
// user's or a group's address). Removing a grant that does not exist is
// no error.
func (h *Handler) Unshare(ctx context.Context, owner string, kind store.CollectionKind, coll, grantee string) error {
	recs, err := h.records()
	if err != nil {
		return err
	}
	s, tenant, err := h.shareOf(ctx, owner, kind, coll, grantee)
	if err != nil {
		return err
	}
	return deleteShare(ctx, recs, s, tenant)
}

func deleteShare(ctx context.Context, recs store.Records, s Share, tenant string) error {
	return recs.UpdateRecords(ctx, func(tx store.RecordTx) error {
		for _, k := range s.keys(tenant) {
			if err := tx.Delete(NamespaceShares, k); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return nil
	})
}

// dropGrants removes every grant of a collection its owner deleted, so
// that a new collection of the same name is not shared by the old
// grants.
func (h *Handler) dropGrants(ctx context.Context, owner directory.User, kind store.CollectionKind, coll string) error {
	recs, err := h.records()
	if err != nil {
		return nil
	}
	grants, err := listShares(ctx, recs, "o/"+owner.ID+"/"+string(kind)+"/"+coll+"/")
	if err != nil {
		return err
	}
	for _, g := range grants {
		if err := deleteShare(ctx, recs, g, owner.Tenant); err != nil {
			return err
		}
	}
	return nil
}

// Shares lists the grants of the owner's (the address of a user, a room
// or equipment) collections,
// and the calendar-proxy grants of the owner's home (Home set, Collection
// empty), which the owner changes through the proxy principals'
// group-member-set (proxy.go), not [Handler.Unshare].
func (h *Handler) Shares(ctx context.Context, owner string) ([]Share, error) {
	recs, err := h.records()
	if err != nil {
		return nil, err
	}
	o, err := h.shareParty(ctx, owner)
	if err != nil {
		return nil, err
	}
	ou, ok := grantsOwner(o)
	if !ok {
		return nil, fmt.Errorf("%w: %s is no user, room or equipment", ErrShareInvalid, owner)
	}
	return listShares(ctx, recs, "o/"+ou.ID+"/")
}

// listShares reads the grants under a key prefix, at most maxShares.
func listShares(ctx context.Context, recs store.Records, prefix string) ([]Share, error) {
	var out []Share
	after := prefix
	for len(out) < maxShares {
		rs, err := recs.ListRecords(ctx, NamespaceShares, after, 100)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if !strings.HasPrefix(r.Key, prefix) {
				return out, nil
			}
			var s Share
			if err := store.DecodeJSON(r, &s); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		if len(rs) < 100 {
			break
		}
		after = rs[len(rs)-1].Key
	}
	return out, nil
}

// shareRef is a shared collection as one grantee reaches it.
type shareRef struct {
	Share
	coll store.Collection
}

// memberships caches, for one request, whether the user is in a group.
type memberships map[string]bool

// inGroup reports whether u is a member of the group with the given ID
// and address, directly or through groups nested at most maxGroupDepth
// deep. A group renamed since the grant (another ID at the address) has
// no members.
func (h *Handler) inGroup(ctx context.Context, u directory.User, id, addr string, depth int, seen map[string]bool) (bool, error) {
	e, err := h.opts.Directory.LookupAddress(ctx, addr)
	if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if e.Group == nil || (id != "" && e.Group.ID != id) || e.Group.Tenant != u.Tenant || seen[e.Group.ID] {
		return false, nil
	}
	seen[e.Group.ID] = true
	if slices.ContainsFunc(e.Group.Members, func(m string) bool { return isOwnAddress(u, "mailto:"+m) }) {
		return true, nil
	}
	if depth >= maxGroupDepth {
		return false, nil
	}
	for _, m := range e.Group.Members {
		if in, err := h.inGroup(ctx, u, "", m, depth+1, seen); in || err != nil {
			return in, err
		}
	}
	return false, nil
}

func (h *Handler) member(rq *request, s Share) (bool, error) {
	if rq.groups == nil {
		rq.groups = memberships{}
	}
	if in, ok := rq.groups[s.Grantee]; ok {
		return in, nil
	}
	in, err := h.inGroup(rq.ctx, rq.user, s.Grantee, s.GranteeAddress, 0, map[string]bool{})
	if err != nil {
		return false, err
	}
	rq.groups[s.Grantee] = in
	return in, nil
}

// bestGrant keeps, of the grants that apply to the user, the one with
// the most access.
func (h *Handler) bestGrant(rq *request, grants []Share) (*Share, error) {
	var best *Share
	for i := range grants {
		s := grants[i]
		if s.Group {
			in, err := h.member(rq, s)
			if err != nil {
				return nil, err
			}
			if !in {
				continue
			}
		} else if s.Grantee != rq.user.ID {
			continue
		}
		// More access wins; of equal grants the first, a collection's
		// own before a calendar-proxy grant (which a grantee cannot
		// decline, checkShared).
		if best == nil || (best.Access != AccessReadWrite && s.Access == AccessReadWrite) {
			best = &s
		}
	}
	return best, nil
}

// shareFor resolves a shared collection in the user's home (t.coll is a
// share name): 404 when no grant of it applies to the user or the owner's
// collection is gone. Resolutions are kept for the request.
func (h *Handler) shareFor(rq *request, t target) (*shareRef, error) {
	if ref, ok := rq.shares[t.coll]; ok {
		return ref, nil
	}
	notFound := &httpError{status: http.StatusNotFound, msg: "no such collection"}
	owner, coll, ok := parseShareName(t.coll)
	if !ok || t.user != rq.user.ID {
		return nil, notFound
	}
	recs, err := h.records()
	if err != nil {
		return nil, notFound
	}
	grants, err := listShares(rq.ctx, recs, "o/"+owner+"/"+string(t.collKind())+"/"+coll+"/")
	if err != nil {
		return nil, err
	}
	if t.collKind() == store.KindCalendar && !reservedName(coll) {
		// A calendar-proxy grant covers every calendar of the owner.
		hg, err := h.homeGrant(rq.ctx, recs, owner, rq.user.ID)
		if err != nil {
			return nil, err
		}
		if hg != nil {
			hg.Collection = coll
			grants = append(grants, *hg)
		}
	}
	best, err := h.bestGrant(rq, grants)
	if err != nil {
		return nil, err
	}
	if best == nil {
		return nil, notFound
	}
	c, err := h.opts.Store.Collection(rq.ctx, owner, t.collKind(), coll)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	ref := &shareRef{Share: *best, coll: c}
	if rq.shares == nil {
		rq.shares = map[string]*shareRef{}
	}
	rq.shares[t.coll] = ref
	return ref, nil
}

// sharedWithUser lists the collections of a kind shared with the user,
// directly or through a group, one per collection with the most access
// granted.
func (h *Handler) sharedWithUser(rq *request, kind store.CollectionKind) ([]*shareRef, error) {
	recs, err := h.records()
	if err != nil {
		return nil, nil
	}
	direct, err := listShares(rq.ctx, recs, "u/"+rq.user.ID+"/"+string(kind)+"/")
	if err != nil {
		return nil, err
	}
	groups, err := listShares(rq.ctx, recs, "g/"+rq.user.Tenant+"/"+string(kind)+"/")
	if err != nil {
		return nil, err
	}
	all := append(direct, groups...)
	if kind == store.KindCalendar {
		// Each calendar of a home the user is a calendar proxy of.
		homes, err := h.delegatedCalendars(rq, recs)
		if err != nil {
			return nil, err
		}
		all = append(all, homes...)
	}
	byName := map[string][]Share{}
	var names []string
	for _, s := range all {
		n := shareName(s.Owner, s.Collection)
		if _, ok := byName[n]; !ok {
			names = append(names, n)
		}
		byName[n] = append(byName[n], s)
	}
	slices.Sort(names)
	var out []*shareRef
	for _, n := range names {
		best, err := h.bestGrant(rq, byName[n])
		if err != nil {
			return nil, err
		}
		if best == nil {
			continue
		}
		c, err := h.opts.Store.Collection(rq.ctx, best.Owner, kind, best.Collection)
		if errors.Is(err, store.ErrNotFound) {
			continue // the owner deleted it
		}
		if err != nil {
			return nil, err
		}
		ref := &shareRef{Share: *best, coll: c}
		if rq.shares == nil {
			rq.shares = map[string]*shareRef{}
		}
		rq.shares[n] = ref
		out = append(out, ref)
	}
	return out, nil
}

// isShared reports whether a target is in a collection shared with the
// user (a share name in the user's home).
func isShared(t target) bool {
	switch t.kind {
	case kindCalendar, kindCalObject, kindBook, kindCard:
		_, _, ok := parseShareName(t.coll)
		return ok
	}
	return false
}

// checkShared resolves the shared collection a request addresses and
// refuses what its grant does not allow: writes of a read-only grantee
// (RFC 3744 §7.1.1 need-privileges) and PROPPATCH of the collection by
// anyone but its owner. A grantee's DELETE of the collection declines
// the share: their own grant is removed (a group's grant stays).
func (h *Handler) checkShared(rq *request) (handled bool, err error) {
	if m := rq.r.Method; m == "MKCOL" || m == "MKCALENDAR" {
		return false, precondition(http.StatusForbidden, nsDAV, "resource-must-be-null", "the name "+rq.t.coll+" is reserved")
	}
	ref, err := h.shareFor(rq, rq.t)
	if err != nil {
		return false, err
	}
	rq.share = ref
	m := rq.r.Method
	collection := rq.t.kind == kindCalendar || rq.t.kind == kindBook
	switch {
	case m == "PROPPATCH":
		return false, needPrivileges(h.hrefOf(rq.t), "write-properties")
	case m == http.MethodDelete && collection:
		if ref.Group || ref.Home {
			// A group's grant is the group's; a proxy grant is the
			// owner's to revoke (proxy.go).
			return false, needPrivileges(h.hrefOf(rq.t), "unbind")
		}
		recs, err := h.records()
		if err != nil {
			return false, err
		}
		if err := deleteShare(rq.ctx, recs, ref.Share, rq.user.Tenant); err != nil {
			return false, err
		}
		rq.w.WriteHeader(http.StatusNoContent)
		return true, nil
	case (m == http.MethodPut || m == http.MethodDelete) && ref.Access != AccessReadWrite:
		priv := "write-content"
		if m == http.MethodDelete {
			priv = "unbind"
		}
		return false, needPrivileges(h.hrefOf(rq.t), priv)
	}
	return false, nil
}

// scheduler is the calendar user a request's scheduling acts as: the
// owner (a user, a room or equipment) of a shared calendar written by a
// grantee, else the user.
func (h *Handler) scheduler(rq *request) directory.User {
	if rq.share == nil || rq.share.Kind != store.KindCalendar {
		return rq.user
	}
	if rq.owner != nil {
		return *rq.owner
	}
	e, err := h.opts.Directory.LookupAddress(rq.ctx, rq.share.OwnerAddress)
	owner, ok := grantsOwner(e)
	if err != nil || !ok || owner.ID != rq.share.Owner {
		rq.log.Warn("the owner of a shared calendar is gone; scheduling as the grantee", "owner", rq.share.Owner, "err", err)
		return rq.user
	}
	rq.owner = &owner
	return owner
}

// grantsOwner is the owner of grants a directory entry is: a user, or a
// room or equipment as resourceOwner makes it; ok is false for anything
// else.
func grantsOwner(e directory.Entry) (directory.User, bool) {
	switch {
	case e.User != nil:
		return *e.User, true
	case e.Resource != nil:
		return resourceOwner(*e.Resource), true
	}
	return directory.User{}, false
}
