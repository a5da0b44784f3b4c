package ldap

import (
	"context"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/mailyard/mailyard/directory"
)

// syncAddressBook writes the address-book entries (Config.AddressBook*)
// that are not mail users or groups as contacts of the global address
// list, and removes the contacts that vanished. With neither filter set
// it only removes what an earlier configuration synced; without a
// ContactTarget it does nothing.
func (c *Connector) syncAddressBook(ctx context.Context, conn *goldap.Conn, r *run, mailUsers, mailGroups map[string]bool) error {
	if c.contacts == nil {
		return nil // no filter set (New checked), and no contacts to remove
	}
	existing, err := c.dir.ListSourced(ctx, c.Source(), directory.KindContact)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	write := func(e Entry) {
		seen[e.ID] = true
		res, err := c.contacts.UpsertSourcedContact(ctx, c.Source(), e.ID, directory.GALEntry{
			Tenant: c.cfg.Tenant, Address: e.Mail, Aliases: e.Aliases, DisplayName: e.DisplayName,
			GivenName: e.GivenName, Surname: e.Surname, Title: e.Title, Department: e.Department,
			Company: e.Company, Office: e.Office, Phone: e.Phone, Mobile: e.Mobile,
		})
		if err != nil {
			r.errorf("contact %s (%s): %v", e.Mail, printableDN(e.DN), err)
			return
		}
		r.count(func(s *Status) { s.countChange(res.Change) })
		if res.Change != directory.SyncUnchanged {
			r.logf("contact %s %s", e.Mail, changeWord(res.Change))
		}
	}
	type search struct {
		base, filter string
		attrs        []string
		mapFn        func(*goldap.Entry) (Entry, error)
		mail         map[string]bool
		exclude      []string
	}
	for _, s := range []search{
		{c.cfg.AddressBookUserBase, c.cfg.AddressBookUserFilter, c.cfg.Mapping.userAttributes(), c.cfg.Mapping.MapUser, mailUsers, c.cfg.ExcludeUsers},
		{c.cfg.AddressBookGroupBase, c.cfg.AddressBookGroupFilter, c.cfg.Mapping.groupAttributes(), c.cfg.Mapping.MapGroup, mailGroups, c.cfg.ExcludeGroups},
	} {
		if s.filter == "" {
			continue
		}
		err := pagedSearch(conn, s.base, s.filter, s.attrs, c.cfg.PageSize, func(le *goldap.Entry) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			e, err := s.mapFn(le)
			if err != nil {
				r.logf("address book: %v", err)
				return nil
			}
			if s.mail[e.ID] || seen[e.ID] || excluded(s.exclude, e) {
				return nil
			}
			write(e)
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, ref := range existing {
		if seen[ref.ExternalID] {
			continue
		}
		if err := c.contacts.DeleteSourcedContact(ctx, c.Source(), ref.ExternalID); err != nil {
			r.errorf("delete contact %s: %v", ref.ExternalID, err)
			continue
		}
		r.count(func(s *Status) { s.Deleted++ })
	}
	return nil
}
