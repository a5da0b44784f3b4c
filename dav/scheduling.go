package dav

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// Scheduling (RFC 6638): every calendar user has a schedule inbox, the
// store calendar collection "inbox" in their calendar home that receives
// scheduling messages (§2.2), and a schedule outbox, a virtual collection
// that accepts POST of free/busy requests (§2.1, §5). Calendar users are
// the directory's users and resources; the store account of either is
// its directory ID.

// Request statuses of scheduling (RFC 5546 §3.6, RFC 6638 §3.2.9 for
// SCHEDULE-STATUS).
const (
	statusSuccess     = "2.0;Success"
	statusPending     = "1.0;Pending"
	statusDelivered   = "1.2;Delivered"
	statusInvalidUser = "3.7;Invalid calendar user"
	statusNoAuthority = "3.8;No authority"
	statusUnavailable = "5.1;Service unavailable"
	statusNoSupport   = "5.3;No scheduling support for user"
)

// Calendar user types (RFC 5545 §3.2.3 CUTYPE, RFC 6638 §2.4.2).
const (
	cuIndividual = "INDIVIDUAL"
	cuRoom       = "ROOM"
	cuResource   = "RESOURCE"
)

// calUser is a local calendar user an address resolved to.
type calUser struct {
	account  string // store account: the user's or resource's directory ID
	tenant   string
	address  string // canonical address, without "mailto:"
	cuType   string
	resource *directory.Resource // set for rooms and equipment
}

// errNotCalendarUser: the address is not a local user or resource.
var errNotCalendarUser = errors.New("dav: not a local calendar user")

// errRemoteUser: the address is in a domain not hosted here.
var errRemoteUser = errors.New("dav: calendar user of another domain")

// mailtoAddress strips the mailto: scheme of a calendar-user address
// (RFC 6638 §2.4.1); other schemes give "".
func mailtoAddress(uri string) string {
	uri = strings.TrimSpace(uri)
	if len(uri) < 7 || !strings.EqualFold(uri[:7], "mailto:") {
		return ""
	}
	return strings.TrimSpace(uri[7:])
}

// lookupCalendarUser resolves a calendar-user address through the
// directory: errNotCalendarUser for unknown, malformed or non-mailto
// addresses and for groups and aliases of a hosted domain, errRemoteUser
// for addresses whose domain is not hosted here, any other error if the
// directory failed.
func (h *Handler) lookupCalendarUser(ctx context.Context, uri string) (calUser, error) {
	addr := mailtoAddress(uri)
	if addr == "" {
		return calUser{}, errNotCalendarUser
	}
	e, err := h.opts.Directory.LookupAddress(ctx, addr)
	return h.calendarUserOf(ctx, addr, e, err)
}

// lookupCalendarUsers is lookupCalendarUser of each uri, in one
// LookupAddresses call when the directory is an AddressesDirectory.
func (h *Handler) lookupCalendarUsers(ctx context.Context, uris []string) ([]calUser, []error) {
	cus, errs := make([]calUser, len(uris)), make([]error, len(uris))
	many, ok := h.opts.Directory.(AddressesDirectory)
	if !ok {
		for i, uri := range uris {
			cus[i], errs[i] = h.lookupCalendarUser(ctx, uri)
		}
		return cus, errs
	}
	var addrs []string
	var at []int // addrs[j] is uris[at[j]]'s
	for i, uri := range uris {
		if addr := mailtoAddress(uri); addr != "" {
			addrs, at = append(addrs, addr), append(at, i)
		} else {
			errs[i] = errNotCalendarUser
		}
	}
	if len(addrs) == 0 {
		return cus, errs
	}
	entries, lookupErrs := many.LookupAddresses(ctx, addrs)
	for j, i := range at {
		cus[i], errs[i] = h.calendarUserOf(ctx, addrs[j], entries[j], lookupErrs[j])
	}
	return cus, errs
}

// calendarUserOf is what lookupCalendarUser makes of the directory's
// answer e, err for addr.
func (h *Handler) calendarUserOf(ctx context.Context, addr string, e directory.Entry, err error) (calUser, error) {
	switch {
	case errors.Is(err, directory.ErrNotFound):
		if _, domErr := h.opts.Directory.LookupDomain(ctx, domainOf(addr)); errors.Is(domErr, directory.ErrNotFound) {
			return calUser{}, errRemoteUser
		}
		return calUser{}, errNotCalendarUser
	case errors.Is(err, directory.ErrInvalid):
		return calUser{}, errNotCalendarUser
	case err != nil:
		return calUser{}, fmt.Errorf("dav: looking up %s: %w", addr, err)
	}
	switch {
	case e.User != nil && !e.User.Disabled:
		return calUser{account: e.User.ID, tenant: e.User.Tenant, address: e.User.Address, cuType: cuIndividual}, nil
	case e.Resource != nil:
		cu := calUser{account: e.Resource.ID, tenant: e.Resource.Tenant, address: e.Resource.Address, cuType: cuResource, resource: e.Resource}
		if e.Resource.Kind == directory.ResourceRoom {
			cu.cuType = cuRoom
		}
		return cu, nil
	}
	return calUser{}, errNotCalendarUser
}

// domainOf is the domain part of an address.
func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return d
}

// isOwnAddress reports whether a calendar-user address is one of the
// user's (its calendar-user-address-set, RFC 6638 §2.4.1).
func isOwnAddress(u directory.User, uri string) bool {
	addr := mailtoAddress(uri)
	if addr == "" {
		return false
	}
	if strings.EqualFold(addr, u.Address) {
		return true
	}
	return slices.ContainsFunc(u.Aliases, func(a string) bool { return strings.EqualFold(a, addr) })
}

// ensureCalendarHome creates, when missing, the default calendar (if the
// account has no calendar besides its inbox) and the schedule inbox of
// an account, and returns the default calendar (RFC 6638 §9.2: "default"
// when it exists, else the first calendar that takes events) and the
// inbox. A concurrent creation is no error.
func (h *Handler) ensureCalendarHome(ctx context.Context, account string) (def, inbox store.Collection, err error) {
	colls, err := h.opts.Store.ListCollections(ctx, account, store.KindCalendar)
	if err != nil {
		return def, inbox, err
	}
	var haveDef, haveInbox bool
	for _, c := range colls {
		switch {
		case c.Name == inboxName:
			inbox, haveInbox = c, true
		case !haveDef && (c.Name == defaultName || takesEvents(c)):
			def, haveDef = c, true
		case c.Name == defaultName:
			def = c
		}
	}
	if !haveDef {
		def, err = h.createCollection(ctx, store.Collection{Account: account, Kind: store.KindCalendar, Name: defaultName,
			DisplayName: defaultCalendarDisplay, Components: []string{"VEVENT", "VTODO"}})
		if err != nil {
			return def, inbox, err
		}
	}
	if !haveInbox {
		inbox, err = h.createCollection(ctx, store.Collection{Account: account, Kind: store.KindCalendar, Name: inboxName,
			DisplayName: "Inbox", Components: calendarComponents()})
	}
	return def, inbox, err
}

// createCollection creates a collection, or loads it if a concurrent
// request created it first.
func (h *Handler) createCollection(ctx context.Context, c store.Collection) (store.Collection, error) {
	made, err := h.opts.Store.CreateCollection(ctx, c)
	if errors.Is(err, store.ErrExists) {
		return h.opts.Store.Collection(ctx, c.Account, c.Kind, c.Name)
	}
	return made, err
}

// takesEvents reports whether a calendar accepts VEVENTs.
func takesEvents(c store.Collection) bool {
	return len(c.Components) == 0 || slices.Contains(c.Components, "VEVENT")
}

// isInbox reports whether a target is the schedule inbox or in it.
func isInbox(t target) bool {
	return (t.kind == kindCalendar || t.kind == kindCalObject) && t.coll == inboxName
}

// propKind is the property table of a target: the inbox has its own.
func propKind(t target) kind {
	if t.kind == kindCalendar && t.coll == inboxName {
		return kindInbox
	}
	return t.kind
}

// resourceTypeOf is the DAV:resourcetype of a target (RFC 6638 §2.1.1,
// §2.2.1 for the outbox and inbox).
func resourceTypeOf(t target) []*node {
	switch {
	case t.kind == kindOutbox:
		return []*node{el(nsDAV, "collection"), el(nsCalDAV, "schedule-outbox")}
	case propKind(t) == kindInbox:
		return []*node{el(nsDAV, "collection"), el(nsCalDAV, "schedule-inbox")}
	case t.kind == kindProxy:
		return []*node{el(nsDAV, "principal"), el(nsCS, t.coll)} // caldav-proxy §5.2
	}
	return resourceType(t.kind)
}

// schedulePrivileges are the scheduling privileges (RFC 6638 §6) the
// owner has on the outbox (schedule-send) and the inbox
// (schedule-deliver).
func schedulePrivileges(t target) []*node {
	switch {
	case t.kind == kindOutbox:
		return []*node{el(nsDAV, "privilege", el(nsCalDAV, "schedule-send"))}
	case propKind(t) == kindInbox:
		return []*node{el(nsDAV, "privilege", el(nsCalDAV, "schedule-deliver"))}
	}
	return nil
}

// schedulePrincipalProps are the principal properties of RFC 6638 §2.1.1
// and §2.2.1: where the user's outbox and inbox are.
func schedulePrincipalProps() []propDef {
	hrefProp := func(local, coll string, k kind) propDef {
		name := xml.Name{Space: nsCalDAV, Local: local}
		return propDef{name: name, value: func(h *Handler, rq *request, _ *resource) *node {
			return &node{Name: name, Children: []*node{href(h.hrefOf(target{kind: k, user: rq.user.ID, coll: coll}))}}
		}}
	}
	return []propDef{
		hrefProp("schedule-inbox-URL", inboxName, kindCalendar),
		hrefProp("schedule-outbox-URL", outboxName, kindOutbox),
	}
}

// scheduleDefaultCalendarProp is the inbox's schedule-default-calendar-URL
// (RFC 6638 §9.2): where invitations are delivered.
func scheduleDefaultCalendarProp() propDef {
	name := xml.Name{Space: nsCalDAV, Local: "schedule-default-calendar-URL"}
	return propDef{name: name, value: func(h *Handler, rq *request, res *resource) *node {
		def, _, err := h.ensureCalendarHome(rq.ctx, res.t.user)
		if err != nil {
			rq.log.Error("default calendar", "err", err)
			return &node{Name: name}
		}
		return &node{Name: name, Children: []*node{href(h.hrefOf(target{kind: kindCalendar, user: res.t.user, coll: def.Name}))}}
	}}
}

// refuseInboxWrite refuses a PUT into the inbox, which only the server
// fills (RFC 6638 §2.2), and deleting the inbox itself.
func refuseInboxWrite(t target) error {
	if isInbox(t) {
		return precondition(http.StatusForbidden, nsDAV, "need-privileges", "the schedule inbox is filled by the server")
	}
	return nil
}
