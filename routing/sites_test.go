package routing_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/routing"
)

// fakeSites holds addresses of other sites; "broken@" fails.
type fakeSites map[string]string // address -> site

func (f fakeSites) RemoteSite(_ context.Context, addr string) (string, string, error) {
	if strings.HasPrefix(addr, "broken@") {
		return "", "", errors.New("view unavailable")
	}
	site := f[strings.ToLower(addr)]
	if site == "" {
		return "", "", nil
	}
	return site, "mx." + site + ".example:2525", nil
}

func TestRemoteSite(t *testing.T) {
	g := graphDir{entries: map[string]directory.Entry{
		"u@example.com": {Kind: directory.KindUser, Address: "u@example.com", User: &directory.User{ID: "acct-u", Address: "u@example.com"}},
		"list@example.com": {Kind: directory.KindGroup, Address: "list@example.com",
			Group: &directory.Group{ID: "g", Address: "list@example.com", Members: []string{"u@example.com", "far@example.com"}}},
	}}
	sites := fakeSites{"far@example.com": "paris", "u@example.com": "dup", "x@partner.test": "berlin"}
	table := routing.NewTable(g, routing.TableOptions{Sites: sites})
	ctx := context.Background()
	outsider := routing.Envelope{From: "s@elsewhere.test"}
	hop := func(site string) routing.Hop {
		return routing.Hop{NextHop: routing.NextHop{Host: "mx." + site + ".example", Port: 2525}, TLS: routing.TLSRequired, Site: site}
	}

	// Unknown here, held by paris: relayed there, for anyone.
	res, err := table.Resolve(ctx, outsider, "Far@example.com")
	require.NoError(t, err)
	require.Equal(t, []routing.Decision{relay("far@example.com", routing.RuleRemoteSite, routing.PermitHosted, hop("paris"))}, res.Decisions)

	// A local user stays local even if a site claims it too.
	res, err = table.Resolve(ctx, outsider, "u@example.com")
	require.NoError(t, err)
	require.Equal(t, routing.Deliver, res.Decisions[0].Kind)

	// A domain not hosted here whose address a site holds: relayed to
	// the site, not refused as relaying and not sent by MX.
	res, err = table.Resolve(ctx, outsider, "x@partner.test")
	require.NoError(t, err)
	require.Equal(t, []routing.Decision{relay("x@partner.test", routing.RuleRemoteSite, routing.PermitHosted, hop("berlin"))}, res.Decisions)

	// Other addresses of that domain are still not relayed for outsiders.
	res, err = table.Resolve(ctx, outsider, "y@partner.test")
	require.NoError(t, err)
	require.Equal(t, routing.RuleRelayDenied, res.Decisions[0].Rule)

	// Unknown everywhere: the unknown-recipient policy.
	res, err = table.Resolve(ctx, outsider, "nobody@example.com")
	require.NoError(t, err)
	require.Equal(t, routing.RuleUnknownRecipient, res.Decisions[0].Rule)

	// A group member on another site.
	res, err = table.Resolve(ctx, outsider, "list@example.com")
	require.NoError(t, err)
	require.Len(t, res.Decisions, 2)
	require.Equal(t, routing.RuleRemoteSite, res.Decisions[1].Rule)
	require.Equal(t, "paris", res.Decisions[1].Hop.Site)

	// The sites' view failing is an error (a temporary failure), not a
	// rejection.
	_, err = table.Resolve(ctx, outsider, "broken@example.com")
	require.Error(t, err)

	// Explain names the site.
	out, err := table.Explain(ctx, outsider, "far@example.com")
	require.NoError(t, err)
	require.Contains(t, out, "lives on site paris")
	require.Contains(t, out, "site paris")
}

// TestCentralHopWithSites: unconditional forwarding through a central
// site. Site paris sends all inbound mail to hub's MX first (its central
// hop; hub's address is in paris's relaynets, so hub can hand mail
// back); hub, which has no central hop, routes it on: to its own
// mailbox, or to the site that holds the address. Followed hop by hop
// from the outside, every recipient ends delivered on its own site, in
// a few hops, with no loop.
func TestCentralHopWithSites(t *testing.T) {
	ctx := context.Background()
	user := func(addr, id string) directory.Entry {
		return directory.Entry{Kind: directory.KindUser, Address: addr, User: &directory.User{ID: id, Address: addr}}
	}
	hubIP, parisIP, berlinIP := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	type site struct {
		table *routing.Table
		ip    netip.Addr
	}
	sites := map[string]site{
		"hub": {routing.NewTable(graphDir{entries: map[string]directory.Entry{"hana@example.com": user("hana@example.com", "acct-hana")}},
			routing.TableOptions{Sites: fakeSites{"pia@example.com": "paris", "ben@example.com": "berlin"}}), hubIP},
		"paris": {routing.NewTable(graphDir{entries: map[string]directory.Entry{"pia@example.com": user("pia@example.com", "acct-pia")}},
			routing.TableOptions{Sites: fakeSites{"hana@example.com": "hub", "ben@example.com": "berlin"},
				Rules: compile(t, routing.Config{CentralHop: &routing.Gateway{NextHop: "mx.hub.example:2525"}, Relaynets: []string{hubIP.String()}})}), parisIP},
		"berlin": {routing.NewTable(graphDir{entries: map[string]directory.Entry{"ben@example.com": user("ben@example.com", "acct-ben")}},
			routing.TableOptions{Sites: fakeSites{"hana@example.com": "hub", "pia@example.com": "paris"}}), berlinIP},
	}
	mxSite := map[string]string{"mx.hub.example": "hub", "mx.paris.example": "paris", "mx.berlin.example": "berlin"}
	outside := routing.Envelope{From: "s@elsewhere.test", ClientIP: netip.MustParseAddr("203.0.113.5")}

	// follow resolves rcpt at site for env and follows each relay to the
	// site it names, returning the rules along the way and the site
	// that delivered.
	follow := func(at string, env routing.Envelope, rcpt string) (path []string, deliveredAt string) {
		for range 5 {
			res, err := sites[at].table.Resolve(ctx, env, rcpt)
			require.NoError(t, err)
			require.Len(t, res.Decisions, 1)
			d := res.Decisions[0]
			path = append(path, at+":"+d.Rule)
			switch d.Kind {
			case routing.Deliver:
				return path, at
			case routing.Relay:
				next, ok := mxSite[d.Hop.NextHop.Host]
				require.True(t, ok, "relay out of the organisation: %+v", d)
				env = routing.Envelope{From: env.From, ClientIP: sites[at].ip}
				at = next
			default:
				t.Fatalf("%s at %s: %+v", rcpt, at, d)
			}
		}
		t.Fatalf("%s: no delivery after 5 hops (loop): %v", rcpt, path)
		return nil, ""
	}

	// Inbound at paris: every recipient goes to the central site first,
	// its own users too, and comes back to be delivered.
	path, got := follow("paris", outside, "pia@example.com")
	require.Equal(t, "paris", got)
	require.Equal(t, []string{"paris:central-hop", "hub:remote-site", "paris:user"}, path)
	path, got = follow("paris", outside, "hana@example.com")
	require.Equal(t, "hub", got)
	require.Equal(t, []string{"paris:central-hop", "hub:user"}, path)
	path, got = follow("paris", outside, "ben@example.com")
	require.Equal(t, "berlin", got)
	require.Equal(t, []string{"paris:central-hop", "hub:remote-site", "berlin:user"}, path)

	// A site without a central hop relays straight to the holder; the
	// holder paris still sends it through the hub (berlin is not in its
	// relaynets: to paris it is inbound mail like any other).
	path, got = follow("berlin", outside, "pia@example.com")
	require.Equal(t, "paris", got)
	require.Equal(t, []string{"berlin:remote-site", "paris:central-hop", "hub:remote-site", "paris:user"}, path)

	// The central hop is for inbound mail: paris's own submissions go
	// straight to the holding site, TLS required.
	res, err := sites["paris"].table.Resolve(ctx, routing.Envelope{From: "pia@example.com", Authenticated: true, ClientIP: parisIP}, "ben@example.com")
	require.NoError(t, err)
	require.Equal(t, routing.RuleRemoteSite, res.Decisions[0].Rule)
	require.Equal(t, "berlin", res.Decisions[0].Hop.Site)
	require.Equal(t, routing.TLSRequired, res.Decisions[0].Hop.TLS)

	// An address nobody holds: paris sends it to the hub, whose
	// unknown-recipient policy rejects it (it does not go back to paris).
	res, err = sites["paris"].table.Resolve(ctx, outside, "nobody@example.com")
	require.NoError(t, err)
	require.Equal(t, routing.RuleCentralHop, res.Decisions[0].Rule)
	res, err = sites["hub"].table.Resolve(ctx, routing.Envelope{From: outside.From, ClientIP: parisIP}, "nobody@example.com")
	require.NoError(t, err)
	require.Equal(t, routing.RuleUnknownRecipient, res.Decisions[0].Rule)
}
