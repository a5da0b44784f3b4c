package routing_test

import (
	"context"
	"errors"
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
