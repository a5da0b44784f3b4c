package ldap_test

import (
	"context"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/directory/ldap"
	"github.com/mailyard/mailyard/internal/ldaptest"
)

// The built-in directory is a target with every optional part.
var (
	_ ldap.Target          = (*builtin.Directory)(nil)
	_ ldap.GroupTarget     = (*builtin.Directory)(nil)
	_ ldap.ContactTarget   = (*builtin.Directory)(nil)
	_ ldap.VanishedDeleter = (*builtin.Directory)(nil)
	_ ldap.DomainCreator   = (*builtin.Directory)(nil)
)

// usersOnly hides every method of the wrapped directory but Target's.
type usersOnly struct{ ldap.Target }

// usersAndGroups is the least a sync needs.
type usersAndGroups struct {
	ldap.Target
	ldap.GroupTarget
}

func TestNewChecksTargetParts(t *testing.T) {
	st, dir := newDir(t)
	minimal := usersAndGroups{dir, dir}
	for _, tc := range []struct {
		name    string
		dir     ldap.Target
		mod     func(*ldap.Config)
		missing string // "" when New accepts
	}{
		{"builtin, every feature", dir, func(c *ldap.Config) {
			c.AddressBookUserFilter = "(objectClass=person)"
			c.DeleteVanishedAfter = time.Hour
			c.CreateDomains = true
		}, ""},
		{"no groups", usersOnly{dir}, nil, "GroupTarget"},
		{"minimal", minimal, nil, ""},
		{"address book", minimal, func(c *ldap.Config) { c.AddressBookGroupFilter = "(objectClass=group)" }, "ContactTarget"},
		{"delete vanished", minimal, func(c *ldap.Config) { c.DeleteVanishedAfter = time.Hour }, "VanishedDeleter"},
		{"create domains", minimal, func(c *ldap.Config) { c.CreateDomains = true }, "DomainCreator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := adConfig("ldap://127.0.0.1:1")
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			_, err := ldap.New(cfg, ldap.Options{Dir: tc.dir, Records: st})
			if tc.missing == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.missing)
		})
	}
}

// TestSyncIntoMinimalTarget syncs into a directory that is only a Target
// and a GroupTarget: users and groups arrive, vanished users are
// disabled, and nothing calls a method outside the two interfaces.
func TestSyncIntoMinimalTarget(t *testing.T) {
	ctx := context.Background()
	srv := ldaptest.Start(t, adFixtures())
	st, dir := newDir(t)
	c, err := ldap.New(adConfig(srv.URL), ldap.Options{Dir: usersAndGroups{dir, dir}, Records: st})
	require.NoError(t, err)
	status, err := c.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Empty(t, status.Errors)
	assert.Positive(t, status.Added)
	users, err := dir.ListSourced(ctx, c.Source(), directory.KindUser)
	require.NoError(t, err)
	groups, err := dir.ListSourced(ctx, c.Source(), directory.KindGroup)
	require.NoError(t, err)
	assert.NotEmpty(t, users)
	assert.NotEmpty(t, groups)
	assert.Equal(t, status.Added, len(users)+len(groups))
	_, err = dir.UserByAddress(ctx, "alice@example.com")
	require.NoError(t, err)

	e := &env{srv: srv, st: st, dir: dir, conn: c}
	require.NoError(t, e.admin(t).Del(goldap.NewDelRequest(alice.dn(), nil)))
	status, err = c.Sync(ctx, ldap.SyncOptions{Full: true})
	require.NoError(t, err)
	assert.Empty(t, status.Errors)
	assert.Equal(t, 1, status.Disabled)
	u, err := dir.UserByAddress(ctx, "alice@example.com")
	require.NoError(t, err)
	assert.True(t, u.Disabled)
}
