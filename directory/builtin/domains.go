package builtin

import (
	"context"
	"fmt"
	"slices"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// maxIDLength bounds caller-chosen tenant IDs.
const maxIDLength = 64

// checkID validates a caller-chosen identifier: 1-64 characters from
// [a-z0-9._-], so it is safe in record keys, URLs and file names.
func checkID(id string) error {
	if id == "" || len(id) > maxIDLength {
		return fmt.Errorf("%w: ID must be 1-%d characters", directory.ErrInvalid, maxIDLength)
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: ID %q: only a-z, 0-9, '.', '_' and '-' are allowed", directory.ErrInvalid, id)
		}
	}
	return nil
}

// CreateTenant creates a tenant. An empty ID gets a random one; an empty
// Name defaults to the ID. ErrExists if the ID is taken.
func (b *Directory) CreateTenant(ctx context.Context, t directory.Tenant) (directory.Tenant, error) {
	if t.ID == "" {
		id, err := newID()
		if err != nil {
			return directory.Tenant{}, err
		}
		t.ID = id
	}
	if err := checkID(t.ID); err != nil {
		return directory.Tenant{}, err
	}
	if t.Name == "" {
		t.Name = t.ID
	}
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return putJSON(tx, nsTenant, t.ID, t, 0)
	})
	if err != nil {
		return directory.Tenant{}, fmt.Errorf("directory: create tenant %q: %w", t.ID, err)
	}
	return t, nil
}

// Tenant returns one tenant.
func (b *Directory) Tenant(ctx context.Context, id string) (directory.Tenant, error) {
	var t directory.Tenant
	_, err := getJSON(storeReader{ctx, b.records}, nsTenant, id, &t)
	return t, err
}

// ListTenants returns up to limit tenants with ID > after, by ID.
func (b *Directory) ListTenants(ctx context.Context, after string, limit int) ([]directory.Tenant, error) {
	return listJSON[directory.Tenant](ctx, b.records, nsTenant, after, limit)
}

func listJSON[T any](ctx context.Context, records store.Records, ns, after string, limit int) ([]T, error) {
	recs, err := records.ListRecords(ctx, ns, after, pageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("directory: list %s: %w", ns, err)
	}
	out := make([]T, 0, len(recs))
	for _, rec := range recs {
		var v T
		if err := decode(rec, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// DefaultTenant is the tenant of domains created without one; it is
// created with the first such domain, so single-organisation
// installations never need to manage tenants.
const DefaultTenant = "default"

// CreateDomain hosts a domain, with optional alternative names, for an
// existing tenant, or for DefaultTenant if d.Tenant is empty. Names are
// canonicalised (lowercase); a name already hosted, as a main or
// alternative name, is ErrExists; an unknown tenant is ErrNotFound.
func (b *Directory) CreateDomain(ctx context.Context, d directory.Domain) (directory.Domain, error) {
	name, err := directory.CanonicalDomain(d.Name)
	if err != nil {
		return directory.Domain{}, err
	}
	out := directory.Domain{Name: name, Tenant: d.Tenant, Created: b.now().UTC()}
	for _, a := range d.Aliases {
		alt, err := directory.CanonicalDomain(a)
		if err != nil {
			return directory.Domain{}, err
		}
		if alt == name || slices.Contains(out.Aliases, alt) {
			return directory.Domain{}, fmt.Errorf("%w: alternative name %q given twice", directory.ErrInvalid, alt)
		}
		out.Aliases = append(out.Aliases, alt)
	}
	slices.Sort(out.Aliases)
	err = b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		r := txReader{tx}
		if out.Tenant == "" {
			out.Tenant = DefaultTenant
			ok, err := exists(r, nsTenant, DefaultTenant)
			if err != nil {
				return err
			}
			if !ok {
				if err := putJSON(tx, nsTenant, DefaultTenant, directory.Tenant{ID: DefaultTenant, Name: "Default"}, 0); err != nil {
					return err
				}
			}
		}
		if _, err := getJSON(r, nsTenant, out.Tenant, &directory.Tenant{}); err != nil {
			return fmt.Errorf("tenant %q: %w", out.Tenant, err)
		}
		for _, n := range append([]string{name}, out.Aliases...) {
			if err := putRaw(tx, nsDomainName, n, []byte(name), 0); err != nil {
				return err
			}
		}
		return putJSON(tx, nsDomain, name, out, 0)
	})
	if err != nil {
		return directory.Domain{}, fmt.Errorf("directory: create domain %q: %w", name, err)
	}
	return out, nil
}

// AddDomainAlias adds an alternative name to a hosted domain: mail to
// "x@alt" then reaches "x@domain". ErrExists if alt is already hosted.
func (b *Directory) AddDomainAlias(ctx context.Context, domain, alt string) (directory.Domain, error) {
	a, err := directory.CanonicalDomain(alt)
	if err != nil {
		return directory.Domain{}, err
	}
	return b.updateDomain(ctx, domain, func(tx store.RecordTx, d *directory.Domain) error {
		if err := putRaw(tx, nsDomainName, a, []byte(d.Name), 0); err != nil {
			return err
		}
		d.Aliases = append(d.Aliases, a)
		slices.Sort(d.Aliases)
		return nil
	})
}

// RemoveDomainAlias removes an alternative name. Addresses are stored under
// the main name, so nothing else changes. ErrNotFound if alt is not an
// alternative name of domain.
func (b *Directory) RemoveDomainAlias(ctx context.Context, domain, alt string) (directory.Domain, error) {
	a, err := directory.CanonicalDomain(alt)
	if err != nil {
		return directory.Domain{}, err
	}
	return b.updateDomain(ctx, domain, func(tx store.RecordTx, d *directory.Domain) error {
		i := slices.Index(d.Aliases, a)
		if i < 0 {
			return fmt.Errorf("%w: %q is not an alternative name of %q", directory.ErrNotFound, a, d.Name)
		}
		d.Aliases = slices.Delete(d.Aliases, i, i+1)
		return deleteRecord(tx, nsDomainName, a)
	})
}

// updateDomain applies fn to a domain given by its main name in one
// transaction.
func (b *Directory) updateDomain(ctx context.Context, domain string, fn func(store.RecordTx, *directory.Domain) error) (directory.Domain, error) {
	name, err := directory.CanonicalDomain(domain)
	if err != nil {
		return directory.Domain{}, err
	}
	out, err := updateJSON(ctx, b.records, nsDomain, name, fn)
	if err != nil {
		return directory.Domain{}, fmt.Errorf("directory: update domain %q: %w", name, err)
	}
	return out, nil
}

// ListDomains returns up to limit hosted domains with a main name > after,
// by name.
func (b *Directory) ListDomains(ctx context.Context, after string, limit int) ([]directory.Domain, error) {
	return listJSON[directory.Domain](ctx, b.records, nsDomain, after, limit)
}

// DeleteDomain stops hosting a domain and its alternative names. The
// domain must be empty: no user, group, alias or resource address (primary
// or secondary) under it, else ErrInvalid. ErrNotFound if name is not a
// main domain name.
func (b *Directory) DeleteDomain(ctx context.Context, name string) error {
	n, err := directory.CanonicalDomain(name)
	if err != nil {
		return err
	}
	err = b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		r := txReader{tx}
		var d directory.Domain
		if _, err := getJSON(r, nsDomain, n, &d); err != nil {
			return err
		}
		for _, kind := range []string{refUser, refGroup, refAlias, refResource, refSecondary} {
			recs, err := listPrefix(r, nsIndex, kind+"/"+n+"/", "", 1)
			if err != nil {
				return err
			}
			if len(recs) > 0 {
				return fmt.Errorf("%w: domain still has addresses (%s %s)", directory.ErrInvalid, kind, addressFromIndexKey(recs[0].Key))
			}
		}
		for _, alt := range d.Aliases {
			if err := deleteRecord(tx, nsDomainName, alt); err != nil {
				return err
			}
		}
		if err := deleteRecord(tx, nsDomainName, n); err != nil {
			return err
		}
		return deleteRecord(tx, nsDomain, n)
	})
	if err != nil {
		return fmt.Errorf("directory: delete domain %q: %w", n, err)
	}
	return nil
}
