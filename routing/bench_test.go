package routing_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/routing"
)

// benchDir is an in-memory directory with many domains, so that the
// benchmark measures routing rather than a storage backend.
type benchDir struct {
	domains map[string]directory.Domain // any hosted name -> domain
	entries map[string]directory.Entry  // canonical address -> entry
}

func (d *benchDir) Authenticate(context.Context, string, string, directory.Protocol) (directory.User, error) {
	return directory.User{}, directory.ErrAuthFailed
}

func (d *benchDir) LookupDomain(_ context.Context, name string) (directory.Domain, error) {
	if dom, ok := d.domains[strings.ToLower(name)]; ok {
		return dom, nil
	}
	return directory.Domain{}, directory.ErrNotFound
}

func (d *benchDir) LookupAddress(_ context.Context, addr string) (directory.Entry, error) {
	if e, ok := d.entries[addr]; ok {
		return e, nil
	}
	local, domain, _ := strings.Cut(addr, "@")
	if base, _, ok := directory.SplitSubaddress(local); ok {
		if e, ok := d.entries[base+"@"+domain]; ok {
			return e, nil
		}
	}
	return directory.Entry{}, directory.ErrNotFound
}

func (d *benchDir) SendAddresses(context.Context, string) ([]string, error) { return nil, nil }

const (
	benchUsers   = 100_000
	benchAliases = 10_000
	benchRoutes  = 1_000
	benchDomains = 10
)

var benchWorld = sync.OnceValues(func() (*benchDir, routing.Config) {
	d := &benchDir{domains: map[string]directory.Domain{}, entries: map[string]directory.Entry{}}
	for i := range benchDomains {
		name := fmt.Sprintf("d%d.example", i)
		dom := directory.Domain{Name: name, Tenant: "t", Aliases: []string{fmt.Sprintf("alt%d.example", i)}}
		d.domains[name], d.domains[dom.Aliases[0]] = dom, dom
	}
	user := func(i int) string { return fmt.Sprintf("user%d@d%d.example", i, i%benchDomains) }
	for i := range benchUsers {
		addr := user(i)
		d.entries[addr] = directory.Entry{Kind: directory.KindUser, Address: addr,
			User: &directory.User{ID: fmt.Sprintf("acct%d", i), Address: addr}}
	}
	for i := range benchAliases {
		addr := fmt.Sprintf("alias%d@d%d.example", i, i%benchDomains)
		targets := []string{user(i * 7 % benchUsers), user(i * 13 % benchUsers), fmt.Sprintf("ext%d@remote%d.test", i, i%50)}
		d.entries[addr] = directory.Entry{Kind: directory.KindAlias, Address: addr,
			Alias: &directory.Alias{Address: addr, Targets: targets}}
	}
	// 1,000 routes: 600 users still on the old system, 300 remote
	// domains, 99 subdomain routes and a smarthost.
	var cfg routing.Config
	for i := range 600 {
		cfg.Routes = append(cfg.Routes, routing.Route{Match: user(benchUsers - 1 - i), Gateway: routing.Gateway{NextHop: "[192.0.2.25]"}})
	}
	for i := range 300 {
		cfg.Routes = append(cfg.Routes, routing.Route{Match: fmt.Sprintf("partner%d.test", i), Gateway: routing.Gateway{NextHop: fmt.Sprintf("mx:gw%d.test:2525", i), TLS: routing.TLSVerify}})
	}
	for i := range 99 {
		cfg.Routes = append(cfg.Routes, routing.Route{Match: fmt.Sprintf(".branch%d.test", i), Gateway: routing.Gateway{NextHop: fmt.Sprintf("relay%d.test", i)}})
	}
	cfg.Routes = append(cfg.Routes, routing.Route{Match: "*", Gateway: routing.Gateway{NextHop: "smarthost.test:587", TLS: routing.TLSRequired}})
	cfg.Relaynets = []string{"10.0.0.0/8", "192.168.0.0/16", "fd00::/8"}
	return d, cfg
})

// BenchmarkResolve measures Resolve with 100,000 users, 10,000 aliases
// and 1,000 routes over an in-memory directory. Results are recorded in
// bench/README.md.
func BenchmarkResolve(b *testing.B) {
	d, cfg := benchWorld()
	rules, err := routing.Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	table := routing.NewTable(d, routing.TableOptions{Rules: rules})
	withCopies := cfg
	withCopies.AlwaysBCC = []routing.BCC{{Address: "user1@d1.example"}}
	withCopies.Forwards = []routing.Forward{{Address: "user2@d2.example", Targets: []string{"ext@remote.test"}, KeepCopy: true}}
	rulesCopies, err := routing.Compile(withCopies)
	if err != nil {
		b.Fatal(err)
	}
	tableCopies := routing.NewTable(d, routing.TableOptions{Rules: rulesCopies})
	inbound := routing.Envelope{From: "someone@partner1.test"}
	submitted := routing.Envelope{From: "user3@d3.example", Authenticated: true}

	for _, c := range []struct {
		name  string
		table *routing.Table
		env   routing.Envelope
		rcpt  func(i int) string
		kind  routing.Kind
	}{
		{"user", table, inbound, func(i int) string { return fmt.Sprintf("user%d@d%d.example", i%90_000, i%90_000%benchDomains) }, routing.Deliver},
		{"user-subaddress-alt-domain", table, inbound, func(i int) string { return fmt.Sprintf("User%d+tag@alt%d.example", i%90_000, i%90_000%benchDomains) }, routing.Deliver},
		{"alias-3-targets", table, submitted, func(i int) string {
			return fmt.Sprintf("alias%d@d%d.example", i%benchAliases, i%benchAliases%benchDomains)
		}, routing.Deliver},
		{"user-routed-to-old-system", table, inbound, func(i int) string {
			return fmt.Sprintf("user%d@d%d.example", benchUsers-1-i%600, (benchUsers-1-i%600)%benchDomains)
		}, routing.Relay},
		{"unknown", table, inbound, func(i int) string { return fmt.Sprintf("nobody%d@d%d.example", i, i%benchDomains) }, routing.Reject},
		{"remote-domain-route", table, submitted, func(i int) string { return fmt.Sprintf("x@partner%d.test", i%300) }, routing.Relay},
		{"remote-subdomain-route", table, submitted, func(i int) string { return fmt.Sprintf("x@a.b.branch%d.test", i%99) }, routing.Relay},
		{"remote-smarthost", table, submitted, func(i int) string { return fmt.Sprintf("x%d@elsewhere.test", i%1000) }, routing.Relay},
		{"relay-denied", table, inbound, func(i int) string { return fmt.Sprintf("x%d@elsewhere.test", i%1000) }, routing.Reject},
		{"user-with-always-bcc", tableCopies, inbound, func(i int) string { return fmt.Sprintf("user%d@d%d.example", i%90_000, i%90_000%benchDomains) }, routing.Deliver},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			// Addresses are prepared outside the timed loop.
			rcpts := make([]string, 4096)
			for i := range rcpts {
				rcpts[i] = c.rcpt(i * 7919)
			}
			res, err := c.table.Resolve(ctx, c.env, rcpts[0])
			if err != nil || res.Decisions[0].Kind != c.kind {
				b.Fatalf("%s: %v, %v", rcpts[0], res.Decisions, err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.table.Resolve(ctx, c.env, rcpts[i&4095]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
