package routing

import (
	"context"
	"fmt"
)

// RuleRemoteSite is the rule of a recipient who lives on another site of
// a distributed installation (package geo): relayed to that site's MX.
const RuleRemoteSite = "remote-site"

// Sites says which other site of a distributed installation holds an
// address. Package geo's Node implements it; routing needs nothing else
// of geo.
type Sites interface {
	// RemoteSite returns the site that holds address and its MX
	// (host:port, the syntax of [NextHop]). site is empty when no other
	// site holds it: unknown, held here, or claimed by several sites (a
	// conflict, whose mail stays here). An error means the answer could
	// not be had.
	RemoteSite(ctx context.Context, address string) (site, mx string, err error)
}

// remoteSite relays an address another site holds to that site's MX,
// with TLS required; done reports that it did. Anyone may send to such
// an address, as to a hosted one: the sites relay for each other's
// recipients and for nobody else.
func (x *expansion) remoteSite(it item, addr string) (done bool, err error) {
	if x.t.sites == nil || it.local {
		return false, nil
	}
	site, mx, err := x.t.sites.RemoteSite(x.ctx, addr)
	if err != nil {
		return true, fmt.Errorf("routing: site of %q: %w", addr, err)
	}
	if site == "" {
		return false, nil
	}
	nh, err := ParseNextHop(mx)
	if err != nil {
		return true, fmt.Errorf("routing: MX of site %s: %w", site, err)
	}
	if x.trace != nil {
		x.tracef(it.depth, "%s: lives on site %s", addr, site)
	}
	return true, x.decide(it, "address "+addr, Decision{Kind: Relay, Address: addr, Rule: RuleRemoteSite,
		Hop: Hop{NextHop: nh, TLS: TLSRequired, Site: site}, Permit: x.permit(it, true)})
}
