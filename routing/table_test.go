package routing_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store/memstore"
)

// world is a built-in directory on a memory store with a small
// organisation in it (routing is not about durability).
type world struct {
	dir                          *builtin.Directory
	alice, bob, carol, dis, room string // IDs
	sales, loopGroup, empty      string // group IDs
}

func newWorld(t *testing.T) world {
	t.Helper()
	ctx := context.Background()
	st := memstore.New(memstore.Options{})
	t.Cleanup(func() { assert.NoError(t, st.Close()) })
	d := builtin.New(st, builtin.Options{Accounts: st})
	must := func(err error) {
		t.Helper()
		require.NoError(t, err)
	}
	_, err := d.CreateTenant(ctx, directory.Tenant{ID: "acme"})
	must(err)
	_, err = d.CreateDomain(ctx, directory.Domain{Name: "example.com", Tenant: "acme", Aliases: []string{"example.net"}})
	must(err)
	var w world
	w.dir = d
	user := func(addr string) string {
		u, err := d.CreateUser(ctx, directory.User{Address: addr}, "")
		must(err)
		return u.ID
	}
	w.alice, w.bob, w.carol, w.dis = user("alice@example.com"), user("bob@example.com"), user("carol@example.com"), user("dis@example.com")
	err = d.SetDisabled(ctx, w.dis, true)
	must(err)
	r, err := d.CreateResource(ctx, directory.Resource{Address: "room1@example.com"})
	must(err)
	w.room = r.ID
	g, err := d.CreateGroup(ctx, directory.Group{Address: "sales@example.com",
		Members: []string{"alice@example.com", "bob+sales@example.com", "Partner@Elsewhere.Example", "dis@example.com"}})
	must(err)
	w.sales = g.ID
	_, err = d.CreateAlias(ctx, directory.Alias{Address: "info@example.com", Targets: []string{"alice@example.net", "sales@example.com", "carol@example.com"}})
	must(err)
	// loop@ -> loop-alias@ -> loop@, nothing else.
	g, err = d.CreateGroup(ctx, directory.Group{Address: "loop@example.com"})
	must(err)
	w.loopGroup = g.ID
	_, err = d.CreateAlias(ctx, directory.Alias{Address: "loop-alias@example.com", Targets: []string{"loop@example.com"}})
	must(err)
	_, err = d.AddGroupMember(ctx, g.ID, "loop-alias@example.com")
	must(err)
	// ring1 -> ring2 -> ring1 plus a user each.
	r1, err := d.CreateGroup(ctx, directory.Group{Address: "ring1@example.com", Members: []string{"alice@example.com"}})
	must(err)
	_, err = d.CreateGroup(ctx, directory.Group{Address: "ring2@example.com", Members: []string{"ring1@example.com", "bob@example.com"}})
	must(err)
	_, err = d.AddGroupMember(ctx, r1.ID, "ring2@example.com")
	must(err)
	g, err = d.CreateGroup(ctx, directory.Group{Address: "empty@example.com"})
	must(err)
	w.empty = g.ID
	return w
}

func deliver(addr, account, rule string) routing.Decision {
	return routing.Decision{Kind: routing.Deliver, Address: addr, Account: account, Rule: rule}
}

func reject(addr string, code int, enh, reason, rule string) routing.Decision {
	return routing.Decision{Kind: routing.Reject, Address: addr, Code: code, Enhanced: enh, Reason: reason, Rule: rule}
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	table := routing.NewTable(w.dir, routing.TableOptions{})
	unknown := func(a string) routing.Decision { return reject(a, 550, "5.1.1", "no such user", "unknown-recipient") }
	syntax := func(a string) routing.Decision {
		return reject(a, 501, "5.1.3", "bad destination mailbox address syntax", "syntax")
	}
	disabled := reject("dis@example.com", 550, "5.2.1", "mailbox disabled", "disabled-user")
	disabled.Account = w.dis

	for _, c := range []struct {
		rcpt, recipient string
		want            []routing.Decision
	}{
		{"alice@example.com", "alice@example.com", []routing.Decision{deliver("alice@example.com", w.alice, "user")}},
		{"ALICE@Example.NET", "alice@example.com", []routing.Decision{deliver("alice@example.com", w.alice, "user")}},
		{"alice+News@example.net", "alice+news@example.com", []routing.Decision{deliver("alice+news@example.com", w.alice, "user")}},
		{"Some.One@Partner.Example", "Some.One@partner.example", []routing.Decision{reject("Some.One@partner.example", 554, "5.7.1", "relay access denied", "relay-denied")}},
		{"nobody@example.com", "nobody@example.com", []routing.Decision{unknown("nobody@example.com")}},
		{"nobody@example.net", "nobody@example.com", []routing.Decision{unknown("nobody@example.com")}},
		{"dis@example.com", "dis@example.com", []routing.Decision{disabled}},
		{"room1@example.com", "room1@example.com", []routing.Decision{deliver("room1@example.com", w.room, "resource")}},
		{"not an address", "not an address", []routing.Decision{syntax("not an address")}},
		{"alice@[192.0.2.1]", "alice@[192.0.2.1]", []routing.Decision{syntax("alice@[192.0.2.1]")}},
		{`"alice"@example.com`, `"alice"@example.com`, []routing.Decision{syntax(`"alice"@example.com`)}},
		{"alice%elsewhere.example@example.com", "alice%elsewhere.example@example.com", []routing.Decision{unknown("alice%elsewhere.example@example.com")}},
		{"sales@example.com", "sales@example.com", []routing.Decision{
			deliver("alice@example.com", w.alice, "user"),
			deliver("bob+sales@example.com", w.bob, "user"),
			{Kind: routing.Relay, Address: "Partner@elsewhere.example", Rule: "remote", Permit: "expansion"},
			disabled,
		}},
		{"info@example.net", "info@example.com", []routing.Decision{
			deliver("alice@example.com", w.alice, "user"),
			deliver("bob+sales@example.com", w.bob, "user"),
			{Kind: routing.Relay, Address: "Partner@elsewhere.example", Rule: "remote", Permit: "expansion"},
			disabled,
			deliver("carol@example.com", w.carol, "user"),
		}},
		{"ring2@example.com", "ring2@example.com", []routing.Decision{
			deliver("alice@example.com", w.alice, "user"),
			deliver("bob@example.com", w.bob, "user"),
		}},
		{"loop@example.com", "loop@example.com", []routing.Decision{reject("loop@example.com", 550, "5.4.6", "alias or group expands only to itself", "loop")}},
		{"empty@example.com", "empty@example.com", []routing.Decision{reject("empty@example.com", 550, "5.2.4", "alias or group has no members", "empty-expansion")}},
	} {
		res, err := table.Resolve(ctx, routing.Envelope{From: "sender@partner.example"}, c.rcpt)
		require.NoError(t, err, c.rcpt)
		assert.Equal(t, c.recipient, res.Recipient, c.rcpt)
		assert.Equal(t, c.want, res.Decisions, c.rcpt)
		assert.Empty(t, res.Copies, c.rcpt)
	}

	// Relaying the recipient itself needs AUTH or a relaynet client.
	res, err := table.Resolve(ctx, routing.Envelope{Authenticated: true}, "Some.One@Partner.Example")
	require.NoError(t, err)
	assert.Equal(t, []routing.Decision{{Kind: routing.Relay, Address: "Some.One@partner.example", Rule: "remote", Permit: "authenticated"}}, res.Decisions)
}

func TestResolveExpansionLimit(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	table := routing.NewTable(w.dir, routing.TableOptions{MaxExpansion: 4})
	res, err := table.Resolve(ctx, routing.Envelope{}, "sales@example.com")
	require.NoError(t, err)
	assert.Len(t, res.Decisions, 4, "within the limit")

	res, err = table.Resolve(ctx, routing.Envelope{}, "info@example.com")
	require.NoError(t, err)
	assert.Equal(t, []routing.Decision{reject("info@example.com", 550, "5.2.4", "expansion exceeds 4 recipients", "expansion-limit")}, res.Decisions)
}

// failingDirectory is a directory whose storage is down.
type failingDirectory struct{ err error }

func (f failingDirectory) Authenticate(context.Context, string, string, directory.Protocol) (directory.User, error) {
	return directory.User{}, f.err
}
func (f failingDirectory) LookupAddress(context.Context, string) (directory.Entry, error) {
	return directory.Entry{}, f.err
}
func (f failingDirectory) LookupDomain(context.Context, string) (directory.Domain, error) {
	return directory.Domain{}, f.err
}
func (f failingDirectory) SendAddresses(context.Context, string) ([]string, error) { return nil, f.err }

func TestResolveInfrastructureFailureIsAnError(t *testing.T) {
	down := errors.New("disk on fire")
	table := routing.NewTable(failingDirectory{down}, routing.TableOptions{})
	_, err := table.Resolve(context.Background(), routing.Envelope{}, "alice@example.com")
	assert.ErrorIs(t, err, down)

	// A malformed address needs no directory: still a decision.
	res, err := table.Resolve(context.Background(), routing.Envelope{}, "bad address")
	require.NoError(t, err)
	assert.Equal(t, "syntax", res.Decisions[0].Rule)

	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = routing.NewTable(w.dir, routing.TableOptions{}).Resolve(ctx, routing.Envelope{}, "info@example.com")
	assert.ErrorIs(t, err, context.Canceled)
}

func TestExplain(t *testing.T) {
	w := newWorld(t)
	table := routing.NewTable(w.dir, routing.TableOptions{})
	out, err := table.Explain(context.Background(), routing.Envelope{}, "info@example.net")
	require.NoError(t, err)
	for _, want := range []string{
		`recipient "info@example.net"`,
		"example.net is an alternative name of example.com",
		"info@example.com: alias info@example.com with 3 target(s)",
		"sales@example.com: group " + w.sales + " (sales@example.com) with 4 member(s)",
		"bob+sales@example.com: matched bob@example.com (sub-address)",
		"Partner@elsewhere.example: domain elsewhere.example is not hosted here",
		"dis@example.com: user " + w.dis + " is disabled",
		"decisions for info@example.com: 5",
		fmt.Sprintf("deliver alice@example.com to account %s [rule user]", w.alice),
		"relay Partner@elsewhere.example via MX of elsewhere.example, port 25, TLS opportunistic [rule remote, permit expansion]",
		"reject dis@example.com: 550 5.2.1 mailbox disabled [rule disabled-user]",
	} {
		assert.Contains(t, out, want)
	}

	out, err = table.Explain(context.Background(), routing.Envelope{}, "ring1@example.com")
	require.NoError(t, err)
	assert.Contains(t, out, "ring1@example.com: already resolved in this expansion; skipped")
}
