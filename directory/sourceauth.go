package directory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// SourceAuthenticator checks passwords at the external directory users
// were synced from (directory/ldap binds as the user), so that their
// passwords are never stored here.
type SourceAuthenticator interface {
	// AuthenticateAtSource checks login and password at the source and
	// returns the external ID of the entry that authenticated. user is
	// the synced user whose address login is, or nil when login is not
	// an address known here (a source login name such as "jdoe").
	// ErrAuthFailed for wrong credentials or an unknown login; other
	// errors mean the source could not be asked.
	AuthenticateAtSource(ctx context.Context, login string, user *User, password string) (externalID string, err error)
}

// SourcedUsers is the directory a [SourcedAuth] routes logins for: a
// [Directory] that also finds a user, with its password hash, by address
// and by the user's ID at an external source. The store-backed directory
// (directory/builtin) is one.
type SourcedUsers interface {
	Directory
	// UserByAddress returns the user whose primary address or alias is
	// address (no sub-addressing), including its password hash.
	// ErrNotFound if no user has it; ErrInvalid if it is malformed.
	UserByAddress(ctx context.Context, address string) (User, error)
	// UserByExternalID returns the user that source knows as
	// externalID, including its password hash. ErrNotFound if there is
	// none.
	UserByExternalID(ctx context.Context, source, externalID string) (User, error)
}

// SourcedAuth is a directory with authentication routed to where each
// password lives: users synced from a source with an authenticator in
// Sources bind at that source, every other user is checked against the
// local hash by Users.Authenticate. Lookups are Users'. It implements
// [Directory] and [LoginKeyer] and is what a server hands its protocol
// listeners.
//
// A login that is not an address of a known user (such as an Active
// Directory sAMAccountName) is offered to each source in turn, in the
// order of their names; the first to accept it decides, and the user is
// the one synced with the external ID it returns.
type SourcedAuth struct {
	// Users holds every user, synced or not.
	Users SourcedUsers
	// Sources maps User.Source ("ldap:corp") to its authenticator.
	Sources map[string]SourceAuthenticator
}

var (
	_ Directory  = (*SourcedAuth)(nil)
	_ LoginKeyer = (*SourcedAuth)(nil)
)

// LookupAddress is Users.LookupAddress.
func (a *SourcedAuth) LookupAddress(ctx context.Context, address string) (Entry, error) {
	return a.Users.LookupAddress(ctx, address)
}

// LookupAddresses resolves each address as LookupAddress does (entries[i]
// and errs[i] are those of addresses[i]): through Users' own
// LookupAddresses when it has one, as the store-backed directory does,
// which shares the reads of the lookups; one by one otherwise.
func (a *SourcedAuth) LookupAddresses(ctx context.Context, addresses []string) (entries []Entry, errs []error) {
	if many, ok := a.Users.(interface {
		LookupAddresses(ctx context.Context, addresses []string) ([]Entry, []error)
	}); ok {
		return many.LookupAddresses(ctx, addresses)
	}
	entries, errs = make([]Entry, len(addresses)), make([]error, len(addresses))
	for i, addr := range addresses {
		entries[i], errs[i] = a.Users.LookupAddress(ctx, addr)
	}
	return entries, errs
}

// User finds a user by ID through Users, when Users can (as the
// store-backed directory does); ErrNotFound when it cannot. The DAV
// handler resolves principal URLs with it.
func (a *SourcedAuth) User(ctx context.Context, id string) (User, error) {
	if byID, ok := a.Users.(interface {
		User(ctx context.Context, id string) (User, error)
	}); ok {
		return byID.User(ctx, id)
	}
	return User{}, ErrNotFound
}

// LookupDomain is Users.LookupDomain.
func (a *SourcedAuth) LookupDomain(ctx context.Context, name string) (Domain, error) {
	return a.Users.LookupDomain(ctx, name)
}

// SendAddresses is Users.SendAddresses.
func (a *SourcedAuth) SendAddresses(ctx context.Context, userID string) ([]string, error) {
	return a.Users.SendAddresses(ctx, userID)
}

// LoginKey is Users.LoginKey when Users is a [LoginKeyer], else login: a
// login a source checks is still the login of the user synced under it.
func (a *SourcedAuth) LoginKey(ctx context.Context, login string) string {
	return LimiterLogin(ctx, a.Users, login)
}

// Authenticate checks login and password for protocol p. Errors as
// Users.Authenticate: ErrAuthFailed, ErrDisabled (only after a
// correct password), ErrProtocolNotAllowed; anything else means a store
// or every asked source failed.
func (a *SourcedAuth) Authenticate(ctx context.Context, login, password string, p Protocol) (User, error) {
	u, err := a.Users.UserByAddress(ctx, login)
	switch {
	case err == nil:
		src, ok := a.Sources[u.Source]
		if !ok || u.PasswordHash != "" || u.Source == SourceBuiltin {
			return a.Users.Authenticate(ctx, login, password, p)
		}
		ext, err := src.AuthenticateAtSource(ctx, login, &u, password)
		if err != nil {
			return User{}, err
		}
		if ext != u.ExternalID {
			// The bind succeeded for another entry than the one synced
			// under this address (renamed at the source since the last
			// sync): refuse rather than guess.
			return User{}, ErrAuthFailed
		}
		return finishLogin(u, p)
	case !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalid):
		return User{}, err
	}
	var failures []error
	if password != "" {
		for _, name := range slices.Sorted(maps.Keys(a.Sources)) {
			ext, err := a.Sources[name].AuthenticateAtSource(ctx, login, nil, password)
			if errors.Is(err, ErrAuthFailed) {
				continue
			}
			if err != nil {
				failures = append(failures, fmt.Errorf("%s: %w", name, err))
				continue
			}
			su, err := a.Users.UserByExternalID(ctx, name, ext)
			if errors.Is(err, ErrNotFound) {
				return User{}, ErrAuthFailed // not synced (excluded, or not yet)
			}
			if err != nil {
				return User{}, err
			}
			return finishLogin(su, p)
		}
	}
	if len(failures) > 0 {
		return User{}, fmt.Errorf("directory: no source could check the login: %w", errors.Join(failures...))
	}
	// Same cost and answer as an unknown login in the built-in directory.
	return a.Users.Authenticate(ctx, login, password, p)
}

func finishLogin(u User, p Protocol) (User, error) {
	if u.Disabled {
		return User{}, ErrDisabled
	}
	if !u.Allows(p) {
		return User{}, ErrProtocolNotAllowed
	}
	u.PasswordHash = ""
	return u, nil
}

// IsSourced reports whether u was synced from an external directory
// rather than created here.
func (u User) IsSourced() bool { return u.Source != "" && u.Source != SourceBuiltin }

// Resource finds a resource (room or equipment) by ID through Users,
// when Users can (as the store-backed directory does); ErrNotFound when
// it cannot. The DAV handler serves resources' principals with it.
func (a *SourcedAuth) Resource(ctx context.Context, id string) (Resource, error) {
	if byID, ok := a.Users.(interface {
		Resource(ctx context.Context, id string) (Resource, error)
	}); ok {
		return byID.Resource(ctx, id)
	}
	return Resource{}, ErrNotFound
}
