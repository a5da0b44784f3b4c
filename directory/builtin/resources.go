package builtin

import (
	"context"
	"fmt"
	"slices"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// SetResourcePolicy changes how invitations to a resource are answered:
// policy is directory.ResourcePolicyAuto (or empty, the same) or
// directory.ResourcePolicyManual, which needs at least one approver (user
// IDs). Approvers are kept with either policy. It returns the updated
// resource; directory.ErrInvalid for a bad policy, ErrNotFound for an
// unknown ID, and then nothing changes.
func (b *Directory) SetResourcePolicy(ctx context.Context, id, policy string, approvers []string) (directory.Resource, error) {
	switch {
	case policy != "" && policy != directory.ResourcePolicyAuto && policy != directory.ResourcePolicyManual:
		return directory.Resource{}, fmt.Errorf("%w: resource policy %q (want %q or %q)", directory.ErrInvalid, policy, directory.ResourcePolicyAuto, directory.ResourcePolicyManual)
	case policy == directory.ResourcePolicyManual && len(approvers) == 0:
		return directory.Resource{}, fmt.Errorf("%w: a resource with the manual policy needs approvers", directory.ErrInvalid)
	}
	var out directory.Resource
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		var res directory.Resource
		version, err := getJSON(txReader{tx}, nsResource, id, &res)
		if err != nil {
			return err
		}
		res.Policy, res.Approvers = policy, slices.Clone(approvers)
		out = res
		return putJSON(tx, nsResource, id, res, version)
	})
	if err != nil {
		return directory.Resource{}, fmt.Errorf("directory: resource %q policy: %w", id, err)
	}
	return out, nil
}
