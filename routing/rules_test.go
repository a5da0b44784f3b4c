package routing_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/routing"
)

var (
	internet = routing.Envelope{From: "someone@partner.example", ClientIP: netip.MustParseAddr("203.0.113.5")}
	authed   = routing.Envelope{From: "alice@example.com", Authenticated: true, ClientIP: netip.MustParseAddr("198.51.100.7")}
)

func compile(t *testing.T, cfg routing.Config) *routing.Rules {
	t.Helper()
	r, err := routing.Compile(cfg)
	require.NoError(t, err)
	return r
}

func resolve(t *testing.T, table *routing.Table, env routing.Envelope, rcpt string) routing.Result {
	t.Helper()
	res, err := table.Resolve(context.Background(), env, rcpt)
	require.NoError(t, err, rcpt)
	return res
}

func relay(addr, rule, permit string, hop routing.Hop) routing.Decision {
	return routing.Decision{Kind: routing.Relay, Address: addr, Rule: rule, Permit: permit, Hop: hop}
}

func disabledDecision(w world) routing.Decision {
	d := reject("dis@example.com", 550, "5.2.1", "mailbox disabled", "disabled-user")
	d.Account = w.dis
	return d
}

func TestRelayDomainsRoutesAndRelaynets(t *testing.T) {
	w := newWorld(t)
	creds := &routing.Credentials{Username: "mailyard", Password: "pw"}
	rules := compile(t, routing.Config{
		RelayDomains: []routing.RelayDomain{
			{Domain: "relay.example", Gateway: routing.Gateway{NextHop: "[192.0.2.10]:2525", TLS: routing.TLSRequired}},
			{Domain: ".sub.example"},
		},
		Routes: []routing.Route{
			{Match: "*", Gateway: routing.Gateway{NextHop: "smarthost.example:587", TLS: routing.TLSVerify, Auth: creds}},
			{Match: "VIP@relay.example", Gateway: routing.Gateway{NextHop: "mx:vip-gw.example"}},
			{Match: ".partner.example", Gateway: routing.Gateway{NextHop: "[2001:db8::25]"}},
		},
		Relaynets: []string{"127.0.0.0/8", "::1", "192.0.2.128/25"},
	})
	table := routing.NewTable(w.dir, routing.TableOptions{Rules: rules})
	relayDomain := routing.Hop{NextHop: routing.NextHop{Host: "192.0.2.10", Port: 2525}, TLS: routing.TLSRequired, Route: "relay.example"}
	smarthost := routing.Hop{NextHop: routing.NextHop{Host: "smarthost.example", Port: 587}, TLS: routing.TLSVerify, Auth: creds, Route: "*"}
	denied := func(a string) routing.Decision { return reject(a, 554, "5.7.1", "relay access denied", "relay-denied") }

	for _, c := range []struct {
		env  routing.Envelope
		rcpt string
		want routing.Decision
	}{
		// Relay domains: anyone may send, to the domain's next hop.
		{internet, "X@Relay.Example", relay("X@relay.example", "relay-domain", "hosted", relayDomain)},
		// The address route is more specific than the relay domain.
		{internet, "vip+tag@relay.example", relay("vip+tag@relay.example", "route", "hosted",
			routing.Hop{NextHop: routing.NextHop{Host: "vip-gw.example", MX: true}, Route: "vip@relay.example"})},
		// ".sub.example" is every subdomain, not the domain itself.
		{internet, "a@b.c.sub.example", relay("a@b.c.sub.example", "relay-domain", "hosted", routing.Hop{Route: ".sub.example"})},
		{internet, "a@sub.example", denied("a@sub.example")},
		{internet, "x@elsewhere.example", denied("x@elsewhere.example")},
		// Relaying needs AUTH or a relaynet; "*" is the smarthost.
		{authed, "x@elsewhere.example", relay("x@elsewhere.example", "route", "authenticated", smarthost)},
		{routing.Envelope{ClientIP: netip.MustParseAddr("127.0.0.9")}, "x@elsewhere.example", relay("x@elsewhere.example", "route", "relaynet", smarthost)},
		{routing.Envelope{ClientIP: netip.MustParseAddr("::ffff:127.0.0.1")}, "x@elsewhere.example", relay("x@elsewhere.example", "route", "relaynet", smarthost)},
		{routing.Envelope{ClientIP: netip.MustParseAddr("::1")}, "x@elsewhere.example", relay("x@elsewhere.example", "route", "relaynet", smarthost)},
		{routing.Envelope{ClientIP: netip.MustParseAddr("192.0.2.200")}, "x@elsewhere.example", relay("x@elsewhere.example", "route", "relaynet", smarthost)},
		{routing.Envelope{ClientIP: netip.MustParseAddr("192.0.2.127")}, "x@elsewhere.example", denied("x@elsewhere.example")},
		{routing.Envelope{ClientIP: netip.MustParseAddr("::2")}, "x@elsewhere.example", denied("x@elsewhere.example")},
		// A subdomain route beats "*".
		{authed, "x@mx1.partner.example", relay("x@mx1.partner.example", "route", "authenticated",
			routing.Hop{NextHop: routing.NextHop{Host: "2001:db8::25"}, Route: ".partner.example"})},
		// "*" never takes hosted domains.
		{authed, "alice@example.com", deliver("alice@example.com", w.alice, "user")},
	} {
		res := resolve(t, table, c.env, c.rcpt)
		assert.Equal(t, []routing.Decision{c.want}, res.Decisions, "%s from %v", c.rcpt, c.env.ClientIP)
	}
	assert.True(t, table.Relaynet(netip.MustParseAddr("127.1.2.3")))
	assert.False(t, table.Relaynet(netip.Addr{}))

	// Members of a local list are relayed whatever the client: the list
	// is ours.
	res := resolve(t, table, internet, "sales@example.com")
	assert.Contains(t, res.Decisions, relay("Partner@elsewhere.example", "route", "expansion", smarthost))
}

// TestCoexistence is the shared-namespace migration: example.com's route
// points at the old system, one user still has a route of their own, and
// the technical domain the old system forwards to is delivered locally.
func TestCoexistence(t *testing.T) {
	w := newWorld(t)
	exchange := routing.Hop{NextHop: routing.NextHop{Host: "192.0.2.25"}, Route: "example.com"}
	rules := compile(t, routing.Config{
		TechnicalDomains: []routing.TechnicalDomain{{Name: "Tech.Example.com", Domain: "example.com"}, {Name: "stale.example", Domain: "gone.example"}},
		Routes: []routing.Route{
			{Match: "example.com", Gateway: routing.Gateway{NextHop: "[192.0.2.25]"}},
			{Match: "bob@example.com", Gateway: routing.Gateway{NextHop: "old.example:1025", TLS: routing.TLSNone}},
		},
		Unknown: []routing.UnknownPolicy{{Action: routing.UnknownRelay, Gateway: routing.Gateway{NextHop: "[192.0.2.25]"}}},
	})
	table := routing.NewTable(w.dir, routing.TableOptions{Rules: rules})

	res := resolve(t, table, internet, "alice@example.net")
	assert.Equal(t, "alice@example.com", res.Recipient)
	assert.Equal(t, []routing.Decision{relay("alice@example.com", "route", "hosted", exchange)}, res.Decisions, "the domain route overrides local delivery")

	res = resolve(t, table, authed, "bob+x@example.com")
	assert.Equal(t, []routing.Decision{relay("bob+x@example.com", "route", "hosted",
		routing.Hop{NextHop: routing.NextHop{Host: "old.example", Port: 1025}, TLS: routing.TLSNone, Route: "bob@example.com"})}, res.Decisions,
		"the user route is more specific")

	res = resolve(t, table, internet, "ALICE@tech.example.com")
	assert.Equal(t, "alice@example.com", res.Recipient)
	assert.Equal(t, []routing.Decision{deliver("alice@example.com", w.alice, "user")}, res.Decisions, "the technical domain is local")

	// What the technical address expands to stays local too.
	res = resolve(t, table, internet, "info@tech.example.com")
	assert.Equal(t, []routing.Decision{
		deliver("alice@example.com", w.alice, "user"),
		deliver("bob+sales@example.com", w.bob, "user"),
		relay("Partner@elsewhere.example", "remote", "expansion", routing.Hop{}),
		disabledDecision(w),
		deliver("carol@example.com", w.carol, "user"),
	}, res.Decisions)

	// Unknown: relayed to the old system, except in the technical domain,
	// where that would loop.
	res = resolve(t, table, internet, "nobody@example.com")
	assert.Equal(t, []routing.Decision{relay("nobody@example.com", "route", "hosted", exchange)}, res.Decisions, "the domain route comes first")
	res = resolve(t, table, internet, "nobody@tech.example.com")
	assert.Equal(t, []routing.Decision{reject("nobody@example.com", 550, "5.1.1", "no such user", "unknown-recipient")}, res.Decisions)

	res = resolve(t, table, internet, "x@stale.example")
	assert.Equal(t, []routing.Decision{reject("x@gone.example", 550, "5.1.2", "technical domain not served here", "technical-domain")}, res.Decisions)
}

func TestUnknownRecipientPolicies(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.dir.CreateDomain(ctx, directory.Domain{Name: "old.example", Tenant: "acme"})
	require.NoError(t, err)
	_, err = w.dir.CreateDomain(ctx, directory.Domain{Name: "strict.example", Tenant: "acme"})
	require.NoError(t, err)
	gateway := routing.Hop{NextHop: routing.NextHop{Host: "192.0.2.30", Port: 25}, TLS: routing.TLSRequired}
	table := routing.NewTable(w.dir, routing.TableOptions{Rules: compile(t, routing.Config{
		Unknown: []routing.UnknownPolicy{
			{Action: routing.UnknownCatchAll, CatchAll: "Carol@example.net"},
			{Domain: "old.example", Action: routing.UnknownRelay, Gateway: routing.Gateway{NextHop: "[192.0.2.30]:25", TLS: routing.TLSRequired}},
			{Domain: "strict.example", Action: routing.UnknownReject},
		},
	})})

	res := resolve(t, table, internet, "nobody@example.net")
	assert.Equal(t, "nobody@example.com", res.Recipient)
	assert.Equal(t, []routing.Decision{deliver("carol@example.com", w.carol, "catch-all")}, res.Decisions)
	res = resolve(t, table, internet, "nobody@old.example")
	assert.Equal(t, []routing.Decision{relay("nobody@old.example", "unknown-relay", "hosted", gateway)}, res.Decisions)
	res = resolve(t, table, internet, "nobody@strict.example")
	assert.Equal(t, []routing.Decision{reject("nobody@strict.example", 550, "5.1.1", "no such user", "unknown-recipient")}, res.Decisions)
	// Known addresses are not affected.
	res = resolve(t, table, internet, "alice@example.com")
	assert.Equal(t, []routing.Decision{deliver("alice@example.com", w.alice, "user")}, res.Decisions)

	// A catch-all that does not exist is rejected, not looped.
	table = routing.NewTable(w.dir, routing.TableOptions{Rules: compile(t, routing.Config{
		Unknown: []routing.UnknownPolicy{{Action: routing.UnknownCatchAll, CatchAll: "ghost@example.com"}},
	})})
	res = resolve(t, table, internet, "nobody@example.com")
	assert.Equal(t, []routing.Decision{reject("ghost@example.com", 550, "5.1.1", "no such user", "unknown-recipient")}, res.Decisions)
}

func TestForwarding(t *testing.T) {
	w := newWorld(t)
	table := routing.NewTable(w.dir, routing.TableOptions{Rules: compile(t, routing.Config{
		Forwards: []routing.Forward{
			{Address: "alice@example.com", Targets: []string{"Ext@Remote.Example", "bob@example.com"}, KeepCopy: true},
			{Address: "bob@example.com", Targets: []string{"alice@example.net"}},
			{Address: "dis@example.com", Targets: []string{"carol@example.com"}, KeepCopy: true},
		},
	})})
	ext := relay("Ext@remote.example", "forward", "expansion", routing.Hop{})

	res := resolve(t, table, internet, "alice@example.com")
	assert.Equal(t, []routing.Decision{deliver("alice@example.com", w.alice, "user"), ext}, res.Decisions,
		"local copy kept; bob forwards back to alice, who is already done")
	res = resolve(t, table, internet, "bob@example.com")
	assert.Equal(t, []routing.Decision{deliver("alice@example.com", w.alice, "forward"), ext}, res.Decisions,
		"no local copy for bob")
	res = resolve(t, table, internet, "dis@example.com")
	assert.Equal(t, []routing.Decision{disabledDecision(w)}, res.Decisions,
		"a blocked user forwards nothing")

	// Two users forwarding to each other without keeping a copy.
	table = routing.NewTable(w.dir, routing.TableOptions{Rules: compile(t, routing.Config{
		Forwards: []routing.Forward{
			{Address: "alice@example.com", Targets: []string{"bob@example.com"}},
			{Address: "bob@example.com", Targets: []string{"alice@example.com"}},
		},
	})})
	res = resolve(t, table, internet, "alice@example.com")
	assert.Equal(t, []routing.Decision{reject("alice@example.com", 550, "5.4.6", "alias or group expands only to itself", "loop")}, res.Decisions)
}

func TestAlwaysBCC(t *testing.T) {
	w := newWorld(t)
	journal, err := w.dir.CreateUser(context.Background(), directory.User{Address: "journal@example.com"}, "")
	require.NoError(t, err)
	table := routing.NewTable(w.dir, routing.TableOptions{Rules: compile(t, routing.Config{
		AlwaysBCC: []routing.BCC{
			{Address: "journal@example.com"},
			{Address: "dlp@dlp.example", Domain: "example.com", Direction: routing.DirectionOutbound},
			{Address: "JOURNAL@example.com", Direction: routing.DirectionInbound},
		},
	})})
	copyJournal := deliver("journal@example.com", journal.ID, "always-bcc")
	copyDLP := relay("dlp@dlp.example", "always-bcc", "expansion", routing.Hop{})

	res := resolve(t, table, internet, "alice@example.com")
	assert.Equal(t, []routing.Decision{deliver("alice@example.com", w.alice, "user")}, res.Decisions)
	assert.Equal(t, []routing.Decision{copyJournal}, res.Copies, "inbound: the journal once, no outbound DLP copy")

	res = resolve(t, table, authed, "Ext@remote.example")
	assert.Equal(t, []routing.Decision{relay("Ext@remote.example", "remote", "authenticated", routing.Hop{})}, res.Decisions)
	assert.Equal(t, []routing.Decision{copyJournal, copyDLP}, res.Copies, "outbound from example.com")

	other := routing.Envelope{From: "x@partner.example", Authenticated: true}
	res = resolve(t, table, other, "Ext@remote.example")
	assert.Equal(t, []routing.Decision{copyJournal}, res.Copies, "the DLP entry is for example.com senders only")

	res = resolve(t, table, internet, "nobody@example.com")
	assert.Empty(t, res.Copies, "a rejected recipient gets no copies")
	res = resolve(t, table, internet, "x@remote.example")
	assert.Empty(t, res.Copies, "relay denied: no copies")
}

func TestCentralHop(t *testing.T) {
	w := newWorld(t)
	central := routing.Hop{NextHop: routing.NextHop{Host: "central.example", Port: 2525}}
	table := routing.NewTable(w.dir, routing.TableOptions{Rules: compile(t, routing.Config{
		CentralHop:       &routing.Gateway{NextHop: "central.example:2525"},
		Relaynets:        []string{"192.0.2.0/24"},
		TechnicalDomains: []routing.TechnicalDomain{{Name: "tech.example.com", Domain: "example.com"}},
	})})
	res := resolve(t, table, internet, "info@example.net")
	assert.Equal(t, "info@example.com", res.Recipient)
	assert.Equal(t, []routing.Decision{relay("info@example.com", "central-hop", "hosted", central)}, res.Decisions)

	// The central node handing mail back, local users and the technical
	// domain are routed normally.
	for _, env := range []routing.Envelope{{ClientIP: netip.MustParseAddr("192.0.2.9")}, authed} {
		res = resolve(t, table, env, "alice@example.com")
		assert.Equal(t, []routing.Decision{deliver("alice@example.com", w.alice, "user")}, res.Decisions)
	}
	res = resolve(t, table, internet, "alice@tech.example.com")
	assert.Equal(t, []routing.Decision{deliver("alice@example.com", w.alice, "user")}, res.Decisions)
	res = resolve(t, table, internet, "x@remote.example")
	assert.Equal(t, "relay-denied", res.Decisions[0].Rule, "the central hop is for hosted domains only")
}

func TestCompileErrors(t *testing.T) {
	_, err := routing.Compile(routing.Config{
		RelayDomains: []routing.RelayDomain{
			{Domain: "relay.example"}, {Domain: "Relay.Example"}, {Domain: "bad domain"},
			{Domain: "x.example", Gateway: routing.Gateway{NextHop: "h:0"}},
		},
		Routes: []routing.Route{
			{Match: "", Gateway: routing.Gateway{NextHop: "h"}},
			{Match: "*"}, {Match: "*"},
			{Match: "relay.example"},
			{Match: "a@b.example"}, {Match: "A@B.example"},
			{Match: "tech.example"},
			{Match: "x@tech.example"},
			{Match: `"q"@b.example`},
			{Match: "c.example", Gateway: routing.Gateway{NextHop: "h", TLS: routing.TLSPolicy(9)}},
			{Match: "d.example", Gateway: routing.Gateway{NextHop: "h", Auth: &routing.Credentials{Password: "secret-in-config"}}},
		},
		TechnicalDomains: []routing.TechnicalDomain{{Name: "tech.example", Domain: "main.example"}, {Name: "same.example", Domain: "same.example"}},
		Unknown: []routing.UnknownPolicy{
			{Action: routing.UnknownCatchAll, CatchAll: "not an address"},
			{Domain: "a.example", Action: routing.UnknownRelay},
			{Domain: "b.example", Action: routing.UnknownRelay, Gateway: routing.Gateway{NextHop: ":2525"}},
			{Domain: "c.example"}, {Domain: "C.example"},
			{Domain: "d.example", Action: routing.UnknownAction(7)},
		},
		Forwards: []routing.Forward{
			{Address: "u@a.example"}, {Address: "v@a.example", Targets: []string{"bad"}},
			{Address: "w@a.example", Targets: []string{"x@b.example"}}, {Address: "W@a.example", Targets: []string{"x@b.example"}},
		},
		AlwaysBCC:  []routing.BCC{{Address: ""}, {Address: "j@a.example", Domain: "-x"}, {Address: "j@a.example", Direction: routing.Direction(5)}},
		CentralHop: &routing.Gateway{NextHop: ""},
		Relaynets:  []string{"10.0.0.0/33", "fe80::1%eth0", "::ffff:10.0.0.0/104", "nonsense"},
	})
	require.Error(t, err)
	assert.ErrorIs(t, err, routing.ErrConfig)
	var joined interface{ Unwrap() []error }
	require.True(t, errors.As(err, &joined))
	msg := err.Error()
	for _, want := range []string{
		`relay_domains[1]: "Relay.Example" listed twice`,
		`relay_domains[2]: directory: invalid: domain "bad domain"`,
		`relay_domains[3] "x.example": routing: invalid configuration: next hop "h:0": port 0 out of range`,
		`routes[0]: routing: invalid configuration: empty route pattern`,
		`routes[2]: routing: invalid configuration: route "*" listed twice`,
		`routes[3]: routing: invalid configuration: route "relay.example": also a relay domain`,
		`routes[5]: routing: invalid configuration: route "a@b.example" listed twice`,
		`routes[6]: routing: invalid configuration: route "tech.example": a technical domain`,
		`routes[7]: routing: invalid configuration: route "x@tech.example": tech.example is a technical domain`,
		`routes[8]: route "\"q\"@b.example"`,
		`routes[9] "c.example": routing: invalid configuration: bad TLS policy 9`,
		`routes[10] "d.example": routing: invalid configuration: AUTH credentials without a username`,
		`technical_domains[1]: "same.example" cannot be an alias of itself`,
		`unknown[0]: catch-all: directory: invalid`,
		`unknown[1]: routing: invalid configuration: next hop "": must name a host`,
		`unknown[2]: routing: invalid configuration: next hop ":2525": must name a host`,
		`unknown[4]: domain "C.example" has two policies`,
		`unknown[5]: bad action 7`,
		`forwards[0] "u@a.example": no targets`,
		`forwards[1] "v@a.example": target: directory: invalid`,
		`forwards[3]: "w@a.example" listed twice`,
		`always_bcc[0]: directory: invalid: empty address`,
		`always_bcc[1]: directory: invalid: domain "-x"`,
		`always_bcc[2]: bad direction 5`,
		`central_hop: routing: invalid configuration: next hop "": must name a host`,
		`relaynets[0]: routing: invalid configuration: network "10.0.0.0/33"`,
		`relaynets[1]: routing: invalid configuration: network "fe80::1%eth0": want a CIDR or an IP address`,
		`relaynets[2]: routing: invalid configuration: network "::ffff:10.0.0.0/104": write IPv4-mapped networks as IPv4`,
		`relaynets[3]: routing: invalid configuration: network "nonsense"`,
	} {
		assert.Contains(t, msg, want)
	}
	assert.NotContains(t, msg, "secret-in-config")
	assert.Len(t, joined.Unwrap(), 29, msg)

	_, err = routing.Compile(routing.Config{})
	assert.NoError(t, err, "the zero Config is valid")
}

func TestExplainRules(t *testing.T) {
	w := newWorld(t)
	table := routing.NewTable(w.dir, routing.TableOptions{Rules: compile(t, routing.Config{
		TechnicalDomains: []routing.TechnicalDomain{{Name: "tech.example.com", Domain: "example.com"}},
		Routes: []routing.Route{{Match: "example.com", Gateway: routing.Gateway{NextHop: "mx:exchange.example:1025", TLS: routing.TLSVerify,
			Auth: &routing.Credentials{Username: "relay", Password: "hunter2"}}}},
		Unknown:   []routing.UnknownPolicy{{Action: routing.UnknownCatchAll, CatchAll: "carol@example.com"}},
		Forwards:  []routing.Forward{{Address: "alice@example.com", Targets: []string{"ext@remote.example"}}},
		AlwaysBCC: []routing.BCC{{Address: "carol@example.com", Direction: routing.DirectionInbound}},
		Relaynets: []string{"192.0.2.0/24"},
	})})
	ctx := context.Background()
	out, err := table.Explain(ctx, internet, "alice@example.com")
	require.NoError(t, err)
	for _, want := range []string{
		"envelope: from someone@partner.example, authenticated false, client 203.0.113.5 (relaynet false)",
		`alice@example.com: route "example.com" overrides local delivery`,
		`relay alice@example.com via MX of exchange.example, port 1025, TLS verify, AUTH as relay, route "example.com" [rule route, permit hosted]`,
		"always-bcc carol@example.com applies (inbound)",
		`copy to "carol@example.com"`,
		"copies: 1",
		`relay carol@example.com via MX of exchange.example, port 1025, TLS verify, AUTH as relay, route "example.com" [rule always-bcc, permit expansion]`,
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "hunter2")

	out, err = table.Explain(ctx, routing.Envelope{ClientIP: netip.MustParseAddr("192.0.2.1")}, "nobody@tech.example.com")
	require.NoError(t, err)
	for _, want := range []string{
		"client 192.0.2.1 (relaynet true)",
		"tech.example.com is the technical domain of example.com: delivered locally, routes do not apply",
		"nobody@example.com: no such address in example.com; unknown-recipient policy (default): catch-all",
		"-> catch-all carol@example.com",
		"deliver carol@example.com to account " + w.carol + " [rule catch-all]",
	} {
		assert.Contains(t, out, want)
	}

	out, err = table.Explain(ctx, internet, "alice@tech.example.com")
	require.NoError(t, err)
	assert.Contains(t, out, "alice@example.com: forwarding (alice@example.com) to 1 target(s), local copy kept: false")
	assert.Contains(t, out, "relay ext@remote.example via MX of remote.example, port 25, TLS opportunistic [rule forward, permit expansion]")
}
