package builtin_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

func galNames(p directory.GALPage) []string {
	var out []string
	for _, e := range p.Entries {
		out = append(out, e.DisplayName)
	}
	return out
}

func TestGALSearch(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	mk := func(addr, name, given, sn string) directory.User {
		u, err := b.CreateUser(ctx, directory.User{Address: addr, DisplayName: name, GivenName: given, Surname: sn, Title: "T", Department: "D", Phone: "1"}, "pw")
		require.NoError(t, err)
		return u
	}
	anne := mk("anne-marie@example.com", "Anne-Marie Dupont", "Anne-Marie", "Dupont")
	mk("bert@example.org", "Bert Baker", "Bert", "Baker")
	mk("zed@example.com", "", "", "")
	mk("other@globex.test", "Anne Other", "Anne", "Other") // another tenant
	_, err := b.CreateGroup(ctx, directory.Group{Address: "sales@example.com", DisplayName: "Sales Team"})
	require.NoError(t, err)
	_, err = b.CreateResource(ctx, directory.Resource{Address: "room1@example.com", DisplayName: "Boardroom", Capacity: 12})
	require.NoError(t, err)

	all, err := b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme"})
	require.NoError(t, err)
	assert.Equal(t, []string{"Anne-Marie Dupont", "Bert Baker", "Boardroom", "Sales Team", ""}, galNames(all))
	assert.Empty(t, all.Next)
	assert.Equal(t, "zed@example.com", all.Entries[4].Address, "no display name: sorted by address")

	for q, want := range map[string][]string{
		"marie":           {"Anne-Marie Dupont"},
		"ANNE dup":        {"Anne-Marie Dupont"},
		"b":               {"Bert Baker", "Boardroom"},
		"bert@":           {"Bert Baker"},
		"bert@example.o":  {"Bert Baker"},
		"anne-marie@exam": {"Anne-Marie Dupont"},
		"sales":           {"Sales Team"},
		"nobody":          nil,
		"anne x":          nil,
	} {
		p, err := b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: q})
		require.NoError(t, err, q)
		assert.Equal(t, want, galNames(p), q)
	}
	p, err := b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Kinds: []directory.EntryKind{directory.KindResource}})
	require.NoError(t, err)
	require.Len(t, p.Entries, 1)
	assert.Equal(t, 12, p.Entries[0].Capacity)

	// Attributes an address book shows.
	p, err = b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "dupont"})
	require.NoError(t, err)
	e := p.Entries[0]
	assert.Equal(t, anne.ID, e.ID)
	assert.Equal(t, "Anne-Marie", e.GivenName)
	assert.Equal(t, "T", e.Title)
	assert.False(t, e.HasPhoto)
	require.NoError(t, b.SetPhoto(ctx, anne.ID, []byte("jpeg")))
	p, _ = b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "dupont"})
	assert.True(t, p.Entries[0].HasPhoto)

	// Updates, disabling and deletion keep the index in step.
	name := "Anna Durand"
	_, err = b.UpdateUser(ctx, anne.ID, builtin.UserUpdate{DisplayName: &name})
	require.NoError(t, err)
	p, _ = b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "dupont"})
	assert.Equal(t, []string{"Anna Durand"}, galNames(p), "surname still Dupont")
	p, _ = b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "durand"})
	assert.Equal(t, []string{"Anna Durand"}, galNames(p))
	require.NoError(t, b.SetDisabled(ctx, anne.ID, true))
	p, _ = b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "durand"})
	assert.Empty(t, p.Entries, "disabled users are hidden")
	require.NoError(t, b.SetDisabled(ctx, anne.ID, false))
	require.NoError(t, b.DeleteUser(ctx, anne.ID))
	p, _ = b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "durand"})
	assert.Empty(t, p.Entries)

	_, err = b.SearchGAL(ctx, directory.GALQuery{})
	assert.ErrorIs(t, err, directory.ErrInvalid)
}

func TestGALPaging(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	for i := range 25 {
		_, err := b.CreateUser(ctx, directory.User{Address: fmt.Sprintf("u%02d@example.com", i), DisplayName: fmt.Sprintf("User %02d", i)}, "")
		require.NoError(t, err)
	}
	for _, text := range []string{"", "user"} {
		var got []string
		q := directory.GALQuery{Tenant: "acme", Text: text, Limit: 10}
		pages := 0
		for {
			p, err := b.SearchGAL(ctx, q)
			require.NoError(t, err)
			got = append(got, galNames(p)...)
			pages++
			if p.Next == "" {
				break
			}
			q.After = p.Next
		}
		assert.Len(t, got, 25, text)
		assert.Equal(t, 3, pages, text)
		assert.Equal(t, "User 00", got[0])
		assert.Equal(t, "User 24", got[24])
	}
}

func TestReindexGAL(t *testing.T) {
	ctx := context.Background()
	b, st := newFixture(t)
	_, err := b.CreateUser(ctx, directory.User{Address: "x@example.com", DisplayName: "Xavier"}, "")
	require.NoError(t, err)
	// Simulate data from before the index: drop it.
	for _, ns := range []string{"gal", "galref", "galtoken"} {
		recs, err := st.ListRecords(ctx, ns, "", 1000)
		require.NoError(t, err)
		require.NoError(t, st.UpdateRecords(ctx, func(tx store.RecordTx) error {
			for _, r := range recs {
				if err := tx.Delete(ns, r.Key); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	p, err := b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "xav"})
	require.NoError(t, err)
	require.Empty(t, p.Entries)
	require.NoError(t, b.EnsureGAL(ctx))
	require.NoError(t, b.ReindexGAL(ctx), "idempotent")
	p, err = b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "xav"})
	require.NoError(t, err)
	assert.Equal(t, []string{"Xavier"}, galNames(p))
}

func ExampleDirectory_SearchGAL() {
	ctx := context.Background()
	dataDir, err := os.MkdirTemp("", "mailyard-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dataDir)
	st, err := sqlite.Open(ctx, dataDir, sqlite.Options{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	dir := builtin.New(st, builtin.Options{})
	dir.CreateTenant(ctx, directory.Tenant{ID: "acme"})
	dir.CreateDomain(ctx, directory.Domain{Name: "example.com", Tenant: "acme"})
	dir.CreateUser(ctx, directory.User{Address: "jane@example.com", DisplayName: "Jane Doe", Title: "CFO"}, "")
	dir.CreateUser(ctx, directory.User{Address: "john@example.com", DisplayName: "John Roe"}, "")
	dir.CreateGroup(ctx, directory.Group{Address: "finance@example.com", DisplayName: "Finance"})

	// What an address book client asks while the user types "j".
	page, _ := dir.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "j", Limit: 10})
	for _, e := range page.Entries {
		fmt.Println(e.DisplayName, e.Address, e.Title)
	}
	// Output:
	// Jane Doe jane@example.com CFO
	// John Roe john@example.com
}

// TestGALEntryByID: one entry by kind and ID is the one SearchGAL lists;
// a disabled or deleted user has none.
func TestGALEntryByID(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	u, err := b.CreateUser(ctx, directory.User{Address: "anne@example.com", DisplayName: "Anne", Title: "Boss"}, "pw")
	require.NoError(t, err)
	room, err := b.CreateResource(ctx, directory.Resource{Address: "room1@example.com", DisplayName: "Boardroom", Capacity: 12})
	require.NoError(t, err)
	all, err := b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme"})
	require.NoError(t, err)
	require.Len(t, all.Entries, 2)
	for _, want := range all.Entries {
		got, err := b.GALEntry(ctx, want.Kind, want.ID)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err = b.GALEntry(ctx, directory.KindGroup, room.ID)
	assert.ErrorIs(t, err, directory.ErrNotFound, "a resource's ID is no group")
	_, err = b.GALEntry(ctx, directory.KindAlias, u.ID)
	assert.ErrorIs(t, err, directory.ErrInvalid)
	_, err = b.GALEntry(ctx, directory.KindUser, "../x")
	assert.ErrorIs(t, err, directory.ErrInvalid)
	require.NoError(t, b.SetDisabled(ctx, u.ID, true))
	_, err = b.GALEntry(ctx, directory.KindUser, u.ID)
	assert.ErrorIs(t, err, directory.ErrNotFound, "a disabled user is not in the GAL")
	require.NoError(t, b.SetDisabled(ctx, u.ID, false))
	_, err = b.GALEntry(ctx, directory.KindUser, u.ID)
	require.NoError(t, err)
	require.NoError(t, b.DeleteUser(ctx, u.ID))
	_, err = b.GALEntry(ctx, directory.KindUser, u.ID)
	assert.ErrorIs(t, err, directory.ErrNotFound)
}
