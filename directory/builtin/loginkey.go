package builtin

import (
	"context"

	"github.com/mailyard/mailyard/directory"
)

var _ directory.LoginKeyer = (*Directory)(nil)

// LoginKey implements LoginKeyer: a login Authenticate would accept for a
// user (primary address or alias, in any case, under the main or an
// alternative domain name) maps to the user's primary address.
func (b *Directory) LoginKey(ctx context.Context, login string) string {
	u, _, err := b.loginUser(storeReader{ctx, b.records}, login)
	if err != nil || u.Address == "" {
		return login
	}
	return u.Address
}
