package routing_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/routing"
)

// graphDir is an in-memory directory.Directory over a generated graph of
// users, aliases and groups in one domain, example.com, whose alternative
// name is example.net. It follows the directory contract (alternative
// names, sub-addressing) so the property test can run thousands of graphs.
type graphDir struct {
	entries  map[string]directory.Entry // canonical address -> entry
	forwards map[string]routing.Forward // user address -> its forwarding
}

var graphDomain = directory.Domain{Name: "example.com", Tenant: "t", Aliases: []string{"example.net"}}

func (g graphDir) Authenticate(context.Context, string, string, directory.Protocol) (directory.User, error) {
	return directory.User{}, directory.ErrAuthFailed
}

func (g graphDir) LookupDomain(_ context.Context, name string) (directory.Domain, error) {
	switch strings.ToLower(name) {
	case "example.com", "example.net":
		return graphDomain, nil
	}
	return directory.Domain{}, directory.ErrNotFound
}

func (g graphDir) canonical(addr string) (string, bool) {
	a, err := directory.ParseAddress(addr)
	if err != nil || (a.Domain != "example.com" && a.Domain != "example.net") {
		return "", false
	}
	return strings.ToLower(a.Local) + "@example.com", true
}

func (g graphDir) LookupAddress(_ context.Context, addr string) (directory.Entry, error) {
	c, ok := g.canonical(addr)
	if !ok {
		return directory.Entry{}, directory.ErrNotFound
	}
	if e, ok := g.entries[c]; ok {
		return e, nil
	}
	local, domain, _ := strings.Cut(c, "@")
	if base, _, ok := directory.SplitSubaddress(local); ok {
		if e, ok := g.entries[base+"@"+domain]; ok {
			return e, nil
		}
	}
	return directory.Entry{}, directory.ErrNotFound
}

func (g graphDir) SendAddresses(context.Context, string) ([]string, error) { return nil, nil }

// outcome is what the model expects: the terminal outcomes reachable from
// a recipient.
type outcome struct {
	accounts []string // enabled users reached
	disabled []string // disabled users reached
	relays   []string // external addresses reached
	unknown  []string // local addresses that do not exist
}

func (o outcome) total() int {
	return len(o.accounts) + len(o.disabled) + len(o.relays) + len(o.unknown)
}

// model walks the graph breadth first with a visited set: an independent
// formulation of "everything reachable, each once".
func (g graphDir) model(rcpt string) outcome {
	var o outcome
	seen := map[string]bool{}
	queue := []string{rcpt}
	for len(queue) > 0 {
		addr := queue[0]
		queue = queue[1:]
		c, local := g.canonical(addr)
		if !local {
			a, _ := directory.ParseAddress(addr)
			if r := a.String(); !slices.Contains(o.relays, r) {
				o.relays = append(o.relays, r)
			}
			continue
		}
		e, err := g.LookupAddress(context.Background(), c)
		if err != nil {
			if !slices.Contains(o.unknown, c) {
				o.unknown = append(o.unknown, c)
			}
			continue
		}
		key := e.Address
		if seen[key] {
			continue
		}
		seen[key] = true
		switch e.Kind {
		case directory.KindUser:
			fw, forwards := g.forwards[e.User.Address]
			switch {
			case e.User.Disabled:
				o.disabled = append(o.disabled, e.User.ID)
			case forwards:
				if fw.KeepCopy {
					o.accounts = append(o.accounts, e.User.ID)
				}
				queue = append(queue, fw.Targets...)
			default:
				o.accounts = append(o.accounts, e.User.ID)
			}
		case directory.KindAlias:
			queue = append(queue, e.Alias.Targets...)
		case directory.KindGroup:
			queue = append(queue, e.Group.Members...)
		}
	}
	return o
}

// spell writes an address the way a sender or an admin might: other case,
// the alternative domain name, a sub-address tag.
func spell(t *rapid.T, local, domain string) string {
	if domain == "example.com" && rapid.Bool().Draw(t, "alt") {
		domain = "EXAMPLE.net"
	}
	if rapid.Bool().Draw(t, "tag") {
		local += "+tag"
	}
	if rapid.Bool().Draw(t, "upper") {
		local = strings.ToUpper(local)
	}
	return local + "@" + domain
}

// genGraph draws a directory graph, per-user forwarding, always-BCC
// addresses and three recipients.
func genGraph(t *rapid.T) (graphDir, []string, routing.Config) {
	g := graphDir{entries: map[string]directory.Entry{}, forwards: map[string]routing.Forward{}}
	nUsers := rapid.IntRange(0, 5).Draw(t, "users")
	nLists := rapid.IntRange(0, 6).Draw(t, "lists")
	var pool []func() string
	for i := range nUsers {
		addr := fmt.Sprintf("u%d@example.com", i)
		u := &directory.User{ID: fmt.Sprintf("acct-u%d", i), Address: addr, Disabled: rapid.Bool().Draw(t, "disabled")}
		g.entries[addr] = directory.Entry{Kind: directory.KindUser, User: u, Address: addr}
		pool = append(pool, func() string { return spell(t, fmt.Sprintf("u%d", i), "example.com") })
	}
	for i := range nLists {
		pool = append(pool, func() string { return spell(t, fmt.Sprintf("l%d", i), "example.com") })
	}
	for i := range 2 {
		pool = append(pool,
			func() string { return spell(t, fmt.Sprintf("nobody%d", i), "example.com") },
			func() string { return spell(t, fmt.Sprintf("Ext%d", i), "remote.example") })
	}
	for i := range nLists {
		addr := fmt.Sprintf("l%d@example.com", i)
		n := rapid.IntRange(0, 5).Draw(t, "targets")
		var targets []string
		for range n {
			targets = append(targets, rapid.SampledFrom(pool).Draw(t, "target")())
		}
		if rapid.Bool().Draw(t, "group") {
			g.entries[addr] = directory.Entry{Kind: directory.KindGroup, Address: addr,
				Group: &directory.Group{ID: fmt.Sprintf("g%d", i), Address: addr, Members: targets}}
		} else {
			g.entries[addr] = directory.Entry{Kind: directory.KindAlias, Address: addr,
				Alias: &directory.Alias{Address: addr, Targets: targets}}
		}
	}
	var cfg routing.Config
	for i := range nUsers {
		if !rapid.Bool().Draw(t, "forwards") {
			continue
		}
		fw := routing.Forward{Address: fmt.Sprintf("u%d@example.com", i), KeepCopy: rapid.Bool().Draw(t, "keep")}
		for range rapid.IntRange(1, 3).Draw(t, "forward targets") {
			fw.Targets = append(fw.Targets, rapid.SampledFrom(pool).Draw(t, "forward target")())
		}
		g.forwards[fw.Address] = fw
		cfg.Forwards = append(cfg.Forwards, fw)
	}
	for range rapid.IntRange(0, 2).Draw(t, "bccs") {
		cfg.AlwaysBCC = append(cfg.AlwaysBCC, routing.BCC{Address: rapid.SampledFrom(pool).Draw(t, "bcc")()})
	}
	var rcpts []string
	for range 3 {
		rcpts = append(rcpts, rapid.SampledFrom(pool).Draw(t, "rcpt")())
	}
	return g, rcpts, cfg
}

// checkTerminal fails unless every decision is complete and terminal, and
// each account and each other address appears at most once.
func checkTerminal(t *rapid.T, what string, ds []routing.Decision, g graphDir) {
	accounts, addrs := map[string]bool{}, map[string]bool{}
	for _, d := range ds {
		if d.Rule == "" || d.Address == "" {
			t.Fatalf("%s: decision without rule or address: %+v", what, d)
		}
		key := ""
		switch d.Kind {
		case routing.Deliver:
			if d.Account == "" {
				t.Fatalf("%s: delivery without account: %+v", what, d)
			}
			key = d.Account
		case routing.Relay:
			if d.Permit == "" {
				t.Fatalf("%s: relay without permit: %+v", what, d)
			}
		case routing.Reject:
			if d.Code < 400 || d.Code > 599 || d.Enhanced == "" || d.Enhanced[0] != byte('0'+d.Code/100) || d.Reason == "" {
				t.Fatalf("%s: bad rejection %+v", what, d)
			}
			if d.Rule == routing.RuleDisabledUser {
				e, err := g.LookupAddress(context.Background(), d.Address)
				if err != nil || e.User.ID != d.Account {
					t.Fatalf("%s: disabled-user decision %+v does not name the account", what, d)
				}
				key = d.Account
			}
		default:
			t.Fatalf("%s: not a terminal decision: %+v", what, d)
		}
		if key != "" {
			if accounts[key] {
				t.Fatalf("%s: account %s twice in %v", what, key, ds)
			}
			accounts[key] = true
		} else {
			if addrs[d.Address] {
				t.Fatalf("%s: address %s twice in %v", what, d.Address, ds)
			}
			addrs[d.Address] = true
		}
	}
}

// TestResolveProperties: on random graphs with cycles, self-loops,
// duplicates, unknown and external targets, every recipient gets at least
// one decision, the decisions are exactly what is reachable, each account
// and each address appears once, and resolution terminates.
func TestResolveProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		g, rcpts, cfg := genGraph(t)
		rules, err := routing.Compile(cfg)
		if err != nil {
			t.Fatalf("compile: %v", err)
		}
		max := rapid.IntRange(1, 6).Draw(t, "max")
		unbounded := routing.NewTable(g, routing.TableOptions{Rules: rules})
		bounded := routing.NewTable(g, routing.TableOptions{MaxExpansion: max, Rules: rules})
		env := routing.Envelope{Authenticated: rapid.Bool().Draw(t, "authenticated")}
		for _, rcpt := range rcpts {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res, err := unbounded.Resolve(ctx, env, rcpt)
			cancel()
			if err != nil {
				t.Fatalf("%s: %v (a loop would end in the deadline)", rcpt, err)
			}
			if len(res.Decisions) == 0 {
				t.Fatalf("%s: no decision", rcpt)
			}
			checkTerminal(t, rcpt, res.Decisions, g)
			want := g.model(rcpt)
			_, hosted := g.canonical(rcpt)
			if !hosted && !env.Authenticated {
				// The recipient itself is remote and the client may not
				// relay.
				if len(res.Decisions) != 1 || res.Decisions[0].Rule != routing.RuleRelayDenied || len(res.Copies) != 0 {
					t.Fatalf("%s: unauthenticated relay: %v, copies %v", rcpt, res.Decisions, res.Copies)
				}
				continue
			}
			var got outcome
			for _, d := range res.Decisions {
				switch {
				case d.Kind == routing.Deliver:
					got.accounts = append(got.accounts, d.Account)
				case d.Kind == routing.Relay:
					got.relays = append(got.relays, d.Address)
				case d.Rule == routing.RuleDisabledUser:
					got.disabled = append(got.disabled, d.Account)
				case d.Rule == routing.RuleUnknownRecipient:
					got.unknown = append(got.unknown, d.Address)
				case d.Rule == routing.RuleLoop || d.Rule == routing.RuleEmptyExpansion:
					if len(res.Decisions) != 1 || want.total() != 0 {
						t.Fatalf("%s: %s decision although recipients are reachable: %v", rcpt, d.Rule, res.Decisions)
					}
				default:
					t.Fatalf("%s: unexpected decision %+v", rcpt, d)
				}
			}
			for name, pair := range map[string][2][]string{
				"accounts": {want.accounts, got.accounts}, "disabled": {want.disabled, got.disabled},
				"relays": {want.relays, got.relays}, "unknown": {want.unknown, got.unknown},
			} {
				w, gg := slices.Sorted(slices.Values(pair[0])), slices.Sorted(slices.Values(pair[1]))
				if !slices.Equal(w, gg) {
					t.Fatalf("%s: %s: model %v, got %v", rcpt, name, w, gg)
				}
			}

			// Copies: each always-BCC address, resolved like a
			// recipient, when the recipient is accepted (inbound to a
			// hosted domain or submitted by an authenticated client).
			checkTerminal(t, rcpt+" copies", res.Copies, g)
			accepted := slices.ContainsFunc(res.Decisions, func(d routing.Decision) bool { return d.Kind != routing.Reject })
			if !accepted || len(cfg.AlwaysBCC) == 0 {
				if len(res.Copies) != 0 {
					t.Fatalf("%s: copies %v for a refused recipient or without always-BCC", rcpt, res.Copies)
				}
				continue
			}
			var wantCopies []string
			for _, b := range cfg.AlwaysBCC {
				wantCopies = append(wantCopies, g.model(b.Address).accounts...)
			}
			var gotCopies []string
			for _, d := range res.Copies {
				if d.Kind == routing.Deliver {
					gotCopies = append(gotCopies, d.Account)
				}
				if d.Kind != routing.Reject && d.Rule != routing.RuleAlwaysBCC {
					t.Fatalf("%s: copy %+v not marked always-bcc", rcpt, d)
				}
			}
			wantCopies = slices.Compact(slices.Sorted(slices.Values(wantCopies)))
			if gotCopies = slices.Sorted(slices.Values(gotCopies)); !slices.Equal(wantCopies, gotCopies) {
				t.Fatalf("%s: copies to accounts %v, model %v", rcpt, gotCopies, wantCopies)
			}
			if len(res.Copies) == 0 {
				t.Fatalf("%s: accepted but no copies for %v", rcpt, cfg.AlwaysBCC)
			}

			// With a cap: within it, or one expansion-limit rejection.
			res, err = bounded.Resolve(context.Background(), env, rcpt)
			if err != nil {
				t.Fatalf("%s: %v", rcpt, err)
			}
			limited := len(res.Decisions) == 1 && res.Decisions[0].Rule == routing.RuleExpansionLimit
			if want.total() > max && !limited {
				t.Fatalf("%s: %d recipients over the cap %d, got %v", rcpt, want.total(), max, res.Decisions)
			}
			if !limited && len(res.Decisions) > max {
				t.Fatalf("%s: %d decisions over the cap %d", rcpt, len(res.Decisions), max)
			}
		}
	})
}

// FuzzResolve feeds arbitrary recipient strings to a table over a small
// directory: no panic, no error, and always at least one decision.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"l0@example.com", "U0+tag@EXAMPLE.net", "x@remote.example", "bad", "@a:b@c", `"q"@example.com`, "a%b@example.com"} {
		f.Add(s)
	}
	u := &directory.User{ID: "acct-u0", Address: "u0@example.com"}
	g := graphDir{entries: map[string]directory.Entry{
		"u0@example.com": {Kind: directory.KindUser, User: u, Address: "u0@example.com"},
		"l0@example.com": {Kind: directory.KindGroup, Address: "l0@example.com",
			Group: &directory.Group{ID: "g0", Address: "l0@example.com", Members: []string{"u0@example.com", "l0+x@example.net", "Ext@remote.example"}}},
	}}
	table := routing.NewTable(g, routing.TableOptions{})
	f.Fuzz(func(t *testing.T, rcpt string) {
		resolveComplete(t, table, routing.Envelope{}, rcpt)
	})
}

// resolveComplete resolves rcpt and fails unless that worked and gave at
// least one decision, each complete (a rule and a known kind).
func resolveComplete(t *testing.T, table *routing.Table, env routing.Envelope, rcpt string) routing.Result {
	t.Helper()
	res, err := table.Resolve(context.Background(), env, rcpt)
	if err != nil {
		t.Fatalf("%q: %v", rcpt, err)
	}
	if len(res.Decisions) == 0 {
		t.Fatalf("%q: no decision", rcpt)
	}
	for _, d := range res.Decisions {
		if d.Rule == "" || d.Kind < routing.Deliver || d.Kind > routing.Reject {
			t.Fatalf("%q: incomplete decision %+v", rcpt, d)
		}
	}
	return res
}
