package builtin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// normalizeTarget validates an alias target or group member. Addresses in
// hosted domains are mapped to their canonical form and must resolve (with
// sub-addressing); other addresses keep the case of their local part,
// which only the destination host may interpret (RFC 5321 §2.4).
func normalizeTarget(r reader, target string) (string, error) {
	m, err := mapAddress(r, target)
	if err != nil {
		return "", err
	}
	if m.domain == "" {
		return m.parsed.String(), nil
	}
	if _, _, err := resolveRef(r, m.canonical); err != nil {
		if errors.Is(err, directory.ErrNotFound) {
			return "", fmt.Errorf("%w: local address %q does not exist", directory.ErrNotFound, target)
		}
		return "", err
	}
	return m.canonical, nil
}

// sameTarget compares targets: local ones are canonical, and external ones
// are compared without case, since storing both spellings is a mistake.
func sameTarget(a, b string) bool { return strings.EqualFold(a, b) }

// pointsAt reports whether target (canonical) names address itself,
// directly or as a sub-address.
func pointsAt(target, address string) bool {
	if target == address {
		return true
	}
	at := strings.LastIndexByte(target, '@')
	base, _, ok := directory.SplitSubaddress(target[:at])
	return ok && base+target[at:] == address
}

// addTargets normalises targets and appends the new ones to list, refusing
// self-references and duplicates.
func addTargets(r reader, self string, list []string, targets []string) ([]string, error) {
	for _, t := range targets {
		n, err := normalizeTarget(r, t)
		if err != nil {
			return nil, err
		}
		if pointsAt(n, self) {
			return nil, fmt.Errorf("%w: %q cannot point at itself", directory.ErrInvalid, self)
		}
		if slices.ContainsFunc(list, func(s string) bool { return sameTarget(s, n) }) {
			return nil, fmt.Errorf("%w: %q is already listed", directory.ErrExists, n)
		}
		list = append(list, n)
	}
	return list, nil
}

// removeTarget removes target from list; ErrNotFound if absent.
func removeTarget(r reader, list []string, target string) ([]string, error) {
	a, err := directory.ParseAddress(target)
	if err != nil {
		return nil, err
	}
	key := a.String()
	if m, err := mapAddress(r, target); err != nil {
		return nil, err
	} else if m.domain != "" {
		key = m.canonical
	}
	i := slices.IndexFunc(list, func(s string) bool { return sameTarget(s, key) })
	if i < 0 {
		return nil, fmt.Errorf("%w: %q is not listed", directory.ErrNotFound, target)
	}
	return slices.Delete(list, i, i+1), nil
}

// CreateAlias creates an alias: a.Address in a hosted domain forwarding
// to a.Targets, local addresses (which must exist) or external ones; the
// Tenant comes from the domain. ErrExists if the address is in use.
func (b *Directory) CreateAlias(ctx context.Context, a directory.Alias) (directory.Alias, error) {
	address, targets := a.Address, a.Targets
	if len(targets) == 0 {
		return directory.Alias{}, fmt.Errorf("%w: an alias needs at least one target", directory.ErrInvalid)
	}
	var out directory.Alias
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		r := txReader{tx}
		addr, tenant, err := tenantAddress(r, address, "")
		if err != nil {
			return err
		}
		ts, err := addTargets(r, addr, nil, targets)
		if err != nil {
			return err
		}
		out = directory.Alias{Address: addr, Tenant: tenant, Targets: ts}
		if err := claim(tx, addr, addrRef{refAlias, addr}, refAlias); err != nil {
			return err
		}
		return putJSON(tx, nsAlias, addr, out, 0)
	})
	if err != nil {
		return directory.Alias{}, fmt.Errorf("directory: create alias %q: %w", address, err)
	}
	return out, nil
}

// Alias returns an alias by its address (main or alternative domain name).
func (b *Directory) Alias(ctx context.Context, address string) (directory.Alias, error) {
	r := storeReader{ctx, b.records}
	m, err := mapAddress(r, address)
	if err != nil {
		return directory.Alias{}, err
	}
	var a directory.Alias
	if m.domain == "" {
		return a, fmt.Errorf("%w: alias %q", directory.ErrNotFound, address)
	}
	_, err = getJSON(r, nsAlias, m.canonical, &a)
	return a, err
}

// updateAlias applies fn to an alias in one transaction.
func (b *Directory) updateAlias(ctx context.Context, address string, fn func(reader, *directory.Alias) error) (directory.Alias, error) {
	var out directory.Alias
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		r := txReader{tx}
		m, err := mapAddress(r, address)
		if err != nil {
			return err
		}
		if m.domain == "" {
			return fmt.Errorf("%w: alias %q", directory.ErrNotFound, address)
		}
		var a directory.Alias
		v, err := getJSON(r, nsAlias, m.canonical, &a)
		if err != nil {
			return err
		}
		if err := fn(r, &a); err != nil {
			return err
		}
		out = a
		return putJSON(tx, nsAlias, a.Address, a, v)
	})
	if err != nil {
		return directory.Alias{}, fmt.Errorf("directory: update alias %q: %w", address, err)
	}
	return out, nil
}

// AddAliasTarget adds a target to an alias.
func (b *Directory) AddAliasTarget(ctx context.Context, address, target string) (directory.Alias, error) {
	return b.updateAlias(ctx, address, func(r reader, a *directory.Alias) error {
		ts, err := addTargets(r, a.Address, a.Targets, []string{target})
		a.Targets = ts
		return err
	})
}

// RemoveAliasTarget removes a target from an alias. Removing the last one
// is ErrInvalid: delete the alias instead.
func (b *Directory) RemoveAliasTarget(ctx context.Context, address, target string) (directory.Alias, error) {
	return b.updateAlias(ctx, address, func(r reader, a *directory.Alias) error {
		ts, err := removeTarget(r, a.Targets, target)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			return fmt.Errorf("%w: %q is the alias's last target; delete the alias instead", directory.ErrInvalid, target)
		}
		a.Targets = ts
		return nil
	})
}

// DeleteAlias deletes an alias and drops its address from group members
// and other aliases' targets.
func (b *Directory) DeleteAlias(ctx context.Context, address string) error {
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		r := txReader{tx}
		m, err := mapAddress(r, address)
		if err != nil {
			return err
		}
		if m.domain == "" {
			return fmt.Errorf("%w: alias %q", directory.ErrNotFound, address)
		}
		if _, err := getJSON(r, nsAlias, m.canonical, &directory.Alias{}); err != nil {
			return err
		}
		if err := deleteRecord(tx, nsAlias, m.canonical); err != nil {
			return err
		}
		if err := release(tx, m.canonical, refAlias); err != nil {
			return err
		}
		return b.dropReferences(ctx, tx, []string{m.canonical}, "")
	})
	if err != nil {
		return fmt.Errorf("directory: delete alias %q: %w", address, err)
	}
	return nil
}

// ListAliases returns a page of aliases ordered by address; the paging
// arguments are those of [Directory.ListUsers].
func (b *Directory) ListAliases(ctx context.Context, domain, after string, limit int) ([]directory.Alias, error) {
	return listByAddress[directory.Alias](ctx, b, refAlias, nsAlias, domain, after, limit)
}

// CreateGroup creates a group (distribution list) with a new random ID
// from spec's Address (in a hosted domain, which decides the tenant),
// Aliases (in domains of the same tenant), DisplayName, Members (local
// ones must exist; external ones are kept as given) and SendAs (IDs of
// users of the same tenant). spec's ID, Tenant and Created are ignored.
func (b *Directory) CreateGroup(ctx context.Context, spec directory.Group) (directory.Group, error) {
	id, err := newID()
	if err != nil {
		return directory.Group{}, err
	}
	var out directory.Group
	err = b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		r := txReader{tx}
		addr, tenant, err := tenantAddress(r, spec.Address, "")
		if err != nil {
			return err
		}
		g := directory.Group{ID: id, Tenant: tenant, Address: addr, DisplayName: spec.DisplayName, Created: b.now().UTC()}
		if err := claim(tx, addr, addrRef{refGroup, id}, refGroup); err != nil {
			return err
		}
		for _, a := range spec.Aliases {
			alias, _, err := tenantAddress(r, a, tenant)
			if err != nil {
				return err
			}
			if err := claim(tx, alias, addrRef{refGroup, id}, refSecondary); err != nil {
				return err
			}
			g.Aliases = append(g.Aliases, alias)
		}
		slices.Sort(g.Aliases)
		for _, m := range spec.Members {
			n, err := normalizeTarget(r, m)
			if err != nil {
				return err
			}
			if pointsAt(n, addr) || slices.ContainsFunc(g.Aliases, func(a string) bool { return pointsAt(n, a) }) {
				return fmt.Errorf("%w: group %q cannot contain itself", directory.ErrInvalid, addr)
			}
			if !slices.ContainsFunc(g.Members, func(s string) bool { return sameTarget(s, n) }) {
				g.Members = append(g.Members, n)
			}
		}
		if err := setSendAs(tx, &g, spec.SendAs); err != nil {
			return err
		}
		g.Source, g.ExternalID, g.ExternalDN = spec.Source, spec.ExternalID, spec.ExternalDN
		if err := claimExternal(tx, refGroup, g.Source, g.ExternalID, id); err != nil {
			return err
		}
		if err := galPut(tx, refGroup, id, galFromGroup(g)); err != nil {
			return err
		}
		out = g
		return putJSON(tx, nsGroup, id, g, 0)
	})
	if err != nil {
		return directory.Group{}, fmt.Errorf("directory: create group %q: %w", spec.Address, err)
	}
	return out, nil
}

// setSendAs replaces g.SendAs and its reverse index. The users must exist
// and belong to the group's tenant.
func setSendAs(tx store.RecordTx, g *directory.Group, userIDs []string) error {
	r := txReader{tx}
	for _, uid := range g.SendAs {
		if err := deleteRecord(tx, nsSendAs, uid+"/"+g.ID); err != nil {
			return err
		}
	}
	ids := slices.Clone(userIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, uid := range ids {
		var u directory.User
		if _, err := getJSON(r, nsUser, uid, &u); err != nil {
			return fmt.Errorf("send-as user: %w", err)
		}
		if u.Tenant != g.Tenant {
			return fmt.Errorf("%w: user %q belongs to another tenant", directory.ErrInvalid, uid)
		}
		if err := putRaw(tx, nsSendAs, uid+"/"+g.ID, []byte(g.ID), -1); err != nil {
			return err
		}
	}
	g.SendAs = ids
	return nil
}

// Group returns a group by ID.
func (b *Directory) Group(ctx context.Context, id string) (directory.Group, error) {
	var g directory.Group
	_, err := getJSON(storeReader{ctx, b.records}, nsGroup, id, &g)
	return g, err
}

func (b *Directory) updateGroup(ctx context.Context, id string, fn func(store.RecordTx, *directory.Group) error) (directory.Group, error) {
	out, err := updateJSON(ctx, b.records, nsGroup, id, func(tx store.RecordTx, g *directory.Group) error {
		if err := fn(tx, g); err != nil {
			return err
		}
		return galPut(tx, refGroup, id, galFromGroup(*g))
	})
	if err != nil {
		return directory.Group{}, fmt.Errorf("directory: update group %q: %w", id, err)
	}
	return out, nil
}

// AddGroupMember adds a member address (local ones must exist).
// ErrExists if it is already a member.
func (b *Directory) AddGroupMember(ctx context.Context, id, member string) (directory.Group, error) {
	return b.updateGroup(ctx, id, func(tx store.RecordTx, g *directory.Group) error {
		r := txReader{tx}
		ms, err := addTargets(r, g.Address, g.Members, []string{member})
		if err != nil {
			return err
		}
		for _, a := range g.Aliases {
			if pointsAt(ms[len(ms)-1], a) {
				return fmt.Errorf("%w: group %q cannot contain itself", directory.ErrInvalid, g.Address)
			}
		}
		g.Members = ms
		return nil
	})
}

// RemoveGroupMember removes a member. ErrNotFound if it is not one.
func (b *Directory) RemoveGroupMember(ctx context.Context, id, member string) (directory.Group, error) {
	return b.updateGroup(ctx, id, func(tx store.RecordTx, g *directory.Group) error {
		ms, err := removeTarget(txReader{tx}, g.Members, member)
		g.Members = ms
		return err
	})
}

// SetGroupSendAs replaces the list of users that may send as the group.
func (b *Directory) SetGroupSendAs(ctx context.Context, id string, userIDs []string) (directory.Group, error) {
	return b.updateGroup(ctx, id, func(tx store.RecordTx, g *directory.Group) error {
		return setSendAs(tx, g, userIDs)
	})
}

// ListGroups returns a page of groups ordered by address; the paging
// arguments are those of [Directory.ListUsers].
func (b *Directory) ListGroups(ctx context.Context, domain, after string, limit int) ([]directory.Group, error) {
	return listByAddress[directory.Group](ctx, b, refGroup, nsGroup, domain, after, limit)
}

// DeleteGroup deletes a group, its addresses and SendAs rights, and drops
// its addresses from other groups' members and aliases' targets.
func (b *Directory) DeleteGroup(ctx context.Context, id string) error {
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		var g directory.Group
		if _, err := getJSON(txReader{tx}, nsGroup, id, &g); err != nil {
			return err
		}
		if err := setSendAs(tx, &g, nil); err != nil {
			return err
		}
		if err := release(tx, g.Address, refGroup); err != nil {
			return err
		}
		for _, a := range g.Aliases {
			if err := release(tx, a, refSecondary); err != nil {
				return err
			}
		}
		if err := deleteRecord(tx, nsGroup, id); err != nil {
			return err
		}
		if err := releaseExternal(tx, refGroup, g.Source, g.ExternalID); err != nil {
			return err
		}
		if err := galPut(tx, refGroup, id, nil); err != nil {
			return err
		}
		return b.dropReferences(ctx, tx, append([]string{g.Address}, g.Aliases...), "")
	})
	if err != nil {
		return fmt.Errorf("directory: delete group %q: %w", id, err)
	}
	return nil
}

// CreateResource creates a resource (room or equipment) with a new random
// ID; its Tenant comes from its address's domain. Resources receive mail
// (booking requests), so with Options.Accounts set a store account
// with the resource's ID is created first. An empty Kind means room.
func (b *Directory) CreateResource(ctx context.Context, res directory.Resource) (directory.Resource, error) {
	if res.Kind == "" {
		res.Kind = directory.ResourceRoom
	}
	if res.Kind != directory.ResourceRoom && res.Kind != directory.ResourceEquipment {
		return directory.Resource{}, fmt.Errorf("%w: resource kind %q (want %q or %q)", directory.ErrInvalid, res.Kind, directory.ResourceRoom, directory.ResourceEquipment)
	}
	if res.Capacity < 0 {
		return directory.Resource{}, fmt.Errorf("%w: negative capacity", directory.ErrInvalid)
	}
	switch {
	case res.Policy != "" && res.Policy != directory.ResourcePolicyAuto && res.Policy != directory.ResourcePolicyManual:
		return directory.Resource{}, fmt.Errorf("%w: resource policy %q (want %q or %q)", directory.ErrInvalid, res.Policy, directory.ResourcePolicyAuto, directory.ResourcePolicyManual)
	case res.Policy == directory.ResourcePolicyManual && len(res.Approvers) == 0:
		return directory.Resource{}, fmt.Errorf("%w: a resource with the manual policy needs approvers", directory.ErrInvalid)
	}
	if _, err := directory.ParseAddress(res.Address); err != nil {
		return directory.Resource{}, err
	}
	id, err := newID()
	if err != nil {
		return directory.Resource{}, err
	}
	res.ID = id
	var out directory.Resource
	err = b.withAccount(ctx, id, store.Quota{}, func() error {
		return b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
			addr, tenant, err := tenantAddress(txReader{tx}, res.Address, "")
			if err != nil {
				return err
			}
			nr := res
			nr.Address, nr.Tenant = addr, tenant
			if err := claim(tx, addr, addrRef{refResource, id}, refResource); err != nil {
				return err
			}
			if err := galPut(tx, refResource, id, galFromResource(nr)); err != nil {
				return err
			}
			out = nr
			return putJSON(tx, nsResource, id, nr, 0)
		})
	})
	if err != nil {
		return directory.Resource{}, fmt.Errorf("directory: create resource %q: %w", res.Address, err)
	}
	return out, nil
}

// Resource returns a resource by ID.
func (b *Directory) Resource(ctx context.Context, id string) (directory.Resource, error) {
	var r directory.Resource
	_, err := getJSON(storeReader{ctx, b.records}, nsResource, id, &r)
	return r, err
}

// ListResources returns a page of resources ordered by address; the
// paging arguments are those of [Directory.ListUsers].
func (b *Directory) ListResources(ctx context.Context, domain, after string, limit int) ([]directory.Resource, error) {
	return listByAddress[directory.Resource](ctx, b, refResource, nsResource, domain, after, limit)
}

// DeleteResource deletes a resource and drops its address from group
// members and alias targets; then, with Options.Accounts set, its
// store account.
func (b *Directory) DeleteResource(ctx context.Context, id string) error {
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		var res directory.Resource
		if _, err := getJSON(txReader{tx}, nsResource, id, &res); err != nil {
			return err
		}
		if err := release(tx, res.Address, refResource); err != nil {
			return err
		}
		if err := b.markDrop(tx, refResource, id, res.Address); err != nil {
			return err
		}
		if err := deleteRecord(tx, nsResource, id); err != nil {
			return err
		}
		if err := galPut(tx, refResource, id, nil); err != nil {
			return err
		}
		return b.dropReferences(ctx, tx, []string{res.Address}, "")
	})
	if err != nil {
		return fmt.Errorf("directory: delete resource %q: %w", id, err)
	}
	return b.dropAccount(ctx, refResource, id)
}
