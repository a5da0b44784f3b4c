package builtin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/memstore"
)

// openStore opens a memory store (these tests are not about
// durability): its Records keep the directory and its Accounts the
// mailboxes.
func openStore(t *testing.T) *memstore.Store {
	t.Helper()
	st := memstore.New(memstore.Options{})
	t.Cleanup(func() { assert.NoError(t, st.Close()) })
	return st
}

// accountQuota returns the quota of a store account and whether it exists.
func accountQuota(t *testing.T, st *memstore.Store, id string) (store.Quota, bool) {
	t.Helper()
	a, err := st.Account(context.Background(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Quota{}, false
	}
	require.NoError(t, err)
	return a.Quota, true
}

func accountCount(t *testing.T, st *memstore.Store) int {
	t.Helper()
	as, err := st.ListAccounts(context.Background(), "", 1000)
	require.NoError(t, err)
	return len(as)
}

var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture: tenant "acme" hosting example.com (alternative name
// example.net) and example.org; tenant "globex" hosting globex.test.
func newFixture(t *testing.T) (*builtin.Directory, *memstore.Store) {
	t.Helper()
	ctx := context.Background()
	st := openStore(t)
	b := builtin.New(st, builtin.Options{Accounts: st, Now: func() time.Time { return fixedNow }})
	for _, tn := range []string{"acme", "globex"} {
		_, err := b.CreateTenant(ctx, directory.Tenant{ID: tn, Name: strings.ToUpper(tn)})
		require.NoError(t, err)
	}
	_, err := b.CreateDomain(ctx, directory.Domain{Name: "Example.COM", Tenant: "acme", Aliases: []string{"example.net"}})
	require.NoError(t, err)
	_, err = b.CreateDomain(ctx, directory.Domain{Name: "example.org", Tenant: "acme"})
	require.NoError(t, err)
	_, err = b.CreateDomain(ctx, directory.Domain{Name: "globex.test", Tenant: "globex"})
	require.NoError(t, err)
	return b, st
}

func TestTenants(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	_, err := b.CreateTenant(ctx, directory.Tenant{ID: "acme"})
	assert.ErrorIs(t, err, directory.ErrExists)
	_, err = b.CreateTenant(ctx, directory.Tenant{ID: "Bad ID"})
	assert.ErrorIs(t, err, directory.ErrInvalid)
	gen, err := b.CreateTenant(ctx, directory.Tenant{Name: "Initech"})
	require.NoError(t, err)
	assert.Len(t, gen.ID, 32)

	got, err := b.Tenant(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, directory.Tenant{ID: "acme", Name: "ACME"}, got)
	page, err := b.ListTenants(ctx, "", 2)
	require.NoError(t, err)
	require.Len(t, page, 2)
	rest, err := b.ListTenants(ctx, page[1].ID, 10)
	require.NoError(t, err)
	assert.Len(t, rest, 1)
}

func TestDomains(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)

	d, err := b.LookupDomain(ctx, "EXAMPLE.net")
	require.NoError(t, err)
	assert.Equal(t, "example.com", d.Name)
	assert.Equal(t, []string{"example.net"}, d.Aliases)
	assert.Equal(t, fixedNow, d.Created)

	_, err = b.CreateDomain(ctx, directory.Domain{Name: "example.net", Tenant: "acme"})
	assert.ErrorIs(t, err, directory.ErrExists, "an alternative name is taken")
	_, err = b.CreateDomain(ctx, directory.Domain{Name: "new.example", Tenant: "acme", Aliases: []string{"example.org"}})
	assert.ErrorIs(t, err, directory.ErrExists, "a main name is taken")
	_, err = b.LookupDomain(ctx, "new.example")
	assert.ErrorIs(t, err, directory.ErrNotFound, "a failed creation leaves nothing behind")
	_, err = b.CreateDomain(ctx, directory.Domain{Name: "new.example", Tenant: "nobody"})
	assert.ErrorIs(t, err, directory.ErrNotFound)
	_, err = b.CreateDomain(ctx, directory.Domain{Name: "bad_domain", Tenant: "acme"})
	assert.ErrorIs(t, err, directory.ErrInvalid)

	d, err = b.AddDomainAlias(ctx, "example.com", "Example.EU")
	require.NoError(t, err)
	assert.Equal(t, []string{"example.eu", "example.net"}, d.Aliases)
	_, err = b.AddDomainAlias(ctx, "example.org", "example.eu")
	assert.ErrorIs(t, err, directory.ErrExists)
	got, err := b.LookupDomain(ctx, "example.eu")
	require.NoError(t, err)
	assert.Equal(t, "example.com", got.Name)

	d, err = b.RemoveDomainAlias(ctx, "example.com", "example.net")
	require.NoError(t, err)
	assert.Equal(t, []string{"example.eu"}, d.Aliases)
	_, err = b.LookupDomain(ctx, "example.net")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	_, err = b.RemoveDomainAlias(ctx, "example.com", "example.net")
	assert.ErrorIs(t, err, directory.ErrNotFound)

	page, err := b.ListDomains(ctx, "", 2)
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, "example.com", page[0].Name)
	assert.Equal(t, "example.org", page[1].Name)
	page, err = b.ListDomains(ctx, "example.org", 2)
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, "globex.test", page[0].Name)
}

func TestDomainWithoutTenantUsesDefault(t *testing.T) {
	ctx := context.Background()
	b := builtin.New(openStore(t), builtin.Options{})
	d, err := b.CreateDomain(ctx, directory.Domain{Name: "solo.example"})
	require.NoError(t, err)
	assert.Equal(t, builtin.DefaultTenant, d.Tenant)
	d, err = b.CreateDomain(ctx, directory.Domain{Name: "solo2.example"})
	require.NoError(t, err, "the default tenant is reused")
	tn, err := b.Tenant(ctx, builtin.DefaultTenant)
	require.NoError(t, err)
	assert.Equal(t, builtin.DefaultTenant, tn.ID)
	u, err := b.CreateUser(ctx, directory.User{Address: "me@solo.example", Aliases: []string{"me@solo2.example"}}, "")
	require.NoError(t, err)
	assert.Equal(t, builtin.DefaultTenant, u.Tenant)
}

func TestDeleteDomainOnlyWhenEmpty(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	u, err := b.CreateUser(ctx, directory.User{Address: "ann@example.com", Aliases: []string{"ann@example.org"}}, "")
	require.NoError(t, err)

	err = b.DeleteDomain(ctx, "example.org")
	assert.ErrorIs(t, err, directory.ErrInvalid, "a user's alias lives there")
	_, err = b.RemoveUserAlias(ctx, u.ID, "ANN@example.org")
	require.NoError(t, err)
	require.NoError(t, b.DeleteDomain(ctx, "example.org"))
	_, err = b.LookupDomain(ctx, "example.org")
	assert.ErrorIs(t, err, directory.ErrNotFound)

	assert.ErrorIs(t, b.DeleteDomain(ctx, "example.com"), directory.ErrInvalid)
	require.NoError(t, b.DeleteUser(ctx, u.ID))
	require.NoError(t, b.DeleteDomain(ctx, "example.com"))
	// The main and the alternative name are free again.
	_, err = b.CreateDomain(ctx, directory.Domain{Name: "example.net", Tenant: "globex"})
	require.NoError(t, err)
	assert.ErrorIs(t, b.DeleteDomain(ctx, "example.com"), directory.ErrNotFound)
}

func TestCreateUser(t *testing.T) {
	ctx := context.Background()
	b, st := newFixture(t)
	u, err := b.CreateUser(ctx, directory.User{
		Address: "Alice@Example.NET", Aliases: []string{"ali@example.org", "a.smith@example.com"},
		DisplayName: "Alice Smith", GivenName: "Alice", Surname: "Smith",
		QuotaBytes: 1 << 30, QuotaMessages: 5000, Protocols: []directory.Protocol{directory.ProtoIMAP},
	}, "s3cret")
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9a-f]{32}$`, u.ID)
	assert.Equal(t, "alice@example.com", u.Address, "stored under the main domain")
	assert.Equal(t, "acme", u.Tenant)
	assert.Equal(t, []string{"a.smith@example.com", "ali@example.org"}, u.Aliases)
	assert.Equal(t, directory.SourceBuiltin, u.Source)
	assert.Equal(t, fixedNow, u.Created)
	assert.True(t, strings.HasPrefix(u.PasswordHash, "$argon2id$"))
	q, ok := accountQuota(t, st, u.ID)
	assert.True(t, ok, "account created")
	assert.Equal(t, store.Quota{MaxBytes: 1 << 30, MaxMessages: 5000}, q, "account created with the quota")

	byID, err := b.User(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, u, byID)
	byAlias, err := b.UserByAddress(ctx, "ALI@example.org")
	require.NoError(t, err)
	assert.Equal(t, u.ID, byAlias.ID)
	_, err = b.UserByAddress(ctx, "alice+tag@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound, "no sub-addressing for exact lookups")

	for name, spec := range map[string]directory.User{
		"primary taken":            {Address: "alice@example.com"},
		"taken via alt domain":     {Address: "ALICE@example.net"},
		"alias taken":              {Address: "bob@example.com", Aliases: []string{"a.smith@example.net"}},
		"alias of same user twice": {Address: "bob@example.com", Aliases: []string{"b@example.com", "B@example.net"}},
	} {
		_, err := b.CreateUser(ctx, spec, "")
		assert.ErrorIs(t, err, directory.ErrExists, name)
	}
	for name, spec := range map[string]directory.User{
		"domain not hosted":   {Address: "bob@elsewhere.example"},
		"malformed":           {Address: "bob"},
		"alias other tenant":  {Address: "bob@example.com", Aliases: []string{"bob@globex.test"}},
		"alias not hosted":    {Address: "bob@example.com", Aliases: []string{"bob@elsewhere.example"}},
		"unknown protocol":    {Address: "bob@example.com", Protocols: []directory.Protocol{"pop3"}},
		"negative quota":      {Address: "bob@example.com", QuotaBytes: -1},
		"both password kinds": {Address: "bob@example.com", PasswordHash: "{SSHA}5pcxo13YdJml98eQSIlT3FMEBMMBAgME"},
		"unverifiable hash":   {Address: "bob@example.com", PasswordHash: "{MD5}abc"},
	} {
		pw := ""
		if name == "both password kinds" {
			pw = "x"
		}
		_, err := b.CreateUser(ctx, spec, pw)
		assert.ErrorIs(t, err, directory.ErrInvalid, name)
	}
	assert.Equal(t, 1, accountCount(t, st), "failed creations leave no store account behind")
	_, err = b.UserByAddress(ctx, "bob@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound, "failed creations leave no user behind")
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	alice, err := b.CreateUser(ctx, directory.User{Address: "alice@example.com", Aliases: []string{"ali@example.org"}}, "right")
	require.NoError(t, err)
	_, err = b.CreateUser(ctx, directory.User{Address: "imaponly@example.com", PasswordHash: alice.PasswordHash,
		Protocols: []directory.Protocol{directory.ProtoIMAP}}, "")
	require.NoError(t, err)
	blocked, err := b.CreateUser(ctx, directory.User{Address: "blocked@example.com", PasswordHash: alice.PasswordHash}, "")
	require.NoError(t, err)
	err = b.SetDisabled(ctx, blocked.ID, true)
	require.NoError(t, err)
	_, err = b.CreateUser(ctx, directory.User{Address: "ldap@example.com", Source: "ldap:corp"}, "")
	require.NoError(t, err)
	_, err = b.CreateGroup(ctx, directory.Group{Address: "team@example.com", Members: []string{"alice@example.com"}})
	require.NoError(t, err)

	for _, c := range []struct {
		login, pw string
		proto     directory.Protocol
		want      error
	}{
		{"alice@example.com", "right", directory.ProtoIMAP, nil},
		{"ALICE@Example.Com", "right", directory.ProtoSMTP, nil},
		{"alice@example.net", "right", directory.ProtoDAV, nil},
		{"ali@example.org", "right", directory.ProtoIMAP, nil},
		{"alice@example.com", "wrong", directory.ProtoIMAP, directory.ErrAuthFailed},
		{"alice@example.com", "", directory.ProtoIMAP, directory.ErrAuthFailed},
		{"alice+tag@example.com", "right", directory.ProtoIMAP, directory.ErrAuthFailed},
		{"nobody@example.com", "right", directory.ProtoIMAP, directory.ErrAuthFailed},
		{"alice@elsewhere.example", "right", directory.ProtoIMAP, directory.ErrAuthFailed},
		{"alice", "right", directory.ProtoIMAP, directory.ErrAuthFailed},
		{"team@example.com", "right", directory.ProtoIMAP, directory.ErrAuthFailed},
		{"ldap@example.com", "", directory.ProtoIMAP, directory.ErrAuthFailed},
		{"blocked@example.com", "right", directory.ProtoIMAP, directory.ErrDisabled},
		{"blocked@example.com", "wrong", directory.ProtoIMAP, directory.ErrAuthFailed},
		{"imaponly@example.com", "right", directory.ProtoIMAP, nil},
		{"imaponly@example.com", "right", directory.ProtoSMTP, directory.ErrProtocolNotAllowed},
		{"imaponly@example.com", "wrong", directory.ProtoSMTP, directory.ErrAuthFailed},
	} {
		u, err := b.Authenticate(ctx, c.login, c.pw, c.proto)
		if c.want != nil {
			assert.ErrorIs(t, err, c.want, "%s/%s/%s", c.login, c.pw, c.proto)
			assert.Equal(t, directory.User{}, u)
			continue
		}
		require.NoError(t, err, c.login)
		assert.NotEmpty(t, u.ID)
		assert.Empty(t, u.PasswordHash, "the hash does not leave Authenticate")
	}
}

func TestAuthenticateUpgradesLegacyHash(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	u, err := b.CreateUser(ctx, directory.User{Address: "old@example.com",
		PasswordHash: "{SSHA}5pcxo13YdJml98eQSIlT3FMEBMMBAgME"}, "")
	require.NoError(t, err)
	_, err = b.Authenticate(ctx, "old@example.com", "wrong", directory.ProtoIMAP)
	require.ErrorIs(t, err, directory.ErrAuthFailed)
	stored, err := b.User(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, u.PasswordHash, stored.PasswordHash, "a failed login changes nothing")

	_, err = b.Authenticate(ctx, "old@example.com", "correct horse", directory.ProtoIMAP)
	require.NoError(t, err)
	stored, err = b.User(ctx, u.ID)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$"), stored.PasswordHash)
	_, err = b.Authenticate(ctx, "old@example.com", "correct horse", directory.ProtoIMAP)
	assert.NoError(t, err, "the upgraded hash still verifies")
}

func TestSetPassword(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	u, err := b.CreateUser(ctx, directory.User{Address: "pat@example.com"}, "")
	require.NoError(t, err)
	_, err = b.Authenticate(ctx, "pat@example.com", "new-one", directory.ProtoIMAP)
	require.ErrorIs(t, err, directory.ErrAuthFailed)
	require.NoError(t, b.SetPassword(ctx, u.ID, "new-one"))
	_, err = b.Authenticate(ctx, "pat@example.com", "new-one", directory.ProtoIMAP)
	require.NoError(t, err)
	assert.ErrorIs(t, b.SetPassword(ctx, u.ID, ""), directory.ErrInvalid)
	assert.ErrorIs(t, b.SetPassword(ctx, "no-such-id", "x"), directory.ErrNotFound)
}

func TestLookupAddress(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	alice, err := b.CreateUser(ctx, directory.User{Address: "alice@example.com"}, "")
	require.NoError(t, err)
	tagged, err := b.CreateUser(ctx, directory.User{Address: "alice+vip@example.com"}, "")
	require.NoError(t, err)
	g, err := b.CreateGroup(ctx, directory.Group{Address: "team@example.com", Aliases: []string{"crew@example.org"}, Members: []string{"alice@example.com"}})
	require.NoError(t, err)
	al, err := b.CreateAlias(ctx, directory.Alias{Address: "info@example.com", Targets: []string{"alice@example.net", "Ext.Person@Partner.example"}})
	require.NoError(t, err)
	room, err := b.CreateResource(ctx, directory.Resource{Address: "room1@example.com", DisplayName: "Room 1", Capacity: 8})
	require.NoError(t, err)

	for _, c := range []struct {
		addr, matched string
		kind          directory.EntryKind
		id            string
	}{
		{"alice@example.com", "alice@example.com", directory.KindUser, alice.ID},
		{"ALICE@EXAMPLE.NET", "alice@example.com", directory.KindUser, alice.ID},
		{"alice+news@example.com", "alice@example.com", directory.KindUser, alice.ID},
		{"alice+vip@example.net", "alice+vip@example.com", directory.KindUser, tagged.ID},
		{"team+x@example.com", "team@example.com", directory.KindGroup, g.ID},
		{"crew@example.org", "crew@example.org", directory.KindGroup, g.ID},
		{"info@example.com", "info@example.com", directory.KindAlias, al.Address},
		{"room1@example.net", "room1@example.com", directory.KindResource, room.ID},
	} {
		e, err := b.LookupAddress(ctx, c.addr)
		require.NoError(t, err, c.addr)
		assert.Equal(t, c.kind, e.Kind, c.addr)
		assert.Equal(t, c.matched, e.Address, c.addr)
		var id string
		switch e.Kind {
		case directory.KindUser:
			id = e.User.ID
			assert.Empty(t, e.User.PasswordHash)
		case directory.KindGroup:
			id = e.Group.ID
		case directory.KindAlias:
			id = e.Alias.Address
		case directory.KindResource:
			id = e.Resource.ID
		}
		assert.Equal(t, c.id, id, c.addr)
	}
	assert.Equal(t, []string{"alice@example.com", "Ext.Person@partner.example"}, al.Targets,
		"local targets canonical, external local parts keep their case")

	_, err = b.LookupAddress(ctx, "bob@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	_, err = b.LookupAddress(ctx, "bob+alice@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	_, err = b.LookupAddress(ctx, "alice@elsewhere.example")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	_, err = b.LookupAddress(ctx, "alice at example.com")
	assert.ErrorIs(t, err, directory.ErrInvalid)
}

func TestAddressesUniqueAcrossKinds(t *testing.T) {
	ctx := context.Background()
	b, st := newFixture(t)
	_, err := b.CreateUser(ctx, directory.User{Address: "x@example.com"}, "")
	require.NoError(t, err)
	_, err = b.CreateAlias(ctx, directory.Alias{Address: "X@example.net", Targets: []string{"ext@partner.example"}})
	assert.ErrorIs(t, err, directory.ErrExists)
	_, err = b.CreateGroup(ctx, directory.Group{Address: "y@example.com", Aliases: []string{"x@example.com"}})
	assert.ErrorIs(t, err, directory.ErrExists)
	_, err = b.LookupAddress(ctx, "y@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound, "the failed group left no address behind")
	_, err = b.CreateResource(ctx, directory.Resource{Address: "x@example.net"})
	assert.ErrorIs(t, err, directory.ErrExists)
	assert.Equal(t, 1, accountCount(t, st), "the failed resource's account was removed")
	_, err = b.CreateAlias(ctx, directory.Alias{Address: "z@elsewhere.example", Targets: []string{"x@example.com"}})
	assert.ErrorIs(t, err, directory.ErrInvalid)
}

func TestSendAddresses(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	alice, err := b.CreateUser(ctx, directory.User{Address: "alice@example.com", Aliases: []string{"ali@example.org"}}, "")
	require.NoError(t, err)
	bob, err := b.CreateUser(ctx, directory.User{Address: "bob@example.org"}, "")
	require.NoError(t, err)
	g, err := b.CreateGroup(ctx, directory.Group{Address: "sales@example.com", SendAs: []string{alice.ID}})
	require.NoError(t, err)
	_, err = b.CreateGroup(ctx, directory.Group{Address: "support@example.org", SendAs: []string{bob.ID}})
	require.NoError(t, err)

	got, err := b.SendAddresses(ctx, alice.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"ali@example.org", "alice@example.com", "alice@example.net", "sales@example.com", "sales@example.net"}, got)

	_, err = b.SetGroupSendAs(ctx, g.ID, []string{bob.ID})
	require.NoError(t, err)
	got, err = b.SendAddresses(ctx, alice.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"ali@example.org", "alice@example.com", "alice@example.net"}, got)
	got, err = b.SendAddresses(ctx, bob.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob@example.org", "sales@example.com", "sales@example.net", "support@example.org"}, got)

	_, err = b.SendAddresses(ctx, "no-such-user")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	g2, err := b.CreateUser(ctx, directory.User{Address: "gx@globex.test"}, "")
	require.NoError(t, err)
	_, err = b.SetGroupSendAs(ctx, g.ID, []string{g2.ID})
	assert.ErrorIs(t, err, directory.ErrInvalid, "send-as across tenants")
	_, err = b.SetGroupSendAs(ctx, g.ID, []string{"no-such-user"})
	assert.ErrorIs(t, err, directory.ErrNotFound)
}

func TestListUsersPaging(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	for _, a := range []string{"carol@example.org", "alice@example.com", "dave@example.com", "bob@example.com", "erin@example.org"} {
		_, err := b.CreateUser(ctx, directory.User{Address: a}, "")
		require.NoError(t, err)
	}
	addrs := func(us []directory.User) (out []string) {
		for _, u := range us {
			out = append(out, u.Address)
		}
		return out
	}
	var all []string
	after := ""
	for {
		page, err := b.ListUsers(ctx, "", after, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2)
		if len(page) == 0 {
			break
		}
		all = append(all, addrs(page)...)
		after = page[len(page)-1].Address
	}
	assert.Equal(t, []string{"alice@example.com", "bob@example.com", "dave@example.com", "carol@example.org", "erin@example.org"}, all)

	page, err := b.ListUsers(ctx, "example.net", "", 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"alice@example.com", "bob@example.com", "dave@example.com"}, addrs(page), "alternative name selects the domain")
	page, err = b.ListUsers(ctx, "example.org", "carol@example.org", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"erin@example.org"}, addrs(page))
	_, err = b.ListUsers(ctx, "elsewhere.example", "", 0)
	assert.ErrorIs(t, err, directory.ErrNotFound)
}

func TestUpdateUser(t *testing.T) {
	ctx := context.Background()
	b, st := newFixture(t)
	u, err := b.CreateUser(ctx, directory.User{Address: "u@example.com", DisplayName: "U", Title: "Engineer"}, "")
	require.NoError(t, err)
	later := fixedNow
	name, quota := "New Name", int64(2048)
	protos := []directory.Protocol{directory.ProtoSMTP, directory.ProtoIMAP}
	got, err := b.UpdateUser(ctx, u.ID, builtin.UserUpdate{DisplayName: &name, QuotaBytes: &quota, Protocols: &protos})
	require.NoError(t, err)
	assert.Equal(t, "New Name", got.DisplayName)
	assert.Equal(t, "Engineer", got.Title, "unset fields stay")
	assert.Equal(t, int64(2048), got.QuotaBytes)
	assert.Equal(t, protos, got.Protocols)
	assert.Equal(t, later, got.Updated)
	q, _ := accountQuota(t, st, u.ID)
	assert.Equal(t, store.Quota{MaxBytes: 2048}, q, "the store quota follows")
	stored, err := b.User(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, got, stored)

	neg := int64(-5)
	_, err = b.UpdateUser(ctx, u.ID, builtin.UserUpdate{QuotaMessages: &neg})
	assert.ErrorIs(t, err, directory.ErrInvalid)
	bad := []directory.Protocol{"gopher"}
	_, err = b.UpdateUser(ctx, u.ID, builtin.UserUpdate{Protocols: &bad})
	assert.ErrorIs(t, err, directory.ErrInvalid)
	_, err = b.UpdateUser(ctx, "missing", builtin.UserUpdate{DisplayName: &name})
	assert.ErrorIs(t, err, directory.ErrNotFound)

	got, err = b.AddUserAlias(ctx, u.ID, "you@example.org")
	require.NoError(t, err)
	assert.Equal(t, []string{"you@example.org"}, got.Aliases)
	_, err = b.AddUserAlias(ctx, u.ID, "you@globex.test")
	assert.ErrorIs(t, err, directory.ErrInvalid)
	_, err = b.RemoveUserAlias(ctx, u.ID, "u@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound, "the primary address is not an alias")
}

func TestDeleteUserCleansUp(t *testing.T) {
	ctx := context.Background()
	b, st := newFixture(t)
	alice, err := b.CreateUser(ctx, directory.User{Address: "alice@example.com", Aliases: []string{"ali@example.org"}}, "")
	require.NoError(t, err)
	bob, err := b.CreateUser(ctx, directory.User{Address: "bob@example.com"}, "")
	require.NoError(t, err)
	g, err := b.CreateGroup(ctx, directory.Group{Address: "team@example.com",
		Members: []string{"alice+team@example.com", "bob@example.com", "ali@example.org"}, SendAs: []string{alice.ID, bob.ID}})
	require.NoError(t, err)
	_, err = b.CreateAlias(ctx, directory.Alias{Address: "both@example.com", Targets: []string{"alice@example.com", "bob@example.com"}})
	require.NoError(t, err)
	_, err = b.CreateAlias(ctx, directory.Alias{Address: "only-alice@example.com", Targets: []string{"ali@example.org"}})
	require.NoError(t, err)
	_, err = b.CreateAlias(ctx, directory.Alias{Address: "chain@example.com", Targets: []string{"only-alice@example.com", "ext@partner.example"}})
	require.NoError(t, err)

	require.NoError(t, b.DeleteUser(ctx, alice.ID))
	_, ok := accountQuota(t, st, alice.ID)
	assert.False(t, ok, "the store account is gone")
	_, err = b.User(ctx, alice.ID)
	assert.ErrorIs(t, err, directory.ErrNotFound)
	for _, a := range []string{"alice@example.com", "ali@example.org", "only-alice@example.com"} {
		_, err = b.LookupAddress(ctx, a)
		assert.ErrorIs(t, err, directory.ErrNotFound, a)
	}
	g, err = b.Group(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob@example.com"}, g.Members)
	assert.Equal(t, []string{bob.ID}, g.SendAs)
	both, err := b.Alias(ctx, "both@example.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"bob@example.com"}, both.Targets)
	chain, err := b.Alias(ctx, "chain@example.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"ext@partner.example"}, chain.Targets, "an alias emptied by the delete went too")

	// The addresses are free for reuse.
	_, err = b.CreateUser(ctx, directory.User{Address: "alice@example.com", Aliases: []string{"ali@example.org"}}, "")
	require.NoError(t, err)
	assert.ErrorIs(t, b.DeleteUser(ctx, alice.ID), directory.ErrNotFound)
}

func TestGroups(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	_, err := b.CreateUser(ctx, directory.User{Address: "ann@example.com"}, "")
	require.NoError(t, err)
	g, err := b.CreateGroup(ctx, directory.Group{Address: "Team@Example.net", DisplayName: "Team",
		Members: []string{"ann@example.com", "Partner@Elsewhere.example"}})
	require.NoError(t, err)
	assert.Equal(t, "team@example.com", g.Address)
	assert.Equal(t, []string{"ann@example.com", "Partner@elsewhere.example"}, g.Members)

	_, err = b.AddGroupMember(ctx, g.ID, "ghost@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound, "local members must exist")
	_, err = b.AddGroupMember(ctx, g.ID, "ANN@example.net")
	assert.ErrorIs(t, err, directory.ErrExists)
	_, err = b.AddGroupMember(ctx, g.ID, "team+loop@example.com")
	assert.ErrorIs(t, err, directory.ErrInvalid)
	_, err = b.AddGroupMember(ctx, g.ID, "not an address")
	assert.ErrorIs(t, err, directory.ErrInvalid)
	sub, err := b.CreateGroup(ctx, directory.Group{Address: "sub@example.org", Members: []string{"team@example.com"}})
	require.NoError(t, err)
	g, err = b.AddGroupMember(ctx, g.ID, "sub@example.org")
	require.NoError(t, err, "cycles between groups are allowed; routing breaks them")
	assert.Len(t, g.Members, 3)
	g, err = b.RemoveGroupMember(ctx, g.ID, "partner@elsewhere.example")
	require.NoError(t, err)
	assert.Equal(t, []string{"ann@example.com", "sub@example.org"}, g.Members)
	_, err = b.RemoveGroupMember(ctx, g.ID, "partner@elsewhere.example")
	assert.ErrorIs(t, err, directory.ErrNotFound)

	list, err := b.ListGroups(ctx, "", "", 0)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "team@example.com", list[0].Address)
	assert.Equal(t, "sub@example.org", list[1].Address)

	require.NoError(t, b.DeleteGroup(ctx, g.ID))
	sub, err = b.Group(ctx, sub.ID)
	require.NoError(t, err)
	assert.Empty(t, sub.Members, "the deleted group left the other group")
	_, err = b.LookupAddress(ctx, "team@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	assert.ErrorIs(t, b.DeleteGroup(ctx, g.ID), directory.ErrNotFound)
}

func TestAliases(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	_, err := b.CreateUser(ctx, directory.User{Address: "ann@example.com"}, "")
	require.NoError(t, err)
	_, err = b.CreateAlias(ctx, directory.Alias{Address: "empty@example.com", Targets: nil})
	assert.ErrorIs(t, err, directory.ErrInvalid)
	_, err = b.CreateAlias(ctx, directory.Alias{Address: "x@example.com", Targets: []string{"ghost@example.com"}})
	assert.ErrorIs(t, err, directory.ErrNotFound)
	_, err = b.CreateAlias(ctx, directory.Alias{Address: "x@example.com", Targets: []string{"ann@example.com", "Ann@Example.net"}})
	assert.ErrorIs(t, err, directory.ErrExists, "duplicate targets")

	a, err := b.CreateAlias(ctx, directory.Alias{Address: "postmaster@example.com", Targets: []string{"ann+pm@example.com"}})
	require.NoError(t, err)
	assert.Equal(t, directory.Alias{Address: "postmaster@example.com", Tenant: "acme", Targets: []string{"ann+pm@example.com"}}, a)
	a, err = b.AddAliasTarget(ctx, "postmaster@example.net", "ops@partner.example")
	require.NoError(t, err)
	assert.Equal(t, []string{"ann+pm@example.com", "ops@partner.example"}, a.Targets)
	_, err = b.AddAliasTarget(ctx, "postmaster@example.com", "postmaster+x@example.com")
	assert.ErrorIs(t, err, directory.ErrInvalid)
	a, err = b.RemoveAliasTarget(ctx, "postmaster@example.com", "ANN+pm@example.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"ops@partner.example"}, a.Targets)
	_, err = b.RemoveAliasTarget(ctx, "postmaster@example.com", "ops@partner.example")
	assert.ErrorIs(t, err, directory.ErrInvalid, "the last target stays")

	_, err = b.CreateAlias(ctx, directory.Alias{Address: "abuse@example.org", Targets: []string{"postmaster@example.com"}})
	require.NoError(t, err)
	list, err := b.ListAliases(ctx, "example.com", "", 0)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "postmaster@example.com", list[0].Address)
	list, err = b.ListAliases(ctx, "", "", 0)
	require.NoError(t, err)
	assert.Len(t, list, 2)

	require.NoError(t, b.DeleteAlias(ctx, "postmaster@example.com"))
	_, err = b.Alias(ctx, "abuse@example.org")
	assert.ErrorIs(t, err, directory.ErrNotFound, "an alias emptied by the delete is deleted")
	assert.ErrorIs(t, b.DeleteAlias(ctx, "postmaster@example.com"), directory.ErrNotFound)
}

func TestResources(t *testing.T) {
	ctx := context.Background()
	b, st := newFixture(t)
	r, err := b.CreateResource(ctx, directory.Resource{Address: "Room.A@example.com", DisplayName: "Room A", Capacity: 12, Location: "2nd floor"})
	require.NoError(t, err)
	assert.Equal(t, "room.a@example.com", r.Address)
	assert.Equal(t, directory.ResourceRoom, r.Kind)
	assert.Equal(t, "acme", r.Tenant)
	_, ok := accountQuota(t, st, r.ID)
	assert.True(t, ok, "resources get a mailbox")
	_, err = b.CreateResource(ctx, directory.Resource{Address: "car@example.com", Kind: "vehicle"})
	assert.ErrorIs(t, err, directory.ErrInvalid)
	beamer, err := b.CreateResource(ctx, directory.Resource{Address: "beamer@example.org", Kind: directory.ResourceEquipment,
		Policy: directory.ResourcePolicyManual, Approvers: []string{"u1"}})
	require.NoError(t, err)
	_, err = b.CreateResource(ctx, directory.Resource{Address: "van@example.com", Policy: "sometimes"})
	assert.ErrorIs(t, err, directory.ErrInvalid)
	_, err = b.CreateResource(ctx, directory.Resource{Address: "van@example.com", Policy: directory.ResourcePolicyManual})
	assert.ErrorIs(t, err, directory.ErrInvalid, "manual needs approvers")

	list, err := b.ListResources(ctx, "", "", 0)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, []string{r.ID, beamer.ID}, []string{list[0].ID, list[1].ID})
	got, err := b.Resource(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, r, got)
	gotBeamer, err := b.Resource(ctx, beamer.ID)
	require.NoError(t, err)
	assert.Equal(t, beamer, gotBeamer, "policy and approvers are kept")

	require.NoError(t, b.DeleteResource(ctx, r.ID))
	_, ok = accountQuota(t, st, r.ID)
	assert.False(t, ok, "the resource's mailbox is gone")
	_, err = b.LookupAddress(ctx, "room.a@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound)
}

// An admin command and the server open the same data directory; what one
// writes, the other must see at once.
func TestTwoInstancesShareRecords(t *testing.T) {
	ctx := context.Background()
	server, st := newFixture(t)
	admin := builtin.New(st, builtin.Options{})
	_, err := server.LookupAddress(ctx, "new@example.com")
	require.ErrorIs(t, err, directory.ErrNotFound)
	u, err := admin.CreateUser(ctx, directory.User{Address: "new@example.com"}, "pw")
	require.NoError(t, err)
	e, err := server.LookupAddress(ctx, "new@example.com")
	require.NoError(t, err)
	assert.Equal(t, u.ID, e.User.ID)
	err = admin.SetDisabled(ctx, u.ID, true)
	require.NoError(t, err)
	_, err = server.Authenticate(ctx, "new@example.com", "pw", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrDisabled)
}

// cancellingAccounts cancels the caller's context as soon as the store
// account exists: the client of an admin API hanging up mid-creation.
type cancellingAccounts struct {
	store.Accounts
	cancel context.CancelFunc
}

func (c cancellingAccounts) CreateAccount(ctx context.Context, id string, q store.Quota) (store.Account, error) {
	a, err := c.Accounts.CreateAccount(ctx, id, q)
	c.cancel()
	return a, err
}

// A creation that fails because its caller gave up still removes the store
// account it created: the clean-up must not depend on the cancelled context.
func TestFailedCreationRemovesAccountAfterCancel(t *testing.T) {
	b, st := newFixture(t)
	before := accountCount(t, st)
	for name, create := range map[string]func(context.Context, *builtin.Directory) error{
		"user": func(ctx context.Context, b *builtin.Directory) error {
			_, err := b.CreateUser(ctx, directory.User{Address: "carol@example.com"}, "")
			return err
		},
		"resource": func(ctx context.Context, b *builtin.Directory) error {
			_, err := b.CreateResource(ctx, directory.Resource{Address: "room.b@example.com"})
			return err
		},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cb := builtin.New(st, builtin.Options{Accounts: cancellingAccounts{st, cancel}})
		err := create(ctx, cb)
		require.ErrorIs(t, err, context.Canceled, name)
		assert.Equal(t, before, accountCount(t, st), "%s: no orphan store account", name)
	}
	_, err := b.LookupAddress(context.Background(), "carol@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound)
}

// cancellingRecords cancels the caller's context once a directory
// transaction has committed.
type cancellingRecords struct {
	store.Records
	cancel context.CancelFunc
}

func (c cancellingRecords) UpdateRecords(ctx context.Context, fn func(tx store.RecordTx) error) error {
	err := c.Records.UpdateRecords(ctx, fn)
	c.cancel()
	return err
}

// A deletion whose caller gives up after the directory entry is gone still
// deletes the store account, instead of leaving the mailbox of a deleted
// user or resource behind.
func TestDeleteRemovesAccountAfterCancel(t *testing.T) {
	ctx := context.Background()
	b, st := newFixture(t)
	u, err := b.CreateUser(ctx, directory.User{Address: "dave@example.com"}, "")
	require.NoError(t, err)
	r, err := b.CreateResource(ctx, directory.Resource{Address: "room.c@example.com"})
	require.NoError(t, err)
	for name, del := range map[string]func(context.Context, *builtin.Directory) error{
		"user":     func(ctx context.Context, b *builtin.Directory) error { return b.DeleteUser(ctx, u.ID) },
		"resource": func(ctx context.Context, b *builtin.Directory) error { return b.DeleteResource(ctx, r.ID) },
	} {
		cctx, cancel := context.WithCancel(ctx)
		cb := builtin.New(cancellingRecords{st, cancel}, builtin.Options{Accounts: st})
		assert.NoError(t, del(cctx, cb), name)
	}
	_, ok := accountQuota(t, st, u.ID)
	assert.False(t, ok, "user's account deleted")
	_, ok = accountQuota(t, st, r.ID)
	assert.False(t, ok, "resource's account deleted")
}
