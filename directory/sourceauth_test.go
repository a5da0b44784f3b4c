package directory_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mailyard/mailyard/directory"
)

// plainUsers is a SourcedUsers that is no LoginKeyer and knows no one.
type plainUsers struct{}

func (plainUsers) Authenticate(context.Context, string, string, directory.Protocol) (directory.User, error) {
	return directory.User{}, directory.ErrAuthFailed
}

func (plainUsers) LookupAddress(context.Context, string) (directory.Entry, error) {
	return directory.Entry{}, directory.ErrNotFound
}

func (plainUsers) LookupDomain(context.Context, string) (directory.Domain, error) {
	return directory.Domain{}, directory.ErrNotFound
}

func (plainUsers) SendAddresses(context.Context, string) ([]string, error) { return nil, nil }

func (plainUsers) UserByAddress(context.Context, string) (directory.User, error) {
	return directory.User{}, directory.ErrNotFound
}

func (plainUsers) UserByExternalID(context.Context, string, string) (directory.User, error) {
	return directory.User{}, directory.ErrNotFound
}

// TestSourcedAuthOverAnyDirectory: SourcedAuth needs only SourcedUsers;
// without a LoginKeyer behind it a login is its own limiter key, and an
// unknown login with no source to ask fails as in the directory.
func TestSourcedAuthOverAnyDirectory(t *testing.T) {
	ctx := context.Background()
	a := &directory.SourcedAuth{Users: plainUsers{}}
	assert.Equal(t, "Who@Example.com", a.LoginKey(ctx, "Who@Example.com"))
	assert.Equal(t, "Who@Example.com", directory.LimiterLogin(ctx, a, "Who@Example.com"))
	_, err := a.Authenticate(ctx, "who@example.com", "pw", directory.ProtoIMAP)
	assert.ErrorIs(t, err, directory.ErrAuthFailed)
	_, err = a.LookupAddress(ctx, "who@example.com")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	_, err = a.User(ctx, "u1")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	u, err := (&directory.SourcedAuth{Users: idUsers{}}).User(ctx, "u1")
	assert.NoError(t, err)
	assert.Equal(t, "u1@example.com", u.Address)
	// Resources by ID alike (the DAV handler's room principals).
	_, err = a.Resource(ctx, "r1")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	r, err := (&directory.SourcedAuth{Users: idUsers{}}).Resource(ctx, "r1")
	assert.NoError(t, err)
	assert.Equal(t, "r1@example.com", r.Address)
}

// idUsers is plainUsers that also finds users by ID.
type idUsers struct{ plainUsers }

func (idUsers) User(_ context.Context, id string) (directory.User, error) {
	return directory.User{ID: id, Address: id + "@example.com"}, nil
}

func (idUsers) Resource(_ context.Context, id string) (directory.Resource, error) {
	return directory.Resource{ID: id, Address: id + "@example.com"}, nil
}
