package ldap_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/directory/ldap"
	"github.com/mailyard/mailyard/internal/testclock"
	"github.com/mailyard/mailyard/store"
)

const keptBody = "From: a@example.org\r\nSubject: keep me\r\n\r\nstill here\r\n"

// deliver stores a message in the account's INBOX and returns its UID.
func (e *env) deliver(t *testing.T, account string) uint32 {
	t.Helper()
	d, err := e.st.Deliver(context.Background(), store.Delivery{Recipients: []store.Recipient{{Account: account}}}, strings.NewReader(keptBody))
	require.NoError(t, err)
	require.Len(t, d, 1)
	return d[0].UID
}

// requireMail checks that the message delivered with UID uid is still in
// the account's INBOX.
func (e *env) requireMail(t *testing.T, account string, uid uint32) {
	t.Helper()
	rc, err := e.st.OpenBody(context.Background(), account, "INBOX", uid)
	require.NoError(t, err, "the mailbox and its mail are kept")
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	assert.Equal(t, keptBody, string(b))
}

// moveOut moves u out of the sync base into ou=former, as an administrator
// tidying the tree would.
func (e *env) moveOut(t *testing.T, u adUser) {
	t.Helper()
	admin := e.admin(t)
	err := admin.Add(&goldap.AddRequest{DN: "ou=former,dc=example,dc=com", Attributes: []goldap.Attribute{
		{Type: "objectClass", Vals: []string{"organizationalUnit"}}, {Type: "ou", Vals: []string{"former"}},
	}})
	if !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
		require.NoError(t, err)
	}
	require.NoError(t, admin.ModifyDN(goldap.NewModifyDNRequest(u.dn(), "cn="+u.cn, true, "ou=former,dc=example,dc=com")))
}

// useClock replaces the connector with one on a test clock.
func (e *env) useClock(t *testing.T) *testclock.Clock {
	t.Helper()
	clk := testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	c, err := ldap.New(e.cfg, ldap.Options{Dir: e.dir, Records: e.st, Now: clk.Now})
	require.NoError(t, err)
	e.conn = c
	return clk
}

// daveWithMailMovedOut syncs, delivers a message to dave and moves him
// out of the sync base; it returns the user and the message's UID.
func (e *env) daveWithMailMovedOut(t *testing.T) (directory.User, uint32) {
	t.Helper()
	_, err := e.conn.Sync(context.Background(), ldap.SyncOptions{})
	require.NoError(t, err)
	dv := e.user(t, "dave@example.com")
	uid := e.deliver(t, dv.ID)
	e.moveOut(t, dave)
	return dv, uid
}

// moveIn moves u back from ou=former into the sync base.
func (e *env) moveIn(t *testing.T, u adUser) {
	t.Helper()
	require.NoError(t, e.admin(t).ModifyDN(goldap.NewModifyDNRequest("cn="+u.cn+",ou=former,dc=example,dc=com", "cn="+u.cn, true, "ou=people,dc=example,dc=com")))
}

// A user moved out of the sync base is disabled, not deleted: the store
// account and its mail stay, and the status lists the user.
func TestVanishedUserKeepsMail(t *testing.T) {
	ctx := context.Background()
	e := newADEnv(t, nil)
	clk := e.useClock(t)
	dv, uid := e.daveWithMailMovedOut(t)
	clk.Add(time.Hour)
	st, err := e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Zero(t, st.Deleted, st.Log)
	assert.Equal(t, 1, st.Disabled, st.Log)
	assert.Equal(t, 1, st.Vanished)
	vanishedAt := clk.Now()
	assert.Equal(t, []ldap.VanishedUser{{Address: "dave@example.com", Since: vanishedAt}}, st.VanishedUsers)
	assert.Contains(t, strings.Join(st.Log, "\n"), "user dave@example.com vanished from the directory: disabled, account and mail kept")
	got := e.user(t, "dave@example.com")
	assert.Equal(t, dv.ID, got.ID)
	assert.True(t, got.Disabled)
	assert.False(t, got.LocallyDisabled)
	assert.True(t, vanishedAt.Equal(got.Vanished), got.Vanished)
	e.requireMail(t, dv.ID, uid)
	en, err := e.dir.LookupAddress(ctx, "dave@example.com")
	require.NoError(t, err)
	assert.True(t, en.Kind == directory.KindUser && en.User.Disabled, "routing refuses mail to a disabled user")
	auth := &directory.SourcedAuth{Users: e.dir, Sources: map[string]directory.SourceAuthenticator{e.conn.Source(): e.conn}}
	_, err = auth.Authenticate(ctx, "dave@example.com", "dave-pw", directory.ProtoIMAP)
	assert.Error(t, err, "no login")
	// An administrator cannot enable a user the source no longer lists.
	assert.ErrorIs(t, e.dir.SetDisabled(ctx, dv.ID, false), directory.ErrInvalid)
	stored, err := ldap.ReadStatus(ctx, e.st, "corp")
	require.NoError(t, err)
	assert.Equal(t, st.VanishedUsers, stored.VanishedUsers)

	// Later runs keep the user and its first vanishing time; incremental
	// runs carry the list over.
	clk.Add(time.Hour)
	st, err = e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Zero(t, st.Disabled+st.Deleted, st.Log)
	assert.Equal(t, []ldap.VanishedUser{{Address: "dave@example.com", Since: vanishedAt}}, st.VanishedUsers)
	st, err = e.conn.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	assert.Equal(t, "incremental", st.Kind)
	assert.Equal(t, 1, st.Vanished)
	assert.Len(t, st.VanishedUsers, 1)
	assert.True(t, vanishedAt.Equal(e.user(t, "dave@example.com").Vanished))
	e.requireMail(t, dv.ID, uid)
}

// A vanished user listed again is enabled, unless an administrator or the
// source disabled it; its mail is still there.
func TestVanishedUserReappears(t *testing.T) {
	ctx := context.Background()
	e := newADEnv(t, func(c *ldap.Config) { c.MaxDeleteShare = 1 })
	e.useClock(t)
	_, err := e.conn.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	dv, er := e.user(t, "dave@example.com"), e.user(t, "erin@example.com")
	uid := e.deliver(t, dv.ID)
	require.NoError(t, e.dir.SetDisabled(ctx, er.ID, true), "an administrator blocks erin")
	for _, u := range []adUser{dave, erin, bob} { // bob is disabled at the source
		e.moveOut(t, u)
	}
	st, err := e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Equal(t, 3, st.Vanished, st.Log)
	assert.Equal(t, 1, st.Disabled, "only dave was enabled")

	for _, u := range []adUser{dave, erin, bob} {
		e.moveIn(t, u)
	}
	st, err = e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Equal(t, 3, st.Reappeared, st.Log)
	assert.Zero(t, st.Vanished)
	assert.Empty(t, st.VanishedUsers)
	assert.Contains(t, strings.Join(st.Log, "\n"), "user dave@example.com is listed again: enabled again")
	for addr, disabled := range map[string]bool{"dave@example.com": false, "erin@example.com": true, "bob@example.com": true} {
		u := e.user(t, addr)
		assert.Equal(t, disabled, u.Disabled, addr)
		assert.True(t, u.Vanished.IsZero(), addr)
	}
	assert.Equal(t, dv.ID, e.user(t, "dave@example.com").ID)
	e.requireMail(t, dv.ID, uid)
	auth := &directory.SourcedAuth{Users: e.dir, Sources: map[string]directory.SourceAuthenticator{e.conn.Source(): e.conn}}
	_, err = auth.Authenticate(ctx, "dave", "dave-pw", directory.ProtoIMAP)
	assert.NoError(t, err)
	_, err = auth.Authenticate(ctx, "erin", "erin-pw", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrDisabled)

	// A user no longer matching the filter (its entry unchanged, so its
	// password still binds) cannot log in either.
	e.cfg.UserFilter = "(&(objectCategory=person)(!(sAMAccountName=dave)))"
	e.useClock(t)
	_, err = e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	_, err = auth.Authenticate(ctx, "dave@example.com", "dave-pw", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrDisabled)
}

// With a retention period, a full sync deletes a user (with its mailbox)
// that has been missing for that long, and not before.
func TestDeleteVanishedAfter(t *testing.T) {
	ctx := context.Background()
	e := newADEnv(t, func(c *ldap.Config) { c.DeleteVanishedAfter = 48 * time.Hour })
	clk := e.useClock(t)
	dv, uid := e.daveWithMailMovedOut(t)
	_, err := e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)

	clk.Add(48*time.Hour - time.Second)
	st, err := e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Zero(t, st.Deleted, st.Log)
	e.requireMail(t, dv.ID, uid)

	clk.Add(time.Second)
	st, err = e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Equal(t, 1, st.Deleted, st.Log)
	assert.Equal(t, []string{"dave@example.com"}, st.DeletedUsers)
	assert.Zero(t, st.Vanished)
	assert.Contains(t, strings.Join(st.Log, "\n"), "user dave@example.com deleted with its account and mail (missing from the directory since 2026-03-01T12:00:00Z, longer than 48h0m0s)")
	_, err = e.dir.User(ctx, dv.ID)
	assert.ErrorIs(t, err, directory.ErrNotFound)
	_, err = e.st.Account(ctx, dv.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "the mailbox goes with the user")
	stored, err := ldap.ReadStatus(ctx, e.st, "corp")
	require.NoError(t, err)
	assert.Equal(t, []string{"dave@example.com"}, stored.DeletedUsers)
}

// failingAccounts fails DeleteAccount while fail is set, as a crash
// between the two steps of a deletion would leave it.
type failingAccounts struct {
	store.Accounts
	mu   sync.Mutex
	fail bool
}

func (f *failingAccounts) DeleteAccount(ctx context.Context, id string) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errors.New("injected failure")
	}
	return f.Accounts.DeleteAccount(ctx, id)
}

// A deletion interrupted after the directory step leaves a record that
// the next sync completes: the mailbox does not outlive its user.
func TestDeleteVanishedInterrupted(t *testing.T) {
	ctx := context.Background()
	e := newADEnv(t, func(c *ldap.Config) { c.DeleteVanishedAfter = time.Hour })
	accounts := &failingAccounts{Accounts: e.st}
	e.dir = builtin.New(e.st, builtin.Options{Accounts: accounts})
	clk := e.useClock(t)
	dv, _ := e.daveWithMailMovedOut(t)
	_, err := e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)

	accounts.mu.Lock()
	accounts.fail = true
	accounts.mu.Unlock()
	clk.Add(time.Hour)
	st, err := e.conn.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Equal(t, 1, st.Deleted, st.Log)
	require.Len(t, st.Errors, 1)
	assert.Contains(t, st.Errors[0], "injected failure")
	_, err = e.dir.User(ctx, dv.ID)
	assert.ErrorIs(t, err, directory.ErrNotFound, "the directory step committed")
	_, err = e.st.Account(ctx, dv.ID)
	require.NoError(t, err, "the account step failed")

	accounts.mu.Lock()
	accounts.fail = false
	accounts.mu.Unlock()
	st, err = e.conn.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	assert.Contains(t, strings.Join(st.Log, "\n"), "user dave@example.com: account deleted, completing its deletion")
	_, err = e.st.Account(ctx, dv.ID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	done, err := e.dir.CompleteDeletions(ctx)
	require.NoError(t, err)
	assert.Empty(t, done, "nothing left")
}
