package dav

import (
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/mailyard/mailyard/store"
)

// kind is what a request URL names.
type kind int

// The resources of the URL layout (package documentation).
const (
	kindRoot       kind = iota + 1 // /dav/
	kindPrincipals                 // /dav/principals/
	kindPrincipal                  // /dav/principals/<user>/
	kindCalHome                    // /dav/calendars/<user>/
	kindCalendar                   // /dav/calendars/<user>/<name>/
	kindCalObject                  // /dav/calendars/<user>/<name>/<resource>
	kindBookHome                   // /dav/addressbooks/<user>/
	kindBook                       // /dav/addressbooks/<user>/<name>/
	kindCard                       // /dav/addressbooks/<user>/<name>/<resource>
	kindOutbox                     // /dav/calendars/<user>/outbox/ (RFC 6638 §2.1)
	kindProxy                      // /dav/principals/<user>/calendar-proxy-read/ or -write/ (proxy.go)
	// kindInbox names the property table of the schedule inbox, which is
	// otherwise served as the calendar collection "inbox" (kindCalendar);
	// parsePath never returns it.
	kindInbox
)

// Top-level path segments under the prefix.
const (
	segPrincipals   = "principals"
	segCalendars    = "calendars"
	segAddressBooks = "addressbooks"
)

// Collection names with a meaning of their own: the global address list
// and the scheduling inbox and outbox (RFC 6638 §2.2, §2.1), which no
// client may create.
const (
	galName    = "gal"
	inboxName  = "inbox"
	outboxName = "outbox"
)

// Default collections, created the first time a user looks.
const (
	defaultName            = "default"
	defaultCalendarDisplay = "Calendar"
	defaultBookDisplay     = "Contacts"
)

// maxSegment bounds one path segment.
const maxSegment = 255

var errBadPath = errors.New("invalid path")

// target is a parsed request path.
type target struct {
	kind kind
	user string // the userID of a principal or home
	coll string // collection name
	name string // object resource name
}

// collKind is the store kind of a calendar or address-book target.
func (t target) collKind() store.CollectionKind {
	switch t.kind {
	case kindCalHome, kindCalendar, kindCalObject, kindOutbox:
		return store.KindCalendar
	}
	return store.KindAddressBook
}

// parsePath splits the escaped request path below the prefix. Each
// segment is unescaped on its own, so "%2F" can never add a level;
// ".", "..", empty segments inside the path, control characters, a
// backslash and invalid UTF-8 are refused (errBadPath).
func (h *Handler) parsePath(escaped string) (target, error) {
	rest, ok := strings.CutPrefix(escaped, h.opts.Prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return target{}, errNotHere
	}
	rest = strings.TrimPrefix(rest, "/")
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return target{kind: kindRoot}, nil
	}
	raw := strings.Split(rest, "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		s, err := url.PathUnescape(r)
		if err != nil || !safeSegment(s) {
			return target{}, errBadPath
		}
		segs[i] = s
	}
	return classify(segs)
}

// classify maps path segments to a target.
func classify(segs []string) (target, error) {
	var t target
	if len(segs) >= 2 {
		t.user = segs[1]
	}
	if len(segs) >= 3 {
		t.coll = segs[2]
	}
	if len(segs) >= 4 {
		t.name = segs[3]
	}
	switch {
	case segs[0] == segPrincipals && len(segs) == 1:
		t.kind = kindPrincipals
	case segs[0] == segPrincipals && len(segs) == 2:
		t.kind = kindPrincipal
	case segs[0] == segPrincipals && len(segs) == 3 && (segs[2] == proxyRead || segs[2] == proxyWrite):
		t.kind = kindProxy
	case segs[0] == segCalendars && len(segs) >= 3 && segs[2] == outboxName:
		if len(segs) == 3 {
			t.kind = kindOutbox // the outbox holds nothing (RFC 6638 §2.1)
		}
	case segs[0] == segCalendars && len(segs) <= 4:
		t.kind = [...]kind{0, 0, kindCalHome, kindCalendar, kindCalObject}[len(segs)]
	case segs[0] == segAddressBooks && len(segs) <= 4:
		t.kind = [...]kind{0, 0, kindBookHome, kindBook, kindCard}[len(segs)]
	}
	if t.kind == 0 {
		return target{}, errNotHere
	}
	return t, nil
}

// safeSegment reports whether s may be one path segment.
func safeSegment(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > maxSegment || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return false
		}
	}
	return true
}

// hrefOf returns the escaped path of a target; collections end in "/".
func (h *Handler) hrefOf(t target) string {
	var b strings.Builder
	// One allocation when nothing needs escaping (a report writes an
	// href per object).
	b.Grow(len(h.opts.Prefix) + len(segAddressBooks) + len(t.user) + len(t.coll) + len(t.name) + 5)
	b.WriteString(h.opts.Prefix)
	b.WriteString("/")
	seg := func(s string) {
		b.WriteString(url.PathEscape(s))
		b.WriteString("/")
	}
	switch t.kind {
	case kindPrincipals, kindPrincipal, kindProxy:
		seg(segPrincipals)
	case kindCalHome, kindCalendar, kindCalObject, kindOutbox:
		seg(segCalendars)
	case kindBookHome, kindBook, kindCard:
		seg(segAddressBooks)
	}
	if t.kind != kindRoot && t.kind != kindPrincipals {
		seg(t.user)
	}
	if t.coll != "" {
		seg(t.coll)
	}
	if t.name != "" {
		b.WriteString(url.PathEscape(t.name))
	}
	return b.String()
}

// hrefTarget parses an href from a request body (a multiget's hrefs, a
// PROPPATCH target): a path, or an absolute URL whose path is used.
func (h *Handler) hrefTarget(s string) (target, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil {
		return target{}, errBadPath
	}
	return h.parsePath(u.EscapedPath())
}

// reservedName reports whether a collection name may not be created by a
// client.
func reservedName(name string) bool {
	switch strings.ToLower(name) {
	case galName, inboxName, outboxName:
		return true
	}
	return strings.HasPrefix(strings.ToLower(name), sharePrefix)
}
