package builtin_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/memstore"
)

// countingRecords counts the record reads of a directory.
type countingRecords struct {
	*memstore.Store
	gets atomic.Int64
}

func (c *countingRecords) GetRecord(ctx context.Context, ns, key string) (store.Record, error) {
	c.gets.Add(1)
	return c.Store.GetRecord(ctx, ns, key)
}

// TestLookupAddresses: LookupAddresses answers each address as
// LookupAddress does (users, aliases, groups, resources, sub-addresses,
// alternative domain names, case, unknown, unhosted and malformed
// addresses, an address twice), and reads a record shared by several
// addresses once: forty users of one domain cost fewer reads than one
// by one.
func TestLookupAddresses(t *testing.T) {
	ctx := context.Background()
	st := &countingRecords{Store: openStore(t)}
	b := builtin.New(st, builtin.Options{Accounts: st.Store, Now: func() time.Time { return fixedNow }})
	_, err := b.CreateTenant(ctx, directory.Tenant{ID: "acme"})
	require.NoError(t, err)
	_, err = b.CreateDomain(ctx, directory.Domain{Name: "example.com", Tenant: "acme", Aliases: []string{"example.net"}})
	require.NoError(t, err)
	u, err := b.CreateUser(ctx, directory.User{Address: "ann@example.com", Aliases: []string{"a@example.com"}}, "pw")
	require.NoError(t, err)
	_, err = b.CreateUser(ctx, directory.User{Address: "off@example.com", Disabled: true}, "pw")
	require.NoError(t, err)
	_, err = b.CreateResource(ctx, directory.Resource{Address: "room@example.com", Kind: directory.ResourceRoom})
	require.NoError(t, err)
	_, err = b.CreateGroup(ctx, directory.Group{Address: "team@example.com", Members: []string{u.Address}})
	require.NoError(t, err)
	_, err = b.CreateAlias(ctx, directory.Alias{Address: "info@example.com", Targets: []string{"ann@example.com"}})
	require.NoError(t, err)
	addrs := []string{"ann@example.com", "ANN@Example.NET", "a@example.com", "ann+tag@example.com", "off@example.com",
		"room@example.com", "team@example.com", "info@example.net", "nobody@example.com", "x@elsewhere.org", "not an address", "", "ann@example.com"}
	var many []string
	for i := range 40 {
		addr := fmt.Sprintf("u%02d@example.com", i)
		// No password: lookups do not read it, and forty argon2id
		// hashes were most of this test's time under -race.
		_, err := b.CreateUser(ctx, directory.User{Address: addr}, "")
		require.NoError(t, err)
		many = append(many, addr)
	}
	addrs = append(addrs, many...)

	st.gets.Store(0)
	entries, errs := b.LookupAddresses(ctx, addrs)
	batched := st.gets.Load()
	require.Len(t, entries, len(addrs))
	require.Len(t, errs, len(addrs))
	st.gets.Store(0)
	for i, addr := range addrs {
		e, err := b.LookupAddress(ctx, addr)
		assert.Equal(t, e, entries[i], "entry of %q", addr)
		if err == nil {
			assert.NoError(t, errs[i], "error of %q", addr)
			continue
		}
		for _, sentinel := range []error{directory.ErrNotFound, directory.ErrInvalid} {
			assert.Equal(t, errors.Is(err, sentinel), errors.Is(errs[i], sentinel), "error of %q: %v, one by one %v", addr, errs[i], err)
		}
	}
	oneByOne := st.gets.Load()
	assert.Less(t, batched, oneByOne*3/4, "record reads: %d batched, %d one by one", batched, oneByOne)
	t.Logf("record reads for %d addresses: %d batched, %d one by one", len(addrs), batched, oneByOne)
}
