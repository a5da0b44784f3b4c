package directory

import "context"

// LoginKeyer is implemented by an authenticator that can tell which
// account a login reaches without checking a password. A protocol server
// keys its auth limiter (package authlimit) by LoginKey, so that the
// aliases and alternative domain names of one user share one stranger
// budget: otherwise each spelling that logs in to the account would get a
// budget of its own, and the bound on guesses would grow with them.
type LoginKeyer interface {
	// LoginKey returns the primary address of the user whose login
	// login is, or login itself when it is no user's (or the lookup
	// fails).
	LoginKey(ctx context.Context, login string) string
}

// LimiterLogin is the login to give an auth limiter for login: auth's
// LoginKey when auth is a LoginKeyer, else login.
func LimiterLogin(ctx context.Context, auth any, login string) string {
	if k, ok := auth.(LoginKeyer); ok {
		return k.LoginKey(ctx, login)
	}
	return login
}
