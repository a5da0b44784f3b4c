package builtin_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store"
)

// TestGALSearchContains: a GALQuery with Contains matches each word
// anywhere inside a word of the names or an address (RFC 3744 §9.4's
// substring match), through the index, in display-name order and pages;
// without it the same text matches only from the start of a word.
// Renames and deletion keep the inner index in step, and a word inside
// too many entries is refused as too broad (ErrInvalid).
func TestGALSearchContains(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	anne, err := b.CreateUser(ctx, directory.User{Address: "anne-marie@example.com", DisplayName: "Anne-Marie Dupont", Aliases: []string{"amd@example.com"}}, "pw")
	require.NoError(t, err)
	_, err = b.CreateUser(ctx, directory.User{Address: "bert@example.org", DisplayName: "Bert Baker"}, "pw")
	require.NoError(t, err)
	_, err = b.CreateUser(ctx, directory.User{Address: "other@globex.test", DisplayName: "Dupontel Other"}, "pw") // another tenant
	require.NoError(t, err)
	_, err = b.CreateResource(ctx, directory.Resource{Address: "room1@example.com", DisplayName: "Boardroom"})
	require.NoError(t, err)

	// An address-book contact an LDAP sync wrote (directory/ldap keeps
	// its entries in this index through the Sourced API).
	_, err = b.UpsertSourcedContact(ctx, "ldap:corp", "c1", directory.GALEntry{Tenant: "acme", Address: "zoe@partner.test", DisplayName: "Zoë Contractor"})
	require.NoError(t, err)
	search := func(text string, contains bool) []string {
		t.Helper()
		p, err := b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: text, Contains: contains})
		require.NoError(t, err, text)
		return galNames(p)
	}
	for q, want := range map[string][]string{
		"pont":          {"Anne-Marie Dupont"},
		"ARIE upo":      {"Anne-Marie Dupont"},
		"oom":           {"Boardroom"},
		"ardroo":        {"Boardroom"},
		"ake":           {"Bert Baker"},
		"e-marie@exa":   {"Anne-Marie Dupont"},
		"md@":           {"Anne-Marie Dupont"}, // an alias
		"@example.org":  {"Bert Baker"},
		"r":             {"Anne-Marie Dupont", "Bert Baker", "Boardroom", "Zoë Contractor"},
		"dup":           {"Anne-Marie Dupont"}, // the start of a word still matches
		"ntract":        {"Zoë Contractor"},
		"OË":            {"Zoë Contractor"},
		"pont zz":       nil,
		"telephone":     nil,
		"upontel other": nil, // another tenant's
	} {
		assert.Equal(t, want, search(q, true), "contains %q", q)
	}
	assert.Empty(t, search("pont", false), "without Contains a word matches from its start")
	assert.Empty(t, search("oom", false))

	name := "Anna Durand"
	_, err = b.UpdateUser(ctx, anne.ID, builtin.UserUpdate{DisplayName: &name})
	require.NoError(t, err)
	assert.Equal(t, []string{"Anna Durand"}, search("ura", true))
	assert.Equal(t, []string{"Anna Durand"}, search("e-marie@", true), "the address stays")
	assert.Empty(t, search("upont", true), "the old name is gone from the inner index")
	require.NoError(t, b.DeleteUser(ctx, anne.ID))
	assert.Empty(t, search("ura", true))

	// Paging through a Contains query.
	for i := range 7 {
		_, err := b.CreateResource(ctx, directory.Resource{Address: fmt.Sprintf("r%d@example.com", i), DisplayName: fmt.Sprintf("Meeting Room %d", i)})
		require.NoError(t, err)
	}
	var got []string
	q := directory.GALQuery{Tenant: "acme", Text: "eting", Contains: true, Limit: 3}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		p, err := b.SearchGAL(ctx, q)
		require.NoError(t, err)
		got = append(got, galNames(p)...)
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	assert.Len(t, got, 7)
	assert.Equal(t, "Meeting Room 0", got[0])
	assert.Equal(t, "Meeting Room 6", got[6])
}

// TestReindexGALInner: EnsureGAL over data indexed before the inner
// index existed (gal-index-v1) builds it, so a Contains query finds
// entries written then.
func TestReindexGALInner(t *testing.T) {
	ctx := context.Background()
	b, st := newFixture(t)
	_, err := b.CreateUser(ctx, directory.User{Address: "x@example.com", DisplayName: "Xavier"}, "")
	require.NoError(t, err)
	recs, err := st.ListRecords(ctx, "galinner", "", 1000)
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	require.NoError(t, st.UpdateRecords(ctx, func(tx store.RecordTx) error {
		for _, r := range recs {
			if err := tx.Delete("galinner", r.Key); err != nil {
				return err
			}
		}
		for _, m := range []string{"gal-index-v1", "gal-index-v2", "gal-index-v3"} {
			if err := tx.Delete("meta", m); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return tx.Put("meta", "gal-index-v1", []byte("1"), -1)
	}))
	p, err := b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "vie", Contains: true})
	require.NoError(t, err)
	require.Empty(t, p.Entries)
	require.NoError(t, b.EnsureGAL(ctx))
	p, err = b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "vie", Contains: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"Xavier"}, galNames(p))
}
