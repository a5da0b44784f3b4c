package geo

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
)

// BuiltinSource publishes a directory/builtin directory: the global
// address list of every tenant (users that are not disabled, groups,
// resources; contacts stay on their site) and every alias. It reads the
// directory afresh on each call.
type BuiltinSource struct{ Dir *builtin.Directory }

var galKinds = map[directory.EntryKind]string{
	directory.KindUser: KindUser, directory.KindGroup: KindGroup, directory.KindResource: KindResource,
}

// Owners implements EntrySource: the user, group, resource or alias the
// address resolves to in the directory.
func (s BuiltinSource) Owners(ctx context.Context, address string) ([]EntryRef, error) {
	e, err := s.Dir.LookupAddress(ctx, address)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch {
	case e.User != nil:
		return []EntryRef{{KindUser, e.User.ID}}, nil
	case e.Group != nil:
		return []EntryRef{{KindGroup, e.Group.ID}}, nil
	case e.Resource != nil:
		return []EntryRef{{KindResource, e.Resource.ID}}, nil
	case e.Alias != nil:
		return []EntryRef{{KindAlias, e.Alias.Address}}, nil
	}
	return nil, nil
}

// Entry implements EntrySource: a user, group or resource as the global
// address list shows it, or an alias.
func (s BuiltinSource) Entry(ctx context.Context, ref EntryRef) (Record, bool, error) {
	var kind directory.EntryKind
	switch ref.Kind {
	case KindAlias:
		a, err := s.Dir.Alias(ctx, ref.Key)
		if errors.Is(err, directory.ErrNotFound) {
			return Record{}, false, nil
		}
		if err != nil {
			return Record{}, false, err
		}
		return Record{Kind: KindAlias, Key: a.Address, Tenant: a.Tenant, Address: a.Address}, true, nil
	case KindUser:
		kind = directory.KindUser
	case KindGroup:
		kind = directory.KindGroup
	case KindResource:
		kind = directory.KindResource
	default:
		return Record{}, false, nil
	}
	e, err := s.Dir.GALEntry(ctx, kind, ref.Key)
	if errors.Is(err, directory.ErrNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	return Record{Kind: ref.Kind, Key: e.ID, Tenant: e.Tenant, Address: e.Address, Aliases: e.Aliases, GAL: &e}, true, nil
}

var _ EntrySource = BuiltinSource{}

// Records implements Source.
func (s BuiltinSource) Records(ctx context.Context) ([]Record, error) {
	var out []Record
	tenants, err := pageAll(func(after string) ([]directory.Tenant, error) { return s.Dir.ListTenants(ctx, after, listPage) },
		func(t directory.Tenant) string { return t.ID })
	if err != nil {
		return nil, fmt.Errorf("geo: listing tenants: %w", err)
	}
	for _, t := range tenants {
		q := directory.GALQuery{Tenant: t.ID, Limit: directory.MaxGALLimit,
			Kinds: []directory.EntryKind{directory.KindUser, directory.KindGroup, directory.KindResource}}
		for {
			page, err := s.Dir.SearchGAL(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("geo: GAL of %s: %w", t.ID, err)
			}
			for _, e := range page.Entries {
				g := e
				out = append(out, Record{Kind: galKinds[e.Kind], Key: e.ID, Tenant: e.Tenant, Address: e.Address, Aliases: e.Aliases, GAL: &g})
			}
			if page.Next == "" {
				break
			}
			q.After = page.Next
		}
	}
	domains, err := pageAll(func(after string) ([]directory.Domain, error) { return s.Dir.ListDomains(ctx, after, listPage) },
		func(d directory.Domain) string { return d.Name })
	if err != nil {
		return nil, fmt.Errorf("geo: listing domains: %w", err)
	}
	for _, d := range domains {
		aliases, err := pageAll(func(after string) ([]directory.Alias, error) { return s.Dir.ListAliases(ctx, d.Name, after, listPage) },
			func(a directory.Alias) string { return a.Address })
		if err != nil {
			return nil, fmt.Errorf("geo: aliases of %s: %w", d.Name, err)
		}
		for _, a := range aliases {
			out = append(out, Record{Kind: KindAlias, Key: a.Address, Tenant: a.Tenant, Address: a.Address})
		}
	}
	return out, nil
}

// listPage is the page size of the directory listings read.
const listPage = 500

// pageAll reads every page of a keyset-paged list; key gives the cursor
// after an item.
func pageAll[T any](list func(after string) ([]T, error), key func(T) string) ([]T, error) {
	var all []T
	after := ""
	for {
		page, err := list(after)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < listPage {
			return all, nil
		}
		after = key(page[len(page)-1])
	}
}
