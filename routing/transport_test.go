package routing_test

import (
	"testing"

	"github.com/mailyard/mailyard/routing"
)

// Every entry that chooses a next hop has a transport name, and the name
// finds the entry's hop, credentials included, in the rules compiled from
// a later configuration; a name whose entry is gone finds nothing.
func TestTransportRoundTrip(t *testing.T) {
	gw := func(host, pass string) routing.Gateway {
		g := routing.Gateway{NextHop: "[" + host + "]:2525", TLS: routing.TLSRequired}
		if pass != "" {
			g.Auth = &routing.Credentials{Username: "relay", Password: pass}
		}
		return g
	}
	config := func(host, pass string) routing.Config {
		return routing.Config{
			Routes: []routing.Route{
				{Match: "*", Gateway: gw(host, pass)},
				{Match: "example.org", Gateway: gw(host, pass)},
				{Match: ".sub.example.net", Gateway: gw(host, pass)},
				{Match: "boss@example.com", Gateway: gw(host, pass)},
			},
			RelayDomains: []routing.RelayDomain{{Domain: "partner.test", Gateway: gw(host, pass)}},
			Unknown:      []routing.UnknownPolicy{{Domain: "hosted.test", Action: routing.UnknownRelay, Gateway: gw(host, pass)}},
			CentralHop:   &routing.Gateway{NextHop: "[" + host + "]:2526", Auth: &routing.Credentials{Username: "relay", Password: pass}},
		}
	}
	before, err := routing.Compile(config("192.0.2.1", "old"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := routing.Compile(config("192.0.2.2", "new"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d    routing.Decision
		want string
	}{
		{routing.Decision{Rule: routing.RuleRoute, Address: "x@anywhere.test", Hop: routing.Hop{Route: "*"}}, "*"},
		{routing.Decision{Rule: routing.RuleRoute, Address: "x@example.org", Hop: routing.Hop{Route: "example.org"}}, "example.org"},
		{routing.Decision{Rule: routing.RuleRoute, Address: "x@a.sub.example.net", Hop: routing.Hop{Route: ".sub.example.net"}}, ".sub.example.net"},
		{routing.Decision{Rule: routing.RuleRoute, Address: "boss@example.com", Hop: routing.Hop{Route: "boss@example.com"}}, "boss@example.com"},
		{routing.Decision{Rule: routing.RuleRelayDomain, Address: "x@partner.test", Hop: routing.Hop{Route: "partner.test"}}, "partner.test"},
		{routing.Decision{Rule: routing.RuleCentralHop, Address: "x@hosted.test"}, "!central-hop"},
		{routing.Decision{Rule: routing.RuleUnknownRelay, Address: "nobody@Hosted.Test"}, "!unknown-relay:hosted.test"},
	} {
		name := routing.TransportOf(tc.d)
		if name != tc.want {
			t.Errorf("TransportOf(%+v) = %q, want %q", tc.d, name, tc.want)
			continue
		}
		if _, ok := before.Transport(name); !ok {
			t.Errorf("%q not found in the rules it came from", name)
		}
		h, ok := after.Transport(name)
		if !ok || h.Auth == nil || h.Auth.Password != "new" || h.NextHop.Host != "192.0.2.2" {
			t.Errorf("%q in the new rules: %v %v", name, h, ok)
		}
	}
	if name := routing.TransportOf(routing.Decision{Rule: routing.RuleRemote, Address: "x@remote.test"}); name != "" {
		t.Errorf("MX delivery has transport %q, want none", name)
	}
	empty, err := routing.Compile(routing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "*", "example.org", ".sub.example.net", "boss@example.com", "!central-hop", "!unknown-relay:hosted.test"} {
		if h, ok := empty.Transport(name); ok {
			t.Errorf("%q found in empty rules: %v", name, h)
		}
	}
}
