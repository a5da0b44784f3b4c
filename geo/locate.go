package geo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mailyard/mailyard/directory"
)

// Location is where an address lives, for routing.
type Location struct {
	// Site holds the address; Local is true if that is this site.
	Site  string
	Local bool
	// MX is the site's MX (host:port) from this site's link to it.
	MX string
	// Kind and Account are the entry's kind and, for users and
	// resources, its store account on its site (for free/busy).
	Kind    string
	Account string
}

// LocateSite says which site holds address (canonicalised first). It is
// what routing needs for its "remote site" decision; routing defines
// the interface and geo satisfies it. Errors: directory.ErrNotFound if no
// linked site claims it (or only a site whose link is not mutual),
// [ErrConflict] if several do: such mail stays local.
func (n *Node) LocateSite(_ context.Context, address string) (Location, error) {
	a, err := directory.CanonicalAddress(address)
	if err != nil {
		return Location{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	sites := n.claimants(a)
	switch len(sites) {
	case 0:
		return Location{}, fmt.Errorf("geo: %s: %w", a, directory.ErrNotFound)
	case 1:
	default:
		return Location{}, fmt.Errorf("geo: %s (%s): %w", a, strings.Join(sites, ", "), ErrConflict)
	}
	loc := Location{Site: sites[0], Local: sites[0] == n.opts.Site}
	if !loc.Local {
		loc.MX = n.links[loc.Site].cfg.MX
	}
	for o := range n.view.addrs[a] {
		if e, ok := n.view.sites[o.site][o.key]; ok && o.site == loc.Site {
			loc.Kind = e.Rec.Kind
			if e.Rec.GAL != nil && (e.Rec.Kind == KindUser || e.Rec.Kind == KindResource) {
				loc.Account = e.Rec.GAL.ID
			}
		}
	}
	return loc, nil
}

// claimants returns the sites that claim address and count: this site
// and the peers whose link is configured and mutual. n.mu must be held.
func (n *Node) claimants(address string) []string {
	return slices.DeleteFunc(n.view.claimants(address), func(s string) bool { return !n.counts(s) })
}

// counts reports whether site's entries are used: this site's, and a
// peer's whose link exists here and is mutual. n.mu must be held.
func (n *Node) counts(site string) bool {
	if site == n.opts.Site {
		return true
	}
	l := n.links[site]
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.health.Mutual
}

// GALSearcher is the global address list search of directory (the
// interface dav consumes too); directory/builtin implements it.
type GALSearcher interface {
	SearchGAL(ctx context.Context, q directory.GALQuery) (directory.GALPage, error)
}

// GAL is the organisation's global address list: this site's entries
// (from Local) followed by the entries of every linked site, each marked
// with its Site. Tenants are the organisation's: a remote entry is shown
// for the query's tenant if its site published it under the same tenant ID.
type GAL struct {
	Local GALSearcher
	Node  *Node
}

// remoteCursor prefixes a GAL cursor into the remote entries.
const remoteCursor = "geo:"

// SearchGAL implements GALSearcher: local pages first, then the remote
// entries, sorted by display name, site and ID.
func (g GAL) SearchGAL(ctx context.Context, q directory.GALQuery) (directory.GALPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = directory.DefaultGALLimit
	}
	limit = min(limit, directory.MaxGALLimit)
	off := 0
	if rest, ok := strings.CutPrefix(q.After, remoteCursor); ok {
		v, err := strconv.Atoi(rest)
		if err != nil || v < 0 {
			return directory.GALPage{}, fmt.Errorf("geo: GAL cursor %q: %w", q.After, directory.ErrInvalid)
		}
		off = v
	} else {
		page, err := g.Local.SearchGAL(ctx, q)
		if err != nil || page.Next != "" {
			return page, err
		}
		if len(page.Entries) >= limit {
			page.Next = remoteCursor + "0"
			return page, nil
		}
		rem := g.Node.galEntries(q)
		take := min(limit-len(page.Entries), len(rem))
		page.Entries = append(page.Entries, rem[:take]...)
		if take < len(rem) {
			page.Next = remoteCursor + strconv.Itoa(take)
		}
		return page, nil
	}
	rem := g.Node.galEntries(q)
	if off > len(rem) {
		off = len(rem)
	}
	end := min(off+limit, len(rem))
	page := directory.GALPage{Entries: rem[off:end]}
	if end < len(rem) {
		page.Next = remoteCursor + strconv.Itoa(end)
	}
	return page, nil
}

// galEntries returns the remote GAL entries matching q, sorted.
func (n *Node) galEntries(q directory.GALQuery) []directory.GALEntry {
	words := directory.GALQueryWords(q.Text)
	match := (*directory.GALEntry).Matches
	if q.Contains {
		match = (*directory.GALEntry).MatchesInside
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []directory.GALEntry
	for site, m := range n.view.sites {
		if site == n.opts.Site || !n.counts(site) {
			continue
		}
		for _, e := range m {
			g := e.Rec.GAL
			if e.Rec.Deleted || g == nil || g.Tenant != q.Tenant {
				continue
			}
			if len(q.Kinds) > 0 && !slices.Contains(q.Kinds, g.Kind) {
				continue
			}
			if !match(g, words) {
				continue
			}
			c := *g
			c.Site = site
			c.HasPhoto = false // the photo is on its site
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b directory.GALEntry) int {
		return strings.Compare(strings.ToLower(a.DisplayName)+"\x00"+a.Site+"\x00"+a.ID,
			strings.ToLower(b.DisplayName)+"\x00"+b.Site+"\x00"+b.ID)
	})
	return out
}

// RemoteSite implements routing.Sites: the site other than this one that
// holds address and its MX; empty if none does, if this site holds it,
// or if several sites claim it (the conflict keeps its mail here).
func (n *Node) RemoteSite(ctx context.Context, address string) (site, mx string, err error) {
	loc, err := n.LocateSite(ctx, address)
	switch {
	case errors.Is(err, directory.ErrNotFound), errors.Is(err, directory.ErrInvalid), errors.Is(err, ErrConflict):
		return "", "", nil
	case err != nil:
		return "", "", err
	case loc.Local:
		return "", "", nil
	}
	return loc.Site, loc.MX, nil
}
