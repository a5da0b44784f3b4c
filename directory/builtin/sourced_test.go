package builtin_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
)

func sourced(addr, ext string, aliases ...string) directory.User {
	return directory.User{Address: addr, Aliases: aliases, DisplayName: "N " + ext, Source: "ldap:corp", ExternalID: ext, ExternalDN: "cn=" + ext}
}

func TestUpsertSourcedUser(t *testing.T) {
	ctx := context.Background()
	b, st := newFixture(t)
	_, err := b.CreateUser(ctx, directory.User{Address: "taken@example.com"}, "pw")
	require.NoError(t, err)

	res, err := b.UpsertSourcedUser(ctx, sourced("u1@example.com", "g1", "u1.alias@example.com", "taken@example.com", "x@globex.test", "y@unhosted.test"), []byte("photo"))
	require.NoError(t, err)
	assert.Equal(t, directory.SyncAdded, res.Change)
	assert.Len(t, res.Skipped, 3, res.Skipped)
	u, err := b.User(ctx, res.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"u1.alias@example.com"}, u.Aliases)
	assert.Empty(t, u.PasswordHash)
	assert.NotEmpty(t, u.PhotoHash)
	_, ok := accountQuota(t, st, u.ID)
	assert.True(t, ok, "synced users get a mailbox")

	// Same data: nothing written.
	again, err := b.UpsertSourcedUser(ctx, sourced("u1@example.com", "g1", "u1.alias@example.com"), []byte("photo"))
	require.NoError(t, err)
	assert.Equal(t, directory.SyncUnchanged, again.Change)
	assert.Equal(t, res.ID, again.ID)

	// Rename: the alias becomes primary and the old primary an alias;
	// then the old address goes entirely.
	_, err = b.UpsertSourcedUser(ctx, sourced("u1.alias@example.com", "g1", "u1@example.com"), nil)
	require.NoError(t, err)
	e, err := b.LookupAddress(ctx, "u1@example.com")
	require.NoError(t, err)
	assert.Equal(t, res.ID, e.User.ID)
	grp, err := b.CreateGroup(ctx, directory.Group{Address: "team@example.com", Members: []string{"u1@example.com"}})
	require.NoError(t, err)
	up, err := b.UpsertSourcedUser(ctx, sourced("renamed@example.com", "g1"), nil)
	require.NoError(t, err)
	assert.Equal(t, directory.SyncUpdated, up.Change)
	_, err = b.LookupAddress(ctx, "u1@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	_, err = b.LookupAddress(ctx, "u1.alias@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	g, err := b.Group(ctx, grp.ID)
	require.NoError(t, err)
	assert.Empty(t, g.Members, "the released address leaves group members")
	u, err = b.User(ctx, res.ID)
	require.NoError(t, err)
	assert.Empty(t, u.PhotoHash, "nil photo removes it")
	_, err = b.Photo(ctx, u.ID)
	assert.ErrorIs(t, err, directory.ErrNotFound)

	// A primary address that belongs to someone else is an error.
	_, err = b.UpsertSourcedUser(ctx, sourced("taken@example.com", "g2"), nil)
	assert.ErrorIs(t, err, directory.ErrExists)
	_, err = b.UpsertSourcedUser(ctx, sourced("taken@example.com", "g1"), nil)
	assert.ErrorIs(t, err, directory.ErrExists)
	// Bad input.
	bad := sourced("z@example.com", "")
	_, err = b.UpsertSourcedUser(ctx, bad, nil)
	assert.ErrorIs(t, err, directory.ErrInvalid)
	bad = sourced("z@example.com", "g3")
	bad.PasswordHash = "$argon2id$x"
	_, err = b.UpsertSourcedUser(ctx, bad, nil)
	assert.ErrorIs(t, err, directory.ErrInvalid)
	bad = sourced("z@example.com", "g3")
	bad.Source = directory.SourceBuiltin
	_, err = b.UpsertSourcedUser(ctx, bad, nil)
	assert.ErrorIs(t, err, directory.ErrInvalid)

	refs, err := b.ListSourced(ctx, "ldap:corp", directory.KindUser)
	require.NoError(t, err)
	assert.Equal(t, []directory.SourcedRef{{ExternalID: "g1", ID: res.ID}}, refs)
	byExt, err := b.UserByExternalID(ctx, "ldap:corp", "g1")
	require.NoError(t, err)
	assert.Equal(t, "renamed@example.com", byExt.Address)
	require.NoError(t, b.DeleteUser(ctx, res.ID))
	refs, err = b.ListSourced(ctx, "ldap:corp", directory.KindUser)
	require.NoError(t, err)
	assert.Empty(t, refs, "deletion releases the external ID")
}

func TestUpsertSourcedGroup(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	_, err := b.UpsertSourcedUser(ctx, sourced("m1@example.com", "u1"), nil)
	require.NoError(t, err)
	spec := directory.Group{Address: "dl@example.com", DisplayName: "DL", Source: "ldap:corp", ExternalID: "grp1",
		Members: []string{"m1@example.com", "inner@example.com", "dl@example.com", "ext@partner.test"}}
	res, err := b.UpsertSourcedGroup(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, directory.SyncAdded, res.Change)
	assert.Len(t, res.Skipped, 2, "unknown local member and the group itself")
	g, err := b.Group(ctx, res.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"ext@partner.test", "m1@example.com"}, g.Members)
	_, err = b.UpsertSourcedGroup(ctx, directory.Group{Address: "inner@example.com", Source: "ldap:corp", ExternalID: "grp2"})
	require.NoError(t, err)
	res, err = b.UpsertSourcedGroup(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, directory.SyncUpdated, res.Change)
	g, _ = b.Group(ctx, res.ID)
	assert.Equal(t, []string{"ext@partner.test", "inner@example.com", "m1@example.com"}, g.Members)
	res, err = b.UpsertSourcedGroup(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, directory.SyncUnchanged, res.Change)
	found, err := b.GroupByExternalID(ctx, "ldap:corp", "grp1")
	require.NoError(t, err)
	assert.Equal(t, g.ID, found.ID)
}

// fakeSource accepts one login name and password.
type fakeSource struct {
	login, password, ext string
	err                  error
	calls                int
}

func (f *fakeSource) AuthenticateAtSource(_ context.Context, login string, u *directory.User, password string) (string, error) {
	f.calls++
	if f.err != nil {
		return "", f.err
	}
	if u != nil {
		login = u.ExternalID
	}
	if (login == f.login || login == f.ext) && password == f.password {
		return f.ext, nil
	}
	return "", directory.ErrAuthFailed
}

func TestSourcedAuthRouting(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	_, err := b.UpsertSourcedUser(ctx, sourced("s@example.com", "e1"), nil)
	require.NoError(t, err)
	_, err = b.CreateUser(ctx, directory.User{Address: "l@example.com"}, "local")
	require.NoError(t, err)
	src := &fakeSource{login: "sam", password: "remote", ext: "e1"}
	a := &directory.SourcedAuth{Users: b, Sources: map[string]directory.SourceAuthenticator{"ldap:corp": src}}

	// Lookups and the auth limiter's login key are the directory's.
	assert.Equal(t, "s@example.com", a.LoginKey(ctx, "S@Example.COM"))
	assert.Equal(t, "sam", a.LoginKey(ctx, "sam"))
	e, err := a.LookupAddress(ctx, "l+tag@example.com")
	require.NoError(t, err)
	assert.Equal(t, "l@example.com", e.Address)

	u, err := a.Authenticate(ctx, "s@example.com", "remote", directory.ProtoIMAP)
	require.NoError(t, err)
	assert.Equal(t, "s@example.com", u.Address)
	_, err = a.Authenticate(ctx, "s@example.com", "local", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrAuthFailed)
	u, err = a.Authenticate(ctx, "sam", "remote", directory.ProtoIMAP)
	require.NoError(t, err, "source login name")
	assert.Equal(t, "s@example.com", u.Address)
	// The local user never reaches the source.
	calls := src.calls
	_, err = a.Authenticate(ctx, "l@example.com", "local", directory.ProtoIMAP)
	require.NoError(t, err)
	_, err = a.Authenticate(ctx, "l@example.com", "remote", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrAuthFailed)
	assert.Equal(t, calls, src.calls)
	// The source authenticates someone else than the synced entry.
	src.ext = "other"
	_, err = a.Authenticate(ctx, "sam", "remote", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrAuthFailed, "not synced")
	src.ext = "e1"
	// Blocked and protocol-restricted users.
	id := mustUserID(t, b, "s@example.com")
	require.NoError(t, b.SetDisabled(ctx, id, true))
	_, err = a.Authenticate(ctx, "s@example.com", "remote", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrDisabled)
	require.NoError(t, b.SetDisabled(ctx, id, false))
	_, err = b.UpdateUser(ctx, id, builtin.UserUpdate{Protocols: &[]directory.Protocol{directory.ProtoSMTP}})
	require.NoError(t, err)
	_, err = a.Authenticate(ctx, "s@example.com", "remote", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrProtocolNotAllowed)
	// A source that cannot be asked is not "wrong password".
	src.err = errors.New("connection refused")
	_, err = a.Authenticate(ctx, "sam", "remote", directory.ProtoSMTP)
	require.Error(t, err)
	assert.NotErrorIs(t, err, directory.ErrAuthFailed)
}

func mustUserID(t *testing.T, b *builtin.Directory, addr string) string {
	t.Helper()
	u, err := b.UserByAddress(context.Background(), addr)
	require.NoError(t, err)
	return u.ID
}

func TestMarkVanished(t *testing.T) {
	ctx := context.Background()
	b, st := newFixture(t)
	res, err := b.UpsertSourcedUser(ctx, sourced("v@example.com", "v1"), nil)
	require.NoError(t, err)
	id := res.ID
	at := fixedNow.Add(time.Hour)

	disabled, err := b.MarkVanished(ctx, id, at)
	require.NoError(t, err)
	assert.True(t, disabled)
	u, err := b.User(ctx, id)
	require.NoError(t, err)
	assert.True(t, u.Disabled)
	assert.True(t, at.Equal(u.Vanished))
	_, ok := accountQuota(t, st, id)
	assert.True(t, ok, "the account stays")
	_, err = b.UpsertSourcedUser(ctx, sourced("other@example.com", "v2", "v@example.com"), nil)
	require.NoError(t, err)
	o, err := b.UserByAddress(ctx, "other@example.com")
	require.NoError(t, err)
	assert.Empty(t, o.Aliases, "the vanished user's address stays reserved")
	// Marking again keeps the first time.
	disabled, err = b.MarkVanished(ctx, id, at.Add(time.Hour))
	require.NoError(t, err)
	assert.False(t, disabled)
	u, _ = b.User(ctx, id)
	assert.True(t, at.Equal(u.Vanished))
	assert.ErrorIs(t, b.SetDisabled(ctx, id, false), directory.ErrInvalid)

	// Deleting on retention: not for a time before the mark.
	assert.ErrorIs(t, b.DeleteVanished(ctx, id, at.Add(-time.Second)), directory.ErrInvalid)
	// Listed again: enabled, and then not deletable as vanished.
	res, err = b.UpsertSourcedUser(ctx, sourced("v@example.com", "v1"), nil)
	require.NoError(t, err)
	assert.True(t, res.Reappeared)
	assert.Equal(t, directory.SyncUpdated, res.Change)
	u, _ = b.User(ctx, id)
	assert.False(t, u.Disabled)
	assert.True(t, u.Vanished.IsZero())
	assert.ErrorIs(t, b.DeleteVanished(ctx, id, at.Add(time.Hour)), directory.ErrInvalid)

	// An administrator's block survives the source's updates.
	require.NoError(t, b.SetDisabled(ctx, id, true))
	spec := sourced("v@example.com", "v1")
	spec.DisplayName = "Renamed"
	_, err = b.UpsertSourcedUser(ctx, spec, nil)
	require.NoError(t, err)
	u, _ = b.User(ctx, id)
	assert.True(t, u.Disabled && u.LocallyDisabled)
	assert.Equal(t, "Renamed", u.DisplayName)

	_, err = b.MarkVanished(ctx, id, at)
	require.NoError(t, err)
	require.NoError(t, b.DeleteVanished(ctx, id, at))
	_, ok = accountQuota(t, st, id)
	assert.False(t, ok, "the account goes with the user")
	done, err := b.CompleteDeletions(ctx)
	require.NoError(t, err)
	assert.Empty(t, done)

	local, err := b.CreateUser(ctx, directory.User{Address: "local@example.com"}, "pw")
	require.NoError(t, err)
	_, err = b.MarkVanished(ctx, local.ID, at)
	assert.ErrorIs(t, err, directory.ErrInvalid, "built-in users have no source to vanish from")
}
