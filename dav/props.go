package dav

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// resource is one resource a method answers about.
type resource struct {
	t    target
	coll *store.Collection // for collections and objects
	obj  *store.Object     // for objects
}

// propDef is one live property: its name, whether allprop returns it
// (RFC 4918 §9.1: the properties RFC 4918 defines; the costlier
// CalDAV/CardDAV ones only when asked for) and how its value is made.
type propDef struct {
	name    xml.Name
	allprop bool
	value   func(h *Handler, rq *request, res *resource) *node
}

// syncTokenPrefix makes a store sync token a URI (RFC 6578 §3.2).
const syncTokenPrefix = "http://mailyard.org/ns/sync/"

func syncTokenURI(n uint64) string { return syncTokenPrefix + strconv.FormatUint(n, 10) }

// calendarComponents are the components a calendar without a
// restriction accepts.
func calendarComponents() []string { return []string{"VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY"} }

// propTable builds the live properties of each kind of resource.
func propTable() map[kind][]propDef {
	n := func(space, local string) xml.Name { return xml.Name{Space: space, Local: local} }
	def := func(space, local string, allprop bool, v func(h *Handler, rq *request, res *resource) []*node) propDef {
		name := n(space, local)
		return propDef{name: name, allprop: allprop, value: func(h *Handler, rq *request, res *resource) *node {
			return &node{Name: name, Children: v(h, rq, res)}
		}}
	}
	text := func(space, local string, allprop bool, v func(h *Handler, rq *request, res *resource) string) propDef {
		name := n(space, local)
		return propDef{name: name, allprop: allprop, value: func(h *Handler, rq *request, res *resource) *node {
			return &node{Name: name, Text: v(h, rq, res)}
		}}
	}
	principalHref := func(h *Handler, rq *request, _ *resource) []*node {
		return []*node{href(h.hrefOf(target{kind: kindPrincipal, user: rq.user.ID}))}
	}
	common := []propDef{
		def(nsDAV, "resourcetype", true, func(h *Handler, rq *request, res *resource) []*node {
			return append(resourceTypeOf(res.t), h.sharedType(rq, res)...)
		}),
		def(nsDAV, "current-user-principal", false, principalHref),
		def(nsDAV, "current-user-privilege-set", false, func(h *Handler, rq *request, res *resource) []*node { return h.privileges(rq, res) }),
	}
	owned := append(common[:len(common):len(common)], def(nsDAV, "owner", false, func(h *Handler, rq *request, res *resource) []*node {
		if res.coll != nil && res.coll.Account != "" {
			// A shared collection's owner is another user.
			return []*node{href(h.hrefOf(target{kind: kindPrincipal, user: res.coll.Account}))}
		}
		if res.t.user != "" {
			// A home or outbox, the user's or (for a proxy) another's.
			return []*node{href(h.hrefOf(target{kind: kindPrincipal, user: res.t.user}))}
		}
		return principalHref(h, rq, res)
	}))
	collection := append(owned[:len(owned):len(owned)],
		text(nsDAV, "displayname", true, func(h *Handler, rq *request, res *resource) string {
			name := res.coll.DisplayName
			if name == "" {
				name = res.coll.Name
			}
			if isShared(res.t) {
				// The grantee's own "Calendar" and the owner's are told apart.
				if ref, err := h.shareFor(rq, res.t); err == nil {
					name += " (" + ref.OwnerAddress + ")"
				}
			}
			return name
		}),
		text(nsDAV, "sync-token", false, func(h *Handler, rq *request, res *resource) string { return h.syncToken(rq, res) }),
		text(nsCS, "getctag", false, func(h *Handler, rq *request, res *resource) string { return h.syncToken(rq, res) }),
		def(nsDAV, "supported-report-set", false, func(_ *Handler, _ *request, res *resource) []*node { return supportedReports(res.t.kind) }),
	)
	maxSize := func(h *Handler, _ *request, _ *resource) string {
		return strconv.FormatInt(h.opts.Limits.MaxResourceSize, 10)
	}
	object := append(owned[:len(owned):len(owned)],
		text(nsDAV, "getetag", true, func(_ *Handler, _ *request, res *resource) string { return quoteETag(res.obj.ETag) }),
		text(nsDAV, "getcontenttype", true, func(_ *Handler, _ *request, res *resource) string { return res.obj.ContentType }),
		text(nsDAV, "getcontentlength", true, func(_ *Handler, _ *request, res *resource) string { return strconv.FormatInt(res.obj.Size, 10) }),
		text(nsDAV, "getlastmodified", true, func(_ *Handler, _ *request, res *resource) string {
			return res.obj.Modified.UTC().Format(http.TimeFormat)
		}),
	)
	principal := append(common[:len(common):len(common)],
		text(nsDAV, "displayname", true, func(_ *Handler, rq *request, _ *resource) string {
			if rq.user.DisplayName != "" {
				return rq.user.DisplayName
			}
			return rq.user.Address
		}),
		def(nsDAV, "principal-URL", false, principalHref),
		def(nsDAV, "principal-collection-set", false, func(h *Handler, _ *request, _ *resource) []*node {
			return []*node{href(h.hrefOf(target{kind: kindPrincipals}))}
		}),
		def(nsCalDAV, "calendar-home-set", false, func(h *Handler, rq *request, _ *resource) []*node {
			return []*node{href(h.hrefOf(target{kind: kindCalHome, user: rq.user.ID}))}
		}),
		def(nsCardDAV, "addressbook-home-set", false, func(h *Handler, rq *request, _ *resource) []*node {
			return []*node{href(h.hrefOf(target{kind: kindBookHome, user: rq.user.ID}))}
		}),
		// RFC 6638 §2.4.1: the addresses that identify the user as
		// organiser or attendee, the primary one first.
		def(nsCalDAV, "calendar-user-address-set", false, func(_ *Handler, rq *request, _ *resource) []*node {
			return addressSetHrefs(userAddresses(rq.user))
		}),
		def(nsCS, "email-address-set", false, func(_ *Handler, rq *request, _ *resource) []*node {
			return emailAddressSet(userAddresses(rq.user))
		}),
		text(nsCalDAV, "calendar-user-type", false, func(*Handler, *request, *resource) string { return "INDIVIDUAL" }),
		// CalendarServer's first-name and last-name, which Apple
		// Calendar searches for (principal-property-search) and shows
		// with the results: the directory's given name and surname,
		// empty when the directory has none.
		text(nsCS, "first-name", false, func(_ *Handler, rq *request, _ *resource) string { return rq.user.GivenName }),
		text(nsCS, "last-name", false, func(_ *Handler, rq *request, _ *resource) string { return rq.user.Surname }),
	)
	calendar := append(collection[:len(collection):len(collection)],
		text(nsCalDAV, "calendar-description", false, func(_ *Handler, _ *request, res *resource) string { return res.coll.Description }),
		text(nsApple, "calendar-color", false, func(_ *Handler, _ *request, res *resource) string { return res.coll.Color }),
		def(nsCalDAV, "supported-calendar-component-set", false, func(_ *Handler, _ *request, res *resource) []*node {
			comps := res.coll.Components
			if len(comps) == 0 {
				comps = calendarComponents()
			}
			out := make([]*node, len(comps))
			for i, c := range comps {
				out[i] = &node{Name: n(nsCalDAV, "comp"), Attrs: []xml.Attr{{Name: n("", "name"), Value: c}}}
			}
			return out
		}),
		def(nsCalDAV, "supported-calendar-data", false, func(*Handler, *request, *resource) []*node {
			return []*node{{Name: n(nsCalDAV, "calendar-data"), Attrs: []xml.Attr{
				{Name: n("", "content-type"), Value: "text/calendar"}, {Name: n("", "version"), Value: "2.0"}}}}
		}),
		text(nsCalDAV, "max-resource-size", false, maxSize),
		text(nsCalDAV, "max-instances", false, func(h *Handler, _ *request, _ *resource) string { return strconv.Itoa(h.opts.Limits.MaxInstances) }),
		text(nsCalDAV, "max-attendees-per-instance", false, func(h *Handler, _ *request, _ *resource) string {
			return strconv.Itoa(h.opts.Limits.MaxAttendees)
		}),
	)
	book := append(collection[:len(collection):len(collection)],
		text(nsCardDAV, "addressbook-description", false, func(_ *Handler, _ *request, res *resource) string { return res.coll.Description }),
		def(nsCardDAV, "supported-address-data", false, func(*Handler, *request, *resource) []*node {
			out := []*node{}
			for _, v := range []string{"3.0", "4.0"} {
				out = append(out, &node{Name: n(nsCardDAV, "address-data-type"), Attrs: []xml.Attr{
					{Name: n("", "content-type"), Value: "text/vcard"}, {Name: n("", "version"), Value: v}}})
			}
			return out
		}),
		text(nsCardDAV, "max-resource-size", false, maxSize),
	)
	calendar = append(calendar, shareProps()...)
	book = append(book, shareProps()...)
	inbox := append(calendar[:len(calendar):len(calendar)], scheduleDefaultCalendarProp())
	outbox := append(owned[:len(owned):len(owned)],
		text(nsDAV, "displayname", true, func(*Handler, *request, *resource) string { return "Outbox" }))
	principal = append(principal, schedulePrincipalProps()...)
	principal = append(principal, principalProxyProps()...)
	return map[kind][]propDef{
		kindInbox:      inbox,
		kindOutbox:     outbox,
		kindRoot:       common,
		kindPrincipals: common,
		kindPrincipal:  principal,
		kindProxy:      proxyProps(common),
		kindCalHome:    owned,
		kindBookHome:   owned,
		kindCalendar:   calendar,
		kindBook:       book,
		kindCalObject:  object,
		kindCard:       object,
	}
}

// resourceType is the DAV:resourcetype value of a kind (RFC 4918 §15.9,
// RFC 4791 §4.2, RFC 6352 §5.2, RFC 3744 §4).
func resourceType(k kind) []*node {
	switch k {
	case kindCalObject, kindCard:
		return nil
	case kindPrincipal:
		return []*node{el(nsDAV, "collection"), el(nsDAV, "principal")}
	case kindCalendar:
		return []*node{el(nsDAV, "collection"), el(nsCalDAV, "calendar")}
	case kindBook:
		return []*node{el(nsDAV, "collection"), el(nsCardDAV, "addressbook")}
	}
	return []*node{el(nsDAV, "collection")}
}

// privileges is the current-user-privilege-set (RFC 3744 §5.4): the
// owner may do everything on their own resources; the global address
// list is read-only, and so is a collection shared read-only. In another
// user's calendar home a read-write proxy or grantee may change objects
// but not properties (delegate.go).
func (h *Handler) privileges(rq *request, res *resource) []*node {
	names := []string{"read", "read-current-user-privilege-set"}
	access := h.shareAccess(rq, res.t)
	switch {
	case readOnly(res.t) || access == AccessRead:
	case res.t.user != "" && res.t.user != rq.user.ID:
		names = append(names, "write-content", "bind", "unbind")
	default:
		names = append(names, "write", "write-properties", "write-content", "bind", "unbind")
	}
	out := make([]*node, 0, len(names)+1)
	for _, p := range names {
		out = append(out, el(nsDAV, "privilege", el(nsDAV, p)))
	}
	if res.t.collKind() == store.KindCalendar && res.t.kind != kindRoot && res.t.kind != kindPrincipals && res.t.kind != kindPrincipal {
		out = append(out, el(nsDAV, "privilege", el(nsCalDAV, "read-free-busy"))) // RFC 4791 §6.1.1
	}
	if access != AccessRead {
		out = append(out, schedulePrivileges(res.t)...)
	}
	return out
}

// readOnly reports whether a target is in the read-only global address
// list.
func readOnly(t target) bool {
	return (t.kind == kindBook || t.kind == kindCard) && t.coll == galName
}

// supportedReports is the supported-report-set (RFC 3253 §3.1.5) of a
// collection.
func supportedReports(k kind) []*node {
	var reports []*node
	switch k {
	case kindCalendar:
		reports = []*node{el(nsCalDAV, "calendar-query"), el(nsCalDAV, "calendar-multiget"), el(nsCalDAV, "free-busy-query")}
	case kindBook:
		reports = []*node{el(nsCardDAV, "addressbook-query"), el(nsCardDAV, "addressbook-multiget")}
	}
	reports = append(reports, el(nsDAV, "sync-collection"))
	out := make([]*node, len(reports))
	for i, r := range reports {
		out[i] = el(nsDAV, "supported-report", el(nsDAV, "report", r))
	}
	return out
}

// quoteETag makes a stored ETag an HTTP entity tag (RFC 9110 §8.8.3).
func quoteETag(etag string) string { return `"` + etag + `"` }

// unquoteETag strips the quotes (and a weak prefix, which never matches a
// strong comparison) of an entity tag from a header.
func unquoteETag(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	return s[1 : len(s)-1], true
}

// httpDate formats a time for HTTP headers.
func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// splitList splits a comma-separated header value.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// syncToken is a collection's sync token (RFC 6578 §4), also its CTag.
func (h *Handler) syncToken(rq *request, res *resource) string {
	if h.isGAL(res.t) {
		tok, err := h.galToken(rq)
		if err != nil {
			rq.log.Error("GAL sync token", "err", err)
		}
		return tok
	}
	return syncTokenURI(res.coll.SyncToken)
}

// userAddresses are a user's calendar user addresses, the primary one
// first, then the aliases: the one address set that
// calendar-user-address-set and CS:email-address-set show.
func userAddresses(u directory.User) []string {
	return append([]string{u.Address}, u.Aliases...)
}

// addressSetHrefs is a calendar-user-address-set value (RFC 6638
// §2.4.1): a mailto: href per address.
func addressSetHrefs(addrs []string) []*node {
	out := make([]*node, len(addrs))
	for i, a := range addrs {
		out[i] = href("mailto:" + a)
	}
	return out
}

// emailAddressSet is a CalendarServer CS:email-address-set value, which
// Apple clients read to know a principal's addresses: one
// CS:email-address per address, without a scheme (as CalendarServer
// and sabre/dav write it).
func emailAddressSet(addrs []string) []*node {
	out := make([]*node, len(addrs))
	for i, a := range addrs {
		out[i] = textEl(nsCS, "email-address", a)
	}
	return out
}
