package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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
		if errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("%w: local address %q does not exist", ErrNotFound, target)
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
	base, _, ok := SplitSubaddress(target[:at])
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
			return nil, fmt.Errorf("%w: %q cannot point at itself", ErrInvalid, self)
		}
		if slices.ContainsFunc(list, func(s string) bool { return sameTarget(s, n) }) {
			return nil, fmt.Errorf("%w: %q is already listed", ErrExists, n)
		}
		list = append(list, n)
	}
	return list, nil
}

// removeTarget removes target from list; ErrNotFound if absent.
func removeTarget(r reader, list []string, target string) ([]string, error) {
	a, err := ParseAddress(target)
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
		return nil, fmt.Errorf("%w: %q is not listed", ErrNotFound, target)
	}
	return slices.Delete(list, i, i+1), nil
}

// CreateAlias creates an alias: a.Address in a hosted domain forwarding
// to a.Targets, local addresses (which must exist) or external ones; the
// Tenant comes from the domain. ErrExists if the address is in use.
func (b *Builtin) CreateAlias(ctx context.Context, a Alias) (Alias, error) {
	address, targets := a.Address, a.Targets
	if len(targets) == 0 {
		return Alias{}, fmt.Errorf("%w: an alias needs at least one target", ErrInvalid)
	}
	var out Alias
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
		out = Alias{Address: addr, Tenant: tenant, Targets: ts}
		if err := claim(tx, addr, addrRef{refAlias, addr}, refAlias); err != nil {
			return err
		}
		return putJSON(tx, nsAlias, addr, out, 0)
	})
	if err != nil {
		return Alias{}, fmt.Errorf("directory: create alias %q: %w", address, err)
	}
	return out, nil
}

// Alias returns an alias by its address (main or alternative domain name).
func (b *Builtin) Alias(ctx context.Context, address string) (Alias, error) {
	r := storeReader{ctx, b.records}
	m, err := mapAddress(r, address)
	if err != nil {
		return Alias{}, err
	}
	var a Alias
	if m.domain == "" {
		return a, fmt.Errorf("%w: alias %q", ErrNotFound, address)
	}
	_, err = getJSON(r, nsAlias, m.canonical, &a)
	return a, err
}

// updateAlias applies fn to an alias in one transaction.
func (b *Builtin) updateAlias(ctx context.Context, address string, fn func(reader, *Alias) error) (Alias, error) {
	var out Alias
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		r := txReader{tx}
		m, err := mapAddress(r, address)
		if err != nil {
			return err
		}
		if m.domain == "" {
			return fmt.Errorf("%w: alias %q", ErrNotFound, address)
		}
		var a Alias
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
		return Alias{}, fmt.Errorf("directory: update alias %q: %w", address, err)
	}
	return out, nil
}

// AddAliasTarget adds a target to an alias.
func (b *Builtin) AddAliasTarget(ctx context.Context, address, target string) (Alias, error) {
	return b.updateAlias(ctx, address, func(r reader, a *Alias) error {
		ts, err := addTargets(r, a.Address, a.Targets, []string{target})
		a.Targets = ts
		return err
	})
}

// RemoveAliasTarget removes a target from an alias. Removing the last one
// is ErrInvalid: delete the alias instead.
func (b *Builtin) RemoveAliasTarget(ctx context.Context, address, target string) (Alias, error) {
	return b.updateAlias(ctx, address, func(r reader, a *Alias) error {
		ts, err := removeTarget(r, a.Targets, target)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			return fmt.Errorf("%w: %q is the alias's last target; delete the alias instead", ErrInvalid, target)
		}
		a.Targets = ts
		return nil
	})
}

// DeleteAlias deletes an alias and drops its address from group members
// and other aliases' targets.
func (b *Builtin) DeleteAlias(ctx context.Context, address string) error {
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		r := txReader{tx}
		m, err := mapAddress(r, address)
		if err != nil {
			return err
		}
		if m.domain == "" {
			return fmt.Errorf("%w: alias %q", ErrNotFound, address)
		}
		if _, err := getJSON(r, nsAlias, m.canonical, &Alias{}); err != nil {
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
// arguments are those of [Builtin.ListUsers].
func (b *Builtin) ListAliases(ctx context.Context, domain, after string, limit int) ([]Alias, error) {
	return listByAddress[Alias](ctx, b, refAlias, nsAlias, domain, after, limit)
}

// CreateGroup creates a group (distribution list) with a new random ID
// from spec's Address (in a hosted domain, which decides the tenant),
// Aliases (in domains of the same tenant), DisplayName, Members (local
// ones must exist; external ones are kept as given) and SendAs (IDs of
// users of the same tenant). spec's ID, Tenant and Created are ignored.
func (b *Builtin) CreateGroup(ctx context.Context, spec Group) (Group, error) {
	id, err := newID()
	if err != nil {
		return Group{}, err
	}
	var out Group
	err = b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		r := txReader{tx}
		addr, tenant, err := tenantAddress(r, spec.Address, "")
		if err != nil {
			return err
		}
		g := Group{ID: id, Tenant: tenant, Address: addr, DisplayName: spec.DisplayName, Created: b.now().UTC()}
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
				return fmt.Errorf("%w: group %q cannot contain itself", ErrInvalid, addr)
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
		return Group{}, fmt.Errorf("directory: create group %q: %w", spec.Address, err)
	}
	return out, nil
}

// setSendAs replaces g.SendAs and its reverse index. The users must exist
// and belong to the group's tenant.
func setSendAs(tx store.RecordTx, g *Group, userIDs []string) error {
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
		var u User
		if _, err := getJSON(r, nsUser, uid, &u); err != nil {
			return fmt.Errorf("send-as user: %w", err)
		}
		if u.Tenant != g.Tenant {
			return fmt.Errorf("%w: user %q belongs to another tenant", ErrInvalid, uid)
		}
		if err := putRaw(tx, nsSendAs, uid+"/"+g.ID, []byte(g.ID), -1); err != nil {
			return err
		}
	}
	g.SendAs = ids
	return nil
}

// Group returns a group by ID.
func (b *Builtin) Group(ctx context.Context, id string) (Group, error) {
	var g Group
	_, err := getJSON(storeReader{ctx, b.records}, nsGroup, id, &g)
	return g, err
}

func (b *Builtin) updateGroup(ctx context.Context, id string, fn func(store.RecordTx, *Group) error) (Group, error) {
	out, err := updateJSON(ctx, b.records, nsGroup, id, func(tx store.RecordTx, g *Group) error {
		if err := fn(tx, g); err != nil {
			return err
		}
		return galPut(tx, refGroup, id, galFromGroup(*g))
	})
	if err != nil {
		return Group{}, fmt.Errorf("directory: update group %q: %w", id, err)
	}
	return out, nil
}

// AddGroupMember adds a member address (local ones must exist).
// ErrExists if it is already a member.
func (b *Builtin) AddGroupMember(ctx context.Context, id, member string) (Group, error) {
	return b.updateGroup(ctx, id, func(tx store.RecordTx, g *Group) error {
		r := txReader{tx}
		ms, err := addTargets(r, g.Address, g.Members, []string{member})
		if err != nil {
			return err
		}
		for _, a := range g.Aliases {
			if pointsAt(ms[len(ms)-1], a) {
				return fmt.Errorf("%w: group %q cannot contain itself", ErrInvalid, g.Address)
			}
		}
		g.Members = ms
		return nil
	})
}

// RemoveGroupMember removes a member. ErrNotFound if it is not one.
func (b *Builtin) RemoveGroupMember(ctx context.Context, id, member string) (Group, error) {
	return b.updateGroup(ctx, id, func(tx store.RecordTx, g *Group) error {
		ms, err := removeTarget(txReader{tx}, g.Members, member)
		g.Members = ms
		return err
	})
}

// SetGroupSendAs replaces the list of users that may send as the group.
func (b *Builtin) SetGroupSendAs(ctx context.Context, id string, userIDs []string) (Group, error) {
	return b.updateGroup(ctx, id, func(tx store.RecordTx, g *Group) error {
		return setSendAs(tx, g, userIDs)
	})
}

// ListGroups returns a page of groups ordered by address; the paging
// arguments are those of [Builtin.ListUsers].
func (b *Builtin) ListGroups(ctx context.Context, domain, after string, limit int) ([]Group, error) {
	return listByAddress[Group](ctx, b, refGroup, nsGroup, domain, after, limit)
}

// DeleteGroup deletes a group, its addresses and SendAs rights, and drops
// its addresses from other groups' members and aliases' targets.
func (b *Builtin) DeleteGroup(ctx context.Context, id string) error {
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		var g Group
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

// Resource kinds.
const (
	ResourceRoom      = "room"
	ResourceEquipment = "equipment"
)

// CreateResource creates a resource (room or equipment) with a new random
// ID; its Tenant comes from its address's domain. Resources receive mail
// (booking requests), so with BuiltinOptions.Accounts set a store account
// with the resource's ID is created first. An empty Kind means room.
func (b *Builtin) CreateResource(ctx context.Context, res Resource) (Resource, error) {
	if res.Kind == "" {
		res.Kind = ResourceRoom
	}
	if res.Kind != ResourceRoom && res.Kind != ResourceEquipment {
		return Resource{}, fmt.Errorf("%w: resource kind %q (want %q or %q)", ErrInvalid, res.Kind, ResourceRoom, ResourceEquipment)
	}
	if res.Capacity < 0 {
		return Resource{}, fmt.Errorf("%w: negative capacity", ErrInvalid)
	}
	if _, err := ParseAddress(res.Address); err != nil {
		return Resource{}, err
	}
	id, err := newID()
	if err != nil {
		return Resource{}, err
	}
	res.ID = id
	var out Resource
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
		return Resource{}, fmt.Errorf("directory: create resource %q: %w", res.Address, err)
	}
	return out, nil
}

// Resource returns a resource by ID.
func (b *Builtin) Resource(ctx context.Context, id string) (Resource, error) {
	var r Resource
	_, err := getJSON(storeReader{ctx, b.records}, nsResource, id, &r)
	return r, err
}

// ListResources returns a page of resources ordered by address; the
// paging arguments are those of [Builtin.ListUsers].
func (b *Builtin) ListResources(ctx context.Context, domain, after string, limit int) ([]Resource, error) {
	return listByAddress[Resource](ctx, b, refResource, nsResource, domain, after, limit)
}

// DeleteResource deletes a resource and drops its address from group
// members and alias targets; then, with BuiltinOptions.Accounts set, its
// store account.
func (b *Builtin) DeleteResource(ctx context.Context, id string) error {
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		var res Resource
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
