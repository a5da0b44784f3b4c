package builtin_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
)

// TestNamespacesAreStable pins the record namespaces and keys the
// directory writes: they are stored data, so a data directory written by
// an earlier release (when this was package directory) must find its
// records under the same names. Renaming a namespace fails here first.
func TestNamespacesAreStable(t *testing.T) {
	assert.Equal(t, []string{
		"tenant", "domain", "domainname", "user", "group", "alias",
		"resource", "addr", "index", "sendas", "external", "photo",
		"gal", "galref", "galtoken", "galinner", "meta", "accountdrop",
	}, builtin.Namespaces())

	ctx := context.Background()
	b, st := newFixture(t)
	u, err := b.CreateUser(ctx, directory.User{Address: "Ann@example.net", DisplayName: "Ann"}, "pw")
	require.NoError(t, err)
	_, err = b.CreateAlias(ctx, directory.Alias{Address: "info@example.com", Targets: []string{"ann@example.com"}})
	require.NoError(t, err)
	for _, k := range []struct{ ns, key string }{
		{"tenant", "acme"},
		{"domain", "example.com"},
		{"domainname", "example.net"},
		{"user", u.ID},
		{"addr", "ann@example.com"},
		{"index", "user/example.com/ann"},
		{"alias", "info@example.com"},
	} {
		_, err := st.GetRecord(ctx, k.ns, k.key)
		assert.NoError(t, err, "%s/%s", k.ns, k.key)
	}
}
