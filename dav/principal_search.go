package dav

import (
	"encoding/xml"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/textmatch"
)

// Finding principals (RFC 3744 §9.4, §9.5): principal-property-search
// on the principals collection (or the root, or the user's own
// principal) finds the users and resources (rooms and equipment,
// principal_resource.go) of the requester's tenant by displayname,
// calendar-user-address-set, CS:email-address-set, CS:first-name,
// CS:last-name and calendar-user-type, as Apple Calendar's room and
// attendee lookup asks. Each DAV:property-search compares its match
// with i;unicode-casemap (RFC 5051: case-folded, NFKD; RFC 3744 §9.4
// asks for a case-insensitive match) as its match-type says: "contains"
// (the default, a substring), "starts-with" (from the start of the
// value), "equals" or "ends-with" (RFC 5689 and Apple use the first
// two); another match-type is a 400. All of them must match (test
// "allof", the default) or any (test "anyof"). calendar-user-type
// compares whole values; other properties match nothing.
//
// Candidates come from Options.GAL (the tenant's global address list;
// without a GAL nothing is found), asked for the words of the match
// texts: from the start of a word of a name or address for
// starts-with and equals, anywhere inside one for contains and
// ends-with (directory.GALQuery.Contains, which the built-in directory
// answers from an index of inner suffixes rather than by a scan, LDAP
// entries included, which it holds as synced). The property-searches
// then decide. Other sites' entries (directory.GALEntry.Site) are not
// principals here and are left out, and so is every entry of another
// tenant, whatever the GAL answers.
//
// At most Limits.MaxPrincipalSearch principals are returned; past it the
// answer ends with a 507 for the request-URI (DAV:number-of-matches-
// within-limits, as a truncated query, RFC 5323 §5.17); so does a text
// too broad for the GAL (directory.MaxGALMatches). A body holds at most
// maxPropertySearches property-searches and match texts of at most
// maxSearchText bytes (400 otherwise), besides the XML limits.

// principalSearch is one DAV:property-search.
type principalSearch struct {
	props []xml.Name
	match string
	// contains is true when the GAL must be asked for words anywhere
	// inside a token (directory.GALQuery.Contains): match-type contains
	// (the default) or ends-with.
	contains bool
	// text compares names with match, addr addresses with match
	// without its mailto: (both i;unicode-casemap).
	text, addr *textmatch.Matcher
}

// Searchable principal properties (principal-search-property-set).
var (
	propDisplayName  = xml.Name{Space: nsDAV, Local: "displayname"}
	propCUAddressSet = xml.Name{Space: nsCalDAV, Local: "calendar-user-address-set"}
	propCUType       = xml.Name{Space: nsCalDAV, Local: "calendar-user-type"}
	propEmailSet     = xml.Name{Space: nsCS, Local: "email-address-set"}
	// CalendarServer's first-name and last-name, which Apple Calendar
	// searches with displayname and email-address-set: matched against
	// the GAL entry's given name and surname.
	propFirstName = xml.Name{Space: nsCS, Local: "first-name"}
	propLastName  = xml.Name{Space: nsCS, Local: "last-name"}
)

// principalCollation is the comparison of every principal-property-search
// match: RFC 3744 §9.4 asks for a case-insensitive one, and
// i;unicode-casemap (RFC 5051) is the one that is for every script.
const principalCollation = "i;unicode-casemap"

// Bounds of a principal-property-search body besides the XML limits:
// every DAV:property-search may be a directory query (test anyof), and
// every word of a match text is compared with every word of each
// candidate, so neither may grow with the body. Clients send a few
// (Apple Calendar four: displayname, email-address-set, first-name,
// last-name) with what a user typed.
const (
	maxPropertySearches = 16
	maxSearchText       = 256 // bytes
)

// principalSearchScan bounds the GAL entries one search looks at, as a
// multiple of the result limit: entries the GAL offers that the
// property-search then rejects cost no more than this.
const principalSearchScan = 20

// principalSearchPropertySet answers principal-search-property-set (RFC
// 3744 §9.5).
func (h *Handler) principalSearchPropertySet(rq *request) error {
	if err := principalReportTarget(rq.t); err != nil {
		return err
	}
	item := func(n xml.Name, desc string) *node {
		return el(nsDAV, "principal-search-property", el(nsDAV, "prop", &node{Name: n}), textEl(nsDAV, "description", desc))
	}
	out := el(nsDAV, "principal-search-property-set",
		item(propDisplayName, "Display name"),
		item(propCUAddressSet, "Calendar user address"),
		item(propEmailSet, "Email address"),
		item(propCUType, "Calendar user type"),
		item(propFirstName, "First name"),
		item(propLastName, "Last name"),
	)
	_ = writeXML(rq.w, http.StatusOK, out)
	return nil
}

// principalReportTarget refuses the principal reports on anything but
// the root, the principals collection and the user's own principal.
func principalReportTarget(t target) error {
	switch t.kind {
	case kindRoot, kindPrincipals, kindPrincipal:
		return nil
	}
	return precondition(http.StatusForbidden, nsDAV, "supported-report", "principal reports are served on the principals collection")
}

// parsePrincipalSearch reads a principal-property-search body (RFC 3744
// §9.4).
func parsePrincipalSearch(body *node) (searches []principalSearch, anyOf bool, pr propRequest, err error) {
	bad := func(msg string) error { return &httpError{status: http.StatusBadRequest, msg: msg} }
	if v, ok := body.attr("test"); ok {
		anyOf = strings.EqualFold(v, "anyof")
	}
	for _, c := range body.Children {
		switch {
		case c.is(nsDAV, "property-search"):
			if len(searches) == maxPropertySearches {
				return nil, false, pr, bad("more than " + strconv.Itoa(maxPropertySearches) + " DAV:property-search")
			}
			var s principalSearch
			p, m := c.child(nsDAV, "prop"), c.child(nsDAV, "match")
			if p == nil || m == nil {
				return nil, false, pr, bad("property-search needs DAV:prop and DAV:match")
			}
			s.props = names(p)
			s.match = strings.TrimSpace(m.Text)
			if len(s.match) > maxSearchText {
				return nil, false, pr, bad("DAV:match longer than " + strconv.Itoa(maxSearchText) + " bytes")
			}
			mt, _ := m.attr("match-type")
			var err error
			if s.text, s.addr, err = principalMatchers(s.match, mt); err != nil {
				return nil, false, pr, bad(err.Error())
			}
			s.contains = mt == "" || mt == string(textmatch.Contains) || mt == string(textmatch.EndsWith)
			searches = append(searches, s)
		case c.is(nsDAV, "prop"):
			pr.names = append(pr.names, names(c)...)
		}
	}
	if len(searches) == 0 {
		return nil, false, pr, bad("principal-property-search needs a DAV:property-search")
	}
	if len(pr.names) == 0 {
		pr.names = []xml.Name{propDisplayName}
	}
	return searches, anyOf, pr, nil
}

// principalMatchers prepares the comparisons of a DAV:match of a
// match-type: contains (the default, RFC 3744 §9.4), starts-with,
// equals or ends-with (RFC 5689 §5's and Apple's); any other is an
// error.
func principalMatchers(match, matchType string) (text, addr *textmatch.Matcher, err error) {
	mt := textmatch.MatchType(matchType)
	switch mt {
	case "", textmatch.Contains, textmatch.StartsWith, textmatch.Equals, textmatch.EndsWith:
	default:
		return nil, nil, errors.New("unknown match-type " + strconv.Quote(matchType))
	}
	if text, err = textmatch.New(match, principalCollation, mt, false); err != nil {
		return nil, nil, err
	}
	addr, err = textmatch.New(mailtoOrSelf(match), principalCollation, mt, false)
	return text, addr, err
}

// principalPropertySearch answers principal-property-search (RFC 3744
// §9.4; the comment at the top of this file).
func (h *Handler) principalPropertySearch(rq *request, body *node) error {
	if err := principalReportTarget(rq.t); err != nil {
		return err
	}
	searches, anyOf, pr, err := parsePrincipalSearch(body)
	if err != nil {
		return err
	}
	found, truncated, err := h.searchPrincipals(rq, searches, anyOf)
	if err != nil {
		return err
	}
	ms := newMultistatus(rq.w)
	ms.start()
	for _, e := range found {
		t := target{kind: kindPrincipal, user: e.ID}
		var stats []propstat
		switch {
		case e.Kind == directory.KindResource:
			stats = h.resourceProps(galResource(e), pr)
		case e.ID == rq.user.ID:
			stats = h.props(rq, &resource{t: t}, pr)
		default:
			stats = h.peerProps(rq, galUser(e), t, pr)
		}
		if err := ms.response(h.hrefOf(t), stats...); err != nil {
			return nil
		}
	}
	if truncated {
		_ = ms.status(h.hrefOf(rq.t), http.StatusInsufficientStorage, el(nsDAV, "number-of-matches-within-limits"))
	}
	_ = ms.close()
	return nil
}

// galResource and galUser make the principal of a GAL entry.
func galResource(e directory.GALEntry) directory.Resource {
	return directory.Resource{ID: e.ID, Tenant: e.Tenant, Address: e.Address, DisplayName: e.DisplayName, Kind: e.ResourceKind}
}

func galUser(e directory.GALEntry) directory.User {
	return directory.User{ID: e.ID, Tenant: e.Tenant, Address: e.Address, Aliases: e.Aliases, DisplayName: e.DisplayName,
		GivenName: e.GivenName, Surname: e.Surname}
}

// searchPrincipals finds the users and resources of the requester's
// tenant the searches match, in display-name order, at most
// Limits.MaxPrincipalSearch (truncated when there were more).
func (h *Handler) searchPrincipals(rq *request, searches []principalSearch, anyOf bool) ([]directory.GALEntry, bool, error) {
	if h.opts.GAL == nil {
		return nil, false, nil
	}
	limit := h.opts.Limits.MaxPrincipalSearch
	// One GAL query for allof (every search must match each entry
	// anyway); one per search for anyof, merged.
	queries := [][]principalSearch{searches}
	if anyOf {
		queries = nil
		for _, s := range searches {
			queries = append(queries, []principalSearch{s})
		}
	}
	seen := map[string]bool{}
	var found []directory.GALEntry
	truncated := false
	for _, q := range queries {
		more, err := h.galCandidates(rq, q, limit+1-len(found), func(e directory.GALEntry) bool {
			if seen[e.ID] || !principalMatches(e, searches, anyOf) {
				return false
			}
			seen[e.ID] = true
			return true
		})
		if errors.Is(err, errLimitReached) {
			found, truncated = append(found, more...), true
			break
		}
		if err != nil {
			return nil, false, err
		}
		found = append(found, more...)
		if len(found) > limit {
			found, truncated = found[:limit], true
			break
		}
	}
	if len(found) > limit {
		found, truncated = found[:limit], true
	}
	if anyOf {
		slices.SortStableFunc(found, func(a, b directory.GALEntry) int {
			return strings.Compare(strings.ToLower(a.DisplayName), strings.ToLower(b.DisplayName))
		})
	}
	return found, truncated, nil
}

// galCandidates pages through the GAL entries of the tenant that may
// match the searches, keeping those keep accepts, until it has want of
// them or has looked at principalSearchScan times the result limit.
func (h *Handler) galCandidates(rq *request, searches []principalSearch, want int, keep func(directory.GALEntry) bool) ([]directory.GALEntry, error) {
	q := directory.GALQuery{Tenant: rq.user.Tenant, Kinds: []directory.EntryKind{directory.KindUser, directory.KindResource}, Limit: directory.MaxGALLimit}
	var words []string
	for _, s := range searches {
		isAddr := slices.Contains(s.props, propCUAddressSet) || slices.Contains(s.props, propEmailSet)
		isName := slices.ContainsFunc(s.props, func(n xml.Name) bool {
			return n == propDisplayName || n == propFirstName || n == propLastName
		})
		switch {
		case slices.Contains(s.props, propCUType):
			q.Kinds = cuTypeKinds(s.match, q.Kinds)
			continue
		case isName && !isAddr:
			words = append(words, s.match)
		case isAddr:
			words = append(words, mailtoOrSelf(s.match))
		default:
			continue
		}
		// A word inside a name or address, not only at its start
		// (directory's inner index, no scan).
		q.Contains = q.Contains || s.contains
	}
	if len(q.Kinds) == 0 || want <= 0 {
		return nil, nil
	}
	if len(words) == 1 {
		q.Text = words[0]
	} else if len(words) > 1 {
		// Several texts: the GAL matches each word anywhere; the
		// property-searches then check each property.
		var ws []string
		for _, w := range words {
			ws = append(ws, directory.GALQueryWords(w)...)
		}
		q.Text = strings.Join(ws, " ")
	}
	var out []directory.GALEntry
	scanned, maxScan := 0, principalSearchScan*h.opts.Limits.MaxPrincipalSearch
	for {
		page, err := h.opts.GAL.SearchGAL(rq.ctx, q)
		if errors.Is(err, directory.ErrInvalid) {
			// Too broad a text (directory.MaxGALMatches): answered as a
			// truncated search, as the GAL's address book answers it.
			return out, errLimitReached
		}
		if err != nil {
			return nil, err
		}
		for _, e := range page.Entries {
			if e.Site != "" || e.Tenant != rq.user.Tenant || (e.Kind != directory.KindUser && e.Kind != directory.KindResource) {
				continue
			}
			if keep(e) {
				out = append(out, e)
				if len(out) >= want {
					return out, nil
				}
			}
		}
		scanned += len(page.Entries)
		if page.Next == "" || scanned >= maxScan {
			return out, nil
		}
		q.After = page.Next
	}
}

// cuTypeKinds narrows the GAL kinds to those that can have the
// calendar-user-type t.
func cuTypeKinds(t string, kinds []directory.EntryKind) []directory.EntryKind {
	var k directory.EntryKind
	switch strings.ToUpper(strings.TrimSpace(t)) {
	case cuIndividual:
		k = directory.KindUser
	case cuRoom, cuResource:
		k = directory.KindResource
	default:
		return nil
	}
	if slices.Contains(kinds, k) {
		return []directory.EntryKind{k}
	}
	return nil
}

// mailtoOrSelf strips a mailto: scheme, if any.
func mailtoOrSelf(s string) string {
	if a := mailtoAddress(s); a != "" {
		return a
	}
	return s
}

// principalMatches reports whether the entry's principal matches all
// (or, anyOf, any) of the searches.
func principalMatches(e directory.GALEntry, searches []principalSearch, anyOf bool) bool {
	for _, s := range searches {
		if searchMatches(e, s) == anyOf {
			return anyOf
		}
	}
	return !anyOf
}

// searchMatches reports whether one of the searched properties of the
// entry's principal matches (RFC 3744 §9.4: case-insensitive).
func searchMatches(e directory.GALEntry, s principalSearch) bool {
	for _, p := range s.props {
		var values []string
		m := s.text
		switch p {
		case propDisplayName:
			values = []string{e.DisplayName}
			if e.DisplayName == "" {
				values = []string{e.Address}
			}
		case propFirstName:
			values = []string{e.GivenName}
		case propLastName:
			values = []string{e.Surname}
		case propCUAddressSet, propEmailSet:
			m = s.addr
			values = append([]string{e.Address}, e.Aliases...)
		case propCUType:
			if strings.EqualFold(strings.TrimSpace(s.match), entryCUType(e)) {
				return true
			}
			continue
		}
		for _, v := range values {
			if v != "" && m.Match(v) {
				return true
			}
		}
	}
	return false
}

// entryCUType is the calendar-user-type of a GAL entry's principal.
func entryCUType(e directory.GALEntry) string {
	if e.Kind == directory.KindResource {
		return resourceCUType(galResource(e))
	}
	return cuIndividual
}
