package builtin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// TestGALSearchCaseFolding: names are indexed and queries folded with
// full case folding, so "STRASSE" finds "Straße", a final sigma is a
// sigma, and the Turkish İ and ı are found by i and I, word-prefix and
// contains queries alike. (Accents still count: "ISIK" is not "IŞIK".)
func TestGALSearchCaseFolding(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	for _, u := range []directory.User{
		{Address: "hans@example.com", DisplayName: "Hans Straße"},
		{Address: "iy@example.com", DisplayName: "Işık Yılmaz"},
		{Address: "ist@example.com", DisplayName: "İstanbul Office"},
		{Address: "sis@example.com", DisplayName: "Σίσυφος Παπαδόπουλος"},
		{Address: "ada@example.com", DisplayName: "Ada Lovelace"},
	} {
		_, err := b.CreateUser(ctx, u, "pw")
		require.NoError(t, err)
	}
	for q, want := range map[string]string{
		"STRASSE": "Hans Straße", "strasse": "Hans Straße", "Straße": "Hans Straße", "STRAẞE": "Hans Straße",
		"IŞIK": "Işık Yılmaz", "işik": "Işık Yılmaz", "YILMAZ": "Işık Yılmaz", "yilmaz": "Işık Yılmaz",
		"istanbul": "İstanbul Office", "İSTANBUL": "İstanbul Office", "ISTANBUL": "İstanbul Office",
		"ΣΊΣΥΦΟΣ": "Σίσυφος Παπαδόπουλος", "σίσυφοσ": "Σίσυφος Παπαδόπουλος", "ΠΑΠΑΔΌΠΟΥΛΟΣ": "Σίσυφος Παπαδόπουλος",
		"LOVELACE": "Ada Lovelace",
	} {
		p, err := b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: q})
		require.NoError(t, err)
		assert.Equal(t, []string{want}, galNames(p), "query %q", q)
	}
	for q, want := range map[string]string{"RASSE": "Hans Straße", "ILMAZ": "Işık Yılmaz", "ΦΟΣ": "Σίσυφος Παπαδόπουλος"} {
		p, err := b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: q, Contains: true})
		require.NoError(t, err)
		assert.Equal(t, []string{want}, galNames(p), "contains %q", q)
	}
}

// TestEnsureGALRefolds: an index written under the lower-casing of
// gal-index-v2 (simulated by its token for "straße") is dropped and
// rebuilt by EnsureGAL, leaving no record of the old form.
func TestEnsureGALRefolds(t *testing.T) {
	ctx := context.Background()
	b, st := newFixture(t)
	_, err := b.CreateUser(ctx, directory.User{Address: "hans@example.com", DisplayName: "Hans Straße"}, "pw")
	require.NoError(t, err)
	refs, err := st.ListRecords(ctx, "galref", "", 10)
	require.NoError(t, err)
	require.Len(t, refs, 1)
	key := string(refs[0].Value)
	require.NoError(t, st.UpdateRecords(ctx, func(tx store.RecordTx) error {
		if err := tx.Put("galtoken", "acme/straße\x1f"+key, []byte(key), -1); err != nil {
			return err
		}
		if err := tx.Delete("meta", "gal-index-v3"); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return tx.Put("meta", "gal-index-v2", []byte("1"), -1)
	}))
	require.NoError(t, b.EnsureGAL(ctx))
	recs, err := st.ListRecords(ctx, "galtoken", "", 1000)
	require.NoError(t, err)
	var toks []string
	for _, r := range recs {
		tok, _, _ := strings.Cut(strings.TrimPrefix(r.Key, "acme/"), "\x1f")
		toks = append(toks, tok)
	}
	assert.NotContains(t, toks, "straße")
	assert.Contains(t, toks, "strasse")
	p, err := b.SearchGAL(ctx, directory.GALQuery{Tenant: "acme", Text: "STRASSE"})
	require.NoError(t, err)
	assert.Equal(t, []string{"Hans Straße"}, galNames(p))
}
