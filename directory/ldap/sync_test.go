package ldap_test

import (
	"context"
	"crypto/x509"
	"net"
	"strconv"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/directory/ldap"
	"github.com/mailyard/mailyard/internal/ldaptest"
	"github.com/mailyard/mailyard/internal/testpeer"
	"github.com/mailyard/mailyard/store/sqlite"
)

type env struct {
	srv  *ldaptest.Server
	st   *sqlite.Store
	dir  *builtin.Directory
	conn *ldap.Connector
	cfg  ldap.Config
}

// newDir opens a store with tenant "acme" hosting example.com.
func newDir(t *testing.T) (*sqlite.Store, *builtin.Directory) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	dir := builtin.New(st, builtin.Options{Accounts: st})
	_, err = dir.CreateTenant(ctx, directory.Tenant{ID: "acme"})
	require.NoError(t, err)
	_, err = dir.CreateDomain(ctx, directory.Domain{Name: "example.com", Tenant: "acme"})
	require.NoError(t, err)
	return st, dir
}

func adConfig(url string) ldap.Config {
	return ldap.Config{
		Name:          "corp",
		Servers:       []ldap.Server{{URL: url}},
		BindDN:        ldaptest.AdminDN,
		BindPassword:  ldaptest.AdminPassword,
		Mapping:       ldap.ActiveDirectory(),
		BaseDN:        ldaptest.Suffix,
		UserBase:      "ou=people," + ldaptest.Suffix,
		GroupBase:     "ou=groups," + ldaptest.Suffix,
		Tenant:        "acme",
		ExcludeUsers:  []string{"carol"},
		ExcludeGroups: []string{"cn=secret,ou=groups,dc=example,dc=com"},
		Timeout:       5 * time.Second,
		DialTimeout:   2 * time.Second,
		PageSize:      2, // several pages even with the small fixture
	}
}

func newADEnv(t *testing.T, mod func(*ldap.Config)) *env {
	t.Helper()
	srv := ldaptest.Start(t, adFixtures())
	st, dir := newDir(t)
	cfg := adConfig(srv.URL)
	if mod != nil {
		mod(&cfg)
	}
	c, err := ldap.New(cfg, ldap.Options{Dir: dir, Records: st})
	require.NoError(t, err)
	return &env{srv: srv, st: st, dir: dir, conn: c, cfg: cfg}
}

// admin returns a connection bound as the slapd root DN, to change the
// fixtures the way a directory administrator would.
func (e *env) admin(t *testing.T) *goldap.Conn {
	t.Helper()
	c, err := goldap.DialURL(e.srv.URL)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Bind(ldaptest.AdminDN, ldaptest.AdminPassword))
	return c
}

func (e *env) user(t *testing.T, addr string) directory.User {
	t.Helper()
	u, err := e.dir.UserByAddress(context.Background(), addr)
	require.NoError(t, err, addr)
	return u
}

func (e *env) groupMembers(t *testing.T, addr string) []string {
	t.Helper()
	en, err := e.dir.LookupAddress(context.Background(), addr)
	require.NoError(t, err, addr)
	require.Equal(t, directory.KindGroup, en.Kind)
	return en.Group.Members
}

func TestADFullSync(t *testing.T) {
	ctx := context.Background()
	e := newADEnv(t, nil)
	st, err := e.conn.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	assert.Equal(t, "full", st.Kind)
	assert.Equal(t, ldap.StateSuccess, st.State)
	// alice, bob, dave, erin; staff, all. carol and the secret group are
	// excluded.
	assert.Equal(t, 6, st.Added, st.Log)
	assert.Equal(t, 1, st.Disabled, "bob")
	assert.Equal(t, "112", st.Cursor, "highest uSNChanged seen, excluded entries included")

	a := e.user(t, "alice@example.com")
	assert.Equal(t, "ldap:corp", a.Source)
	assert.Equal(t, ldap.FormatGUID(guid(1)), a.ExternalID)
	assert.Equal(t, alice.dn(), a.ExternalDN)
	assert.Empty(t, a.PasswordHash, "directory users have no local password")
	assert.Equal(t, []string{"a.adams@example.com"}, a.Aliases, "smtp: aliases in hosted domains only")
	assert.Equal(t, "Alice Adams", a.DisplayName)
	assert.Equal(t, "Engineer", a.Title)
	assert.Equal(t, "R&D", a.Department)
	assert.Equal(t, "+1 555 0100", a.Phone)
	assert.Equal(t, "+1 555 01009", a.Mobile)
	photo, err := e.dir.Photo(ctx, a.ID)
	require.NoError(t, err)
	assert.Equal(t, alice.photo, photo)
	assert.True(t, e.user(t, "bob@example.com").Disabled, "userAccountControl 0x2")
	assert.False(t, a.Disabled)
	assert.Equal(t, "ldap:corp", e.user(t, "erin@example.com").Source, "primary from SMTP: proxy address")
	_, err = e.dir.UserByAddress(ctx, "carol@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound, "excluded user")
	_, err = e.dir.LookupAddress(ctx, "secret@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound, "excluded group")

	assert.Equal(t, []string{"alice@example.com", "bob@example.com", "dave@example.com"}, e.groupMembers(t, "staff@example.com"))
	// Nested group resolved; the excluded user is left out.
	assert.Equal(t, []string{"erin@example.com", "staff@example.com"}, e.groupMembers(t, "all@example.com"))

	// The status is stored for the admin command of another process.
	stored, err := ldap.ReadStatus(ctx, e.st, "corp")
	require.NoError(t, err)
	assert.Equal(t, st.Added, stored.Added)
	assert.NotEmpty(t, stored.Log)
	for _, l := range stored.Log {
		assert.NotContains(t, l, ldaptest.AdminPassword)
	}

	// A second full sync of an unchanged directory changes nothing.
	st, err = e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Zero(t, st.Added+st.Updated+st.Deleted, st.Log)
	assert.Equal(t, 6, st.Unchanged)
}

func TestRenameDeleteAndIncremental(t *testing.T) {
	ctx := context.Background()
	e := newADEnv(t, func(c *ldap.Config) { c.MaxDeleteShare = 0.5 })
	_, err := e.conn.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	before := e.user(t, "alice@example.com")
	admin := e.admin(t)

	// Rename alice (new DN and new primary address), enable bob.
	require.NoError(t, admin.ModifyDN(goldap.NewModifyDNRequest(alice.dn(), "cn=Alice Archer", true, "")))
	newDN := "cn=Alice Archer,ou=people,dc=example,dc=com"
	m := goldap.NewModifyRequest(newDN, nil)
	m.Replace("mail", []string{"alice.archer@example.com"})
	m.Replace("proxyAddresses", []string{"SMTP:alice.archer@example.com", "smtp:alice@example.com"})
	m.Replace("sn", []string{"Archer"})
	m.Replace("displayName", []string{"Alice Archer"})
	m.Replace("uSNChanged", []string{"200"})
	require.NoError(t, admin.Modify(m))
	m = goldap.NewModifyRequest(bob.dn(), nil)
	m.Replace("userAccountControl", []string{"512"})
	m.Replace("uSNChanged", []string{"201"})
	require.NoError(t, admin.Modify(m))
	// slapd does not rewrite member values on rename as AD does; the
	// directory administrator's tooling would.
	m = goldap.NewModifyRequest(staff.dn(), nil)
	m.Delete("member", []string{alice.dn()})
	m.Add("member", []string{newDN})
	m.Replace("uSNChanged", []string{"202"})
	require.NoError(t, admin.Modify(m))

	st, err := e.conn.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	assert.Equal(t, "incremental", st.Kind)
	assert.Equal(t, 3, st.Updated, st.Log) // alice, bob, staff
	assert.Zero(t, st.Added)
	renamed := e.user(t, "alice.archer@example.com")
	assert.Equal(t, before.ID, renamed.ID, "a rename keeps the user (and mailbox)")
	assert.Equal(t, []string{"alice@example.com"}, renamed.Aliases)
	assert.Equal(t, newDN, renamed.ExternalDN)
	assert.False(t, e.user(t, "bob@example.com").Disabled)
	assert.Equal(t, []string{"alice.archer@example.com", "bob@example.com", "dave@example.com"}, e.groupMembers(t, "staff@example.com"))
	assert.Equal(t, "202", st.Cursor)

	// Nothing changed since: the incremental sync reads nothing.
	st, err = e.conn.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	assert.Zero(t, st.Added+st.Updated+st.Unchanged, st.Log)

	// Deletion is seen by the next full sync: the user is disabled, its
	// mailbox kept, and it leaves the groups.
	require.NoError(t, admin.Del(goldap.NewDelRequest(dave.dn(), nil)))
	dv := e.user(t, "dave@example.com")
	st, err = e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Zero(t, st.Deleted, st.Log)
	assert.Equal(t, 1, st.Vanished, st.Log)
	assert.True(t, e.user(t, "dave@example.com").Disabled)
	_, err = e.st.Account(ctx, dv.ID)
	assert.NoError(t, err, "the mailbox stays")
	assert.Equal(t, []string{"alice.archer@example.com", "bob@example.com"}, e.groupMembers(t, "staff@example.com"))
}

func TestSafetyGuard(t *testing.T) {
	ctx := context.Background()
	e := newADEnv(t, func(c *ldap.Config) { c.DeleteVanishedAfter = time.Hour }) // default share 25%
	clk := e.useClock(t)
	_, err := e.conn.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	admin := e.admin(t)
	for _, u := range []adUser{alice, dave} { // 2 of 4 users
		require.NoError(t, admin.Del(goldap.NewDelRequest(u.dn(), nil)))
	}
	st, err := e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.ErrorIs(t, err, ldap.ErrSafetyGuard)
	assert.Equal(t, ldap.StateError, st.State)
	assert.Zero(t, st.Deleted+st.Disabled+st.Vanished)
	assert.False(t, e.user(t, "alice@example.com").Disabled, "nothing disabled")
	stored, err := ldap.ReadStatus(ctx, e.st, "corp")
	require.NoError(t, err)
	assert.Equal(t, ldap.StateError, stored.State)
	assert.NotEmpty(t, stored.Errors)

	st, err = e.conn.Sync(ctx, ldap.SyncOptions{Full: true, Force: true})
	require.NoError(t, err)
	assert.Equal(t, 2, st.Disabled)
	assert.Equal(t, 2, st.Vanished)
	assert.Zero(t, st.Deleted)
	assert.True(t, e.user(t, "alice@example.com").Disabled)

	// Users that vanished earlier do not count again.
	clk.Add(30 * time.Minute)
	_, err = e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)

	// Their retention period over, deleting both at once is guarded too.
	clk.Add(30 * time.Minute)
	st, err = e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.ErrorIs(t, err, ldap.ErrSafetyGuard)
	assert.Zero(t, st.Deleted)
	e.user(t, "alice@example.com")
	st, err = e.conn.Sync(ctx, ldap.SyncOptions{Full: true, Force: true})
	require.NoError(t, err)
	assert.Equal(t, 2, st.Deleted)
	assert.Equal(t, []string{"alice@example.com", "dave@example.com"}, st.DeletedUsers)
	_, err = e.dir.UserByAddress(ctx, "alice@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound)
}

func TestSourcedAuth(t *testing.T) {
	ctx := context.Background()
	e := newADEnv(t, nil)
	_, err := e.conn.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	local, err := e.dir.CreateUser(ctx, directory.User{Address: "local@example.com"}, "local-pw")
	require.NoError(t, err)
	auth := &directory.SourcedAuth{Users: e.dir, Sources: map[string]directory.SourceAuthenticator{e.conn.Source(): e.conn}}

	u, err := auth.Authenticate(ctx, "alice@example.com", "alice-pw", directory.ProtoIMAP)
	require.NoError(t, err)
	assert.Equal(t, "alice@example.com", u.Address)
	u, err = auth.Authenticate(ctx, "a.adams@example.com", "alice-pw", directory.ProtoIMAP)
	require.NoError(t, err, "alias login")
	assert.Equal(t, "alice@example.com", u.Address)
	_, err = auth.Authenticate(ctx, "alice@example.com", "wrong", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrAuthFailed)
	_, err = auth.Authenticate(ctx, "alice@example.com", "", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrAuthFailed, "an empty password is not an unauthenticated bind")

	// Login by sAMAccountName, looked up with the service account.
	u, err = auth.Authenticate(ctx, "alice", "alice-pw", directory.ProtoIMAP)
	require.NoError(t, err)
	assert.Equal(t, "alice@example.com", u.Address)
	_, err = auth.Authenticate(ctx, "alice", "bad", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrAuthFailed)
	// Filter metacharacters are escaped (RFC 4515): "*" matches nobody.
	for _, login := range []string{"*", "al*", "alice)(uid=*", `\2a`} {
		_, err = auth.Authenticate(ctx, login, "alice-pw", directory.ProtoIMAP)
		assert.ErrorIs(t, err, directory.ErrAuthFailed, login)
	}
	// Excluded users are not synced, so their bind gets them nothing.
	_, err = auth.Authenticate(ctx, "carol", "carol-pw", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrAuthFailed)
	// Disabled accounts: right password, blocked.
	_, err = auth.Authenticate(ctx, "bob@example.com", "bob-pw", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrDisabled)
	// Built-in users keep their local hash.
	u, err = auth.Authenticate(ctx, "local@example.com", "local-pw", directory.ProtoSMTP)
	require.NoError(t, err)
	assert.Equal(t, local.ID, u.ID)
	_, err = auth.Authenticate(ctx, "nobody@example.com", "x", directory.ProtoSMTP)
	assert.ErrorIs(t, err, directory.ErrAuthFailed)

	// With the directory down, synced users cannot log in (an
	// infrastructure error, not a wrong password); local users can.
	e.srv.Stop()
	_, err = auth.Authenticate(ctx, "alice@example.com", "alice-pw", directory.ProtoIMAP)
	require.Error(t, err)
	assert.ErrorIs(t, err, ldap.ErrUnavailable)
	_, err = auth.Authenticate(ctx, "local@example.com", "local-pw", directory.ProtoSMTP)
	assert.NoError(t, err)
	// Mail still routes: the synced entries stay in the built-in directory.
	_, err = e.dir.LookupAddress(ctx, "staff@example.com")
	assert.NoError(t, err)
}

// blackhole accepts TCP connections and never answers, like a hung server.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return "ldap://" + l.Addr().String()
}

func TestFailoverAndTimeouts(t *testing.T) {
	ctx := context.Background()
	srv := ldaptest.Start(t, adFixtures())
	dead := "ldap://127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	hung := blackhole(t)
	st, dir := newDir(t)
	cfg := adConfig(srv.URL)
	cfg.Servers = []ldap.Server{{URL: dead, Priority: 0}, {URL: hung, Priority: 1}, {URL: srv.URL, Priority: 2}}
	cfg.Timeout = 300 * time.Millisecond
	cfg.DialTimeout = 300 * time.Millisecond
	c, err := ldap.New(cfg, ldap.Options{Dir: dir, Records: st})
	require.NoError(t, err)
	start := time.Now()
	status, err := c.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	assert.Equal(t, srv.URL, status.Server)
	assert.Less(t, time.Since(start), 10*time.Second)
	auth := &directory.SourcedAuth{Users: dir, Sources: map[string]directory.SourceAuthenticator{c.Source(): c}}
	_, err = auth.Authenticate(ctx, "alice", "alice-pw", directory.ProtoIMAP)
	require.NoError(t, err)

	// No server at all: ErrUnavailable, nothing removed, status says so.
	srv.Stop()
	status, syncErr := c.Sync(ctx, ldap.SyncOptions{Full: true})
	require.ErrorIs(t, syncErr, ldap.ErrUnavailable)
	assert.Equal(t, ldap.StateError, status.State)
	_, err = dir.UserByAddress(ctx, "alice@example.com")
	assert.NoError(t, err)
	assert.NotContains(t, syncErr.Error(), ldaptest.AdminPassword)
	for _, l := range append(status.Log, status.Errors...) {
		assert.NotContains(t, l, ldaptest.AdminPassword)
	}
}

func TestTLS(t *testing.T) {
	ctx := context.Background()
	srv := ldaptest.StartWithOptions(t, ldaptest.Options{LDIF: adFixtures(), TLS: true})
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(srv.CAPEM))
	for name, mod := range map[string]func(*ldap.Config){
		"ldaps":    func(c *ldap.Config) { c.Servers = []ldap.Server{{URL: srv.LDAPSURL}} },
		"starttls": func(c *ldap.Config) { c.StartTLS = true },
	} {
		t.Run(name, func(t *testing.T) {
			st, dir := newDir(t)
			cfg := adConfig(srv.URL)
			mod(&cfg)
			// Without the private CA the certificate is refused.
			c, err := ldap.New(cfg, ldap.Options{Dir: dir, Records: st})
			require.NoError(t, err)
			_, err = c.Sync(ctx, ldap.SyncOptions{})
			require.ErrorIs(t, err, ldap.ErrUnavailable)
			assert.Contains(t, err.Error(), "certificate")
			cfg.RootCAs = pool
			c, err = ldap.New(cfg, ldap.Options{Dir: dir, Records: st})
			require.NoError(t, err)
			status, err := c.Sync(ctx, ldap.SyncOptions{})
			require.NoError(t, err)
			assert.Equal(t, 6, status.Added)
			auth := &directory.SourcedAuth{Users: dir, Sources: map[string]directory.SourceAuthenticator{c.Source(): c}}
			_, err = auth.Authenticate(ctx, "alice", "alice-pw", directory.ProtoIMAP)
			assert.NoError(t, err)
		})
	}
}

func TestCreateDomains(t *testing.T) {
	ctx := context.Background()
	srv := ldaptest.Start(t, adFixtures())
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	dir := builtin.New(st, builtin.Options{})
	_, err = dir.CreateTenant(ctx, directory.Tenant{ID: "acme"})
	require.NoError(t, err)
	cfg := adConfig(srv.URL)
	c, err := ldap.New(cfg, ldap.Options{Dir: dir, Records: st})
	require.NoError(t, err)
	status, err := c.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err, "entry problems are not run failures")
	assert.Zero(t, status.Added)
	assert.NotEmpty(t, status.Errors, "domain not hosted")
	assert.Empty(t, status.Cursor, "failed writes hold the cursor back")

	cfg.CreateDomains = true
	c, err = ldap.New(cfg, ldap.Options{Dir: dir, Records: st})
	require.NoError(t, err)
	status, err = c.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Equal(t, 6, status.Added, status.Errors)
	d, err := dir.LookupDomain(ctx, "example.com")
	require.NoError(t, err)
	assert.Equal(t, "acme", d.Tenant)
}
