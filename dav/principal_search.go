package dav

import (
	"encoding/xml"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/mailyard/mailyard/directory"
)

// Finding principals (RFC 3744 §9.4, §9.5): principal-property-search
// on the principals collection (or the root, or the user's own
// principal) finds the users and resources (rooms and equipment,
// principal_resource.go) of the requester's tenant by displayname,
// calendar-user-address-set (CS:email-address-set alike) and
// calendar-user-type, as Apple Calendar's room and attendee lookup
// asks. Candidates come from Options.GAL (the tenant's global address
// list, matched word by word from the start of a word of the name or of
// an address: directory.GALQuery.Text); each is then matched against
// every DAV:property-search with the case-insensitive comparison the
// match element names (RFC 3744 §9.4: a substring match; Apple's
// match-type "starts-with" and "equals" too), all of them (test
// "allof", the default) or any (test "anyof"). calendar-user-type
// compares whole values. Other properties match nothing. Without a GAL
// nothing is found. Other sites' entries (directory.GALEntry.Site) are
// not principals here and are left out.
//
// At most Limits.MaxPrincipalSearch principals are returned; past it the
// answer ends with a 507 for the request-URI (DAV:number-of-matches-
// within-limits, as a truncated query, RFC 5323 §5.17); so does a text
// too broad for the GAL (directory.MaxGALMatches).

// principalSearch is one DAV:property-search.
type principalSearch struct {
	props     []xml.Name
	match     string
	matchType string // "contains" (default), "starts-with", "equals"
}

// Searchable principal properties (principal-search-property-set).
var (
	propDisplayName  = xml.Name{Space: nsDAV, Local: "displayname"}
	propCUAddressSet = xml.Name{Space: nsCalDAV, Local: "calendar-user-address-set"}
	propCUType       = xml.Name{Space: nsCalDAV, Local: "calendar-user-type"}
	propEmailSet     = xml.Name{Space: nsCS, Local: "email-address-set"}
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
			var s principalSearch
			p, m := c.child(nsDAV, "prop"), c.child(nsDAV, "match")
			if p == nil || m == nil {
				return nil, false, pr, bad("property-search needs DAV:prop and DAV:match")
			}
			s.props = names(p)
			s.match = strings.TrimSpace(m.Text)
			s.matchType, _ = m.attr("match-type")
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
	return directory.User{ID: e.ID, Tenant: e.Tenant, Address: e.Address, Aliases: e.Aliases, DisplayName: e.DisplayName}
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
		switch {
		case slices.Contains(s.props, propCUType):
			q.Kinds = cuTypeKinds(s.match, q.Kinds)
		case slices.Contains(s.props, propDisplayName) && !slices.Contains(s.props, propCUAddressSet) && !slices.Contains(s.props, propEmailSet):
			words = append(words, s.match)
		case slices.Contains(s.props, propCUAddressSet), slices.Contains(s.props, propEmailSet):
			words = append(words, mailtoOrSelf(s.match))
		}
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
		match := s.match
		switch p {
		case propDisplayName:
			values = []string{e.DisplayName}
			if e.DisplayName == "" {
				values = []string{e.Address}
			}
		case propCUAddressSet, propEmailSet:
			match = mailtoOrSelf(match)
			values = append([]string{e.Address}, e.Aliases...)
		case propCUType:
			if strings.EqualFold(strings.TrimSpace(match), entryCUType(e)) {
				return true
			}
			continue
		}
		for _, v := range values {
			if textMatches(v, match, s.matchType) {
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

// textMatches compares case-insensitively as matchType says.
func textMatches(value, match, matchType string) bool {
	v, m := strings.ToLower(value), strings.ToLower(match)
	switch strings.ToLower(matchType) {
	case "starts-with":
		return strings.HasPrefix(v, m)
	case "equals":
		return v == m
	}
	return strings.Contains(v, m)
}
