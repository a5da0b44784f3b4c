package builtin_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
)

func TestSetResourcePolicy(t *testing.T) {
	ctx := context.Background()
	b, _ := newFixture(t)
	r, err := b.CreateResource(ctx, directory.Resource{Address: "room@example.com", Capacity: 4})
	require.NoError(t, err)

	_, err = b.SetResourcePolicy(ctx, r.ID, directory.ResourcePolicyManual, nil)
	assert.ErrorIs(t, err, directory.ErrInvalid, "manual needs approvers")
	_, err = b.SetResourcePolicy(ctx, r.ID, "sometimes", []string{"u1"})
	assert.ErrorIs(t, err, directory.ErrInvalid)
	_, err = b.SetResourcePolicy(ctx, "nope", directory.ResourcePolicyAuto, nil)
	assert.ErrorIs(t, err, directory.ErrNotFound)
	got, err := b.Resource(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, r, got, "refused changes change nothing")

	up, err := b.SetResourcePolicy(ctx, r.ID, directory.ResourcePolicyManual, []string{"u1", "u2"})
	require.NoError(t, err)
	assert.Equal(t, directory.ResourcePolicyManual, up.Policy)
	got, err = b.Resource(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, up, got)
	assert.Equal(t, 4, got.Capacity, "other fields are kept")
	e, err := b.LookupAddress(ctx, "room@example.com")
	require.NoError(t, err)
	require.NotNil(t, e.Resource)
	assert.Equal(t, []string{"u1", "u2"}, e.Resource.Approvers, "lookups see the new policy")

	up, err = b.SetResourcePolicy(ctx, r.ID, directory.ResourcePolicyAuto, nil)
	require.NoError(t, err)
	assert.Equal(t, directory.ResourcePolicyAuto, up.Policy)
	assert.Empty(t, up.Approvers)
}
