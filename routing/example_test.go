package routing_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store/sqlite"
)

// A coexistence set-up: example.com is still served by the old system,
// except for a migrated user whose copy arrives through the technical
// domain; a partner domain is relayed; everything leaving goes through a
// smarthost; and the DLP system gets a copy of outbound mail.
func Example() {
	ctx := context.Background()
	dataDir, err := os.MkdirTemp("", "mailyard-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dataDir)
	st, err := sqlite.Open(ctx, dataDir, sqlite.Options{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	dir := builtin.New(st, builtin.Options{Accounts: st})
	if _, err := dir.CreateDomain(ctx, directory.Domain{Name: "example.com"}); err != nil {
		panic(err)
	}
	if _, err := dir.CreateUser(ctx, directory.User{Address: "ivan@example.com"}, ""); err != nil {
		panic(err)
	}

	rules, err := routing.Compile(routing.Config{
		TechnicalDomains: []routing.TechnicalDomain{{Name: "tech.example.com", Domain: "example.com"}},
		RelayDomains:     []routing.RelayDomain{{Domain: "partner.example", Gateway: routing.Gateway{NextHop: "[192.0.2.40]:2525", TLS: routing.TLSRequired}}},
		Routes: []routing.Route{
			{Match: "example.com", Gateway: routing.Gateway{NextHop: "[192.0.2.25]"}}, // the old system
			{Match: "*", Gateway: routing.Gateway{NextHop: "smarthost.example:587", TLS: routing.TLSVerify,
				Auth: &routing.Credentials{Username: "mailyard", Password: "secret"}}},
		},
		AlwaysBCC: []routing.BCC{{Address: "journal@dlp.example", Direction: routing.DirectionOutbound}},
		Relaynets: []string{"192.0.2.0/24"},
	})
	if err != nil {
		panic(err)
	}
	table := routing.NewTable(dir, routing.TableOptions{Rules: rules})

	internet := routing.Envelope{From: "someone@elsewhere.example", ClientIP: netip.MustParseAddr("203.0.113.9")}
	submitted := routing.Envelope{From: "ivan@example.com", Authenticated: true}
	for _, c := range []struct {
		env  routing.Envelope
		rcpt string
	}{
		{internet, "ivan@tech.example.com"},
		{internet, "ivan@example.com"},
		{internet, "bob@partner.example"},
		{internet, "bob@elsewhere.example"},
		{submitted, "bob@elsewhere.example"},
	} {
		res, err := table.Resolve(ctx, c.env, c.rcpt)
		if err != nil {
			panic(err)
		}
		for _, d := range res.Decisions {
			show(c.rcpt, d)
		}
		for _, d := range res.Copies {
			show("  copy", d)
		}
	}
	// Output:
	// ivan@tech.example.com: deliver to the mailbox of ivan@example.com [user]
	// ivan@example.com: relay to "192.0.2.25" [route, hosted]
	// bob@partner.example: relay to "192.0.2.40:2525" [relay-domain, hosted]
	// bob@elsewhere.example: reject 554 relay access denied [relay-denied]
	// bob@elsewhere.example: relay to "smarthost.example:587" [route, authenticated]
	//   copy: relay to "smarthost.example:587" [always-bcc, expansion]
}

func show(what string, d routing.Decision) {
	switch d.Kind {
	case routing.Deliver:
		fmt.Printf("%s: deliver to the mailbox of %s [%s]\n", what, d.Address, d.Rule)
	case routing.Relay:
		// An empty next hop is MX delivery to the address's domain.
		fmt.Printf("%s: relay to %q [%s, %s]\n", what, d.Hop.NextHop.String(), d.Rule, d.Permit)
	case routing.Reject:
		fmt.Printf("%s: reject %d %s [%s]\n", what, d.Code, d.Reason, d.Rule)
	}
}
