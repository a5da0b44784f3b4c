package routing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/routing"
)

// TestRouteMostSpecificWins: for a random address and a random subset of
// the routes that could match it (plus decoys that must not), the route
// chosen is the first present in the documented order: user+ext@domain,
// user@domain, domain, .parent (longest first), "*" (remote domains
// only); without one, remote mail goes by MX and hosted mail stays local.
func TestRouteMostSpecificWins(t *testing.T) {
	g := graphDir{entries: map[string]directory.Entry{
		"u@example.com": {Kind: directory.KindUser, Address: "u@example.com", User: &directory.User{ID: "acct-u", Address: "u@example.com"}},
	}}
	rapid.Check(t, func(t *rapid.T) {
		hosted := rapid.Bool().Draw(t, "hosted")
		domain := "example.com"
		if !hosted {
			labels := rapid.SliceOfN(rapid.SampledFrom([]string{"a", "b", "c"}), 1, 4).Draw(t, "labels")
			domain = strings.Join(labels, ".") + ".test"
		}
		local := rapid.SampledFrom([]string{"u", "u+x", "u+x+y"}).Draw(t, "local")
		base, _, tagged := directory.SplitSubaddress(local)

		// The candidates in the documented order of specificity.
		var order []string
		if tagged {
			order = append(order, local+"@"+domain)
		}
		order = append(order, base+"@"+domain, domain)
		for d := domain; strings.Contains(d, "."); {
			d = d[strings.IndexByte(d, '.')+1:]
			order = append(order, "."+d)
		}
		order = append(order, "*")
		decoys := []string{"w@" + domain, base + "@other.test", "z." + domain, ".z." + domain, "zz.test", base + "+q@" + domain}

		var cfg routing.Config
		present := map[string]bool{}
		for _, p := range append(order, decoys...) {
			if rapid.Bool().Draw(t, "route "+p) {
				present[p] = true
				match := p
				if rapid.Bool().Draw(t, "upper") {
					match = strings.ToUpper(p)
				}
				cfg.Routes = append(cfg.Routes, routing.Route{Match: match, Gateway: routing.Gateway{NextHop: fmt.Sprintf("h%d.example", len(cfg.Routes))}})
			}
		}
		rules, err := routing.Compile(cfg)
		if err != nil {
			t.Fatalf("compile: %v", err)
		}
		want := ""
		for _, p := range order {
			if present[p] && !(hosted && p == "*") {
				want = p
				break
			}
		}
		rcpt := local + "@" + domain
		if rapid.Bool().Draw(t, "upper rcpt") {
			rcpt = strings.ToUpper(rcpt)
		}
		res, err := routing.NewTable(g, routing.TableOptions{Rules: rules}).Resolve(context.Background(), routing.Envelope{Authenticated: true}, rcpt)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Decisions) != 1 {
			t.Fatalf("%s: %v", rcpt, res.Decisions)
		}
		d := res.Decisions[0]
		switch {
		case want != "":
			if d.Kind != routing.Relay || d.Rule != routing.RuleRoute || d.Hop.Route != want {
				t.Fatalf("%s: want route %q, got %+v", rcpt, want, d)
			}
			// The hop is the one configured for that route.
			for _, r := range cfg.Routes {
				if strings.EqualFold(r.Match, want) && d.Hop.Host != r.NextHop {
					t.Fatalf("%s: route %q hop %q, got %+v", rcpt, want, r.NextHop, d.Hop)
				}
			}
		case hosted:
			if d.Kind != routing.Deliver || d.Account != "acct-u" {
				t.Fatalf("%s: no route applies, want local delivery, got %+v", rcpt, d)
			}
		default:
			if d.Kind != routing.Relay || d.Rule != routing.RuleRemote || d.Hop != (routing.Hop{}) {
				t.Fatalf("%s: no route applies, want MX delivery, got %+v", rcpt, d)
			}
		}
	})
}

// FuzzCompileRoutes feeds arbitrary route, relay-domain and policy text
// to Compile, and a recipient to the table it makes: no panic; errors
// wrap ErrConfig; with a valid config every decision is complete, and a
// relay names a configured route or relay domain (or none) with that
// entry's next hop.
func FuzzCompileRoutes(f *testing.F) {
	f.Add("example.org", "[192.0.2.1]:2525", "required", "", "relay", "x@example.org")
	f.Add("*", "smarthost.example:587", "verify", "relay.example", "reject", "Y@Relay.Example")
	f.Add(".sub.example", "mx:gw.example", "", ".relay.example", "catch-all", "a@b.sub.example")
	f.Add("u+ext@example.com", ":26", "none", "", "", "u+ext@example.com")
	f.Add("l0@example.com", "[2001:db8::1]", "opportunistic", "example.com", "relay", "nobody@example.net")
	f.Add("", "", "", "", "", "")
	g := graphDir{entries: map[string]directory.Entry{
		"u0@example.com": {Kind: directory.KindUser, Address: "u0@example.com", User: &directory.User{ID: "acct-u0", Address: "u0@example.com"}},
		"l0@example.com": {Kind: directory.KindGroup, Address: "l0@example.com",
			Group: &directory.Group{ID: "g0", Address: "l0@example.com", Members: []string{"u0@example.com", "Ext@remote.example", "nobody@example.com"}}},
	}}
	f.Fuzz(func(t *testing.T, match, nextHop, tlsName, relayDomain, unknownAction, rcpt string) {
		tls, tlsErr := routing.ParseTLSPolicy(tlsName)
		action, actionErr := routing.ParseUnknownAction(unknownAction)
		for _, err := range []error{tlsErr, actionErr} {
			if err != nil && !errors.Is(err, routing.ErrConfig) {
				t.Fatalf("policy error %v does not wrap ErrConfig", err)
			}
		}
		gw := routing.Gateway{NextHop: nextHop, TLS: tls}
		cfg := routing.Config{
			Routes:    []routing.Route{{Match: match, Gateway: gw}},
			Unknown:   []routing.UnknownPolicy{{Action: action, CatchAll: "u0@example.com", Gateway: gw}},
			Relaynets: []string{nextHop},
		}
		if relayDomain != "" {
			cfg.RelayDomains = []routing.RelayDomain{{Domain: relayDomain}}
		}
		rules, err := routing.Compile(cfg)
		if err != nil {
			if !errors.Is(err, routing.ErrConfig) {
				t.Fatalf("compile error %v does not wrap ErrConfig", err)
			}
			return
		}
		hop, err := routing.ParseNextHop(nextHop)
		if err != nil {
			t.Fatalf("compiled although the next hop %q does not parse: %v", nextHop, err)
		}
		table := routing.NewTable(g, routing.TableOptions{Rules: rules})
		for _, env := range []routing.Envelope{{}, {Authenticated: true}} {
			res := resolveComplete(t, table, env, rcpt)
			for _, d := range res.Decisions {
				if d.Kind != routing.Relay {
					continue
				}
				if d.Permit == "" {
					t.Fatalf("%q: relay without permit %+v", rcpt, d)
				}
				switch d.Rule {
				case routing.RuleRoute, routing.RuleUnknownRelay:
					if d.Hop.NextHop != hop {
						t.Fatalf("%q: hop %+v, configured %+v", rcpt, d.Hop, hop)
					}
				case routing.RuleRelayDomain:
					if d.Hop.NextHop != (routing.NextHop{}) || !strings.EqualFold(d.Hop.Route, strings.TrimSpace(relayDomain)) {
						t.Fatalf("%q: relay domain hop %+v", rcpt, d.Hop)
					}
				case routing.RuleRemote:
					if d.Hop != (routing.Hop{}) {
						t.Fatalf("%q: remote with hop %+v", rcpt, d.Hop)
					}
				}
				if d.Rule == routing.RuleRoute {
					if _, err := routing.Compile(routing.Config{Routes: []routing.Route{{Match: d.Hop.Route}}}); err != nil {
						t.Fatalf("%q: route pattern %q does not compile again: %v", rcpt, d.Hop.Route, err)
					}
				}
			}
		}
	})
}
