package builtin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

func checkSourced(source, externalID string) error {
	if source == "" || source == directory.SourceBuiltin || strings.ContainsAny(source, "/") || !printable(source) {
		return fmt.Errorf("%w: source %q (want a name such as \"ldap:corp\" without '/')", directory.ErrInvalid, source)
	}
	if externalID == "" || len(externalID) > directory.MaxExternalIDLength || !printable(externalID) {
		return fmt.Errorf("%w: external ID must be 1-%d printable characters", directory.ErrInvalid, directory.MaxExternalIDLength)
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

func externalKey(kind, source, externalID string) string {
	return kind + "/" + source + "/" + externalID
}

// claimExternal records that source knows entry id as externalID. Entries
// without an external ID (built-in ones) have nothing to record.
func claimExternal(tx store.RecordTx, kind, source, externalID, id string) error {
	if externalID == "" {
		return nil
	}
	if err := checkSourced(source, externalID); err != nil {
		return err
	}
	return putRaw(tx, nsExternal, externalKey(kind, source, externalID), []byte(id), 0)
}

func releaseExternal(tx store.RecordTx, kind, source, externalID string) error {
	if externalID == "" {
		return nil
	}
	return deleteRecord(tx, nsExternal, externalKey(kind, source, externalID))
}

// externalRef returns the directory ID source's externalID maps to.
func externalRef(r reader, kind, source, externalID string) (string, error) {
	rec, err := r.get(nsExternal, externalKey(kind, source, externalID))
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: %s %q of %s", directory.ErrNotFound, kind, externalID, source)
	}
	if err != nil {
		return "", fmt.Errorf("directory: read external ID: %w", err)
	}
	return string(rec.Value), nil
}

// UserByExternalID returns the user that source knows as externalID,
// including its password hash. ErrNotFound if there is none.
func (b *Directory) UserByExternalID(ctx context.Context, source, externalID string) (directory.User, error) {
	r := storeReader{ctx, b.records}
	id, err := externalRef(r, refUser, source, externalID)
	if err != nil {
		return directory.User{}, err
	}
	var u directory.User
	_, err = getJSON(r, nsUser, id, &u)
	return u, err
}

// GroupByExternalID returns the group that source knows as externalID.
func (b *Directory) GroupByExternalID(ctx context.Context, source, externalID string) (directory.Group, error) {
	r := storeReader{ctx, b.records}
	id, err := externalRef(r, refGroup, source, externalID)
	if err != nil {
		return directory.Group{}, err
	}
	var g directory.Group
	_, err = getJSON(r, nsGroup, id, &g)
	return g, err
}

// ListSourced returns every user (kind KindUser), group (KindGroup) or
// contact (KindContact) synced from source, ordered by external ID. A connector compares it
// with the source's entries to find deletions.
func (b *Directory) ListSourced(ctx context.Context, source string, kind directory.EntryKind) ([]directory.SourcedRef, error) {
	k := kindName(kind)
	if kind != directory.KindUser && kind != directory.KindGroup && kind != directory.KindContact {
		return nil, fmt.Errorf("%w: only users, groups and contacts are synced", directory.ErrInvalid)
	}
	prefix := k + "/" + source + "/"
	var out []directory.SourcedRef
	err := forEach(storeReader{ctx, b.records}, nsExternal, prefix, func(rec store.Record) error {
		out = append(out, directory.SourcedRef{ExternalID: strings.TrimPrefix(rec.Key, prefix), ID: string(rec.Value)})
		return nil
	})
	return out, err
}

// Photo returns the user's photo (JPEG or PNG bytes as the source gave
// them). ErrNotFound if the user has none.
func (b *Directory) Photo(ctx context.Context, userID string) ([]byte, error) {
	rec, err := b.records.GetRecord(ctx, nsPhoto, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: photo of %q", directory.ErrNotFound, userID)
	}
	if err != nil {
		return nil, fmt.Errorf("directory: read photo: %w", err)
	}
	return rec.Value, nil
}

// SetPhoto replaces the user's photo; empty data removes it. ErrInvalid
// if data exceeds MaxPhotoBytes.
func (b *Directory) SetPhoto(ctx context.Context, userID string, data []byte) error {
	if len(data) > directory.MaxPhotoBytes {
		return fmt.Errorf("%w: photo larger than %d bytes", directory.ErrInvalid, directory.MaxPhotoBytes)
	}
	_, err := b.updateUser(ctx, userID, func(tx store.RecordTx, u *directory.User) error {
		return setPhoto(tx, u, data)
	})
	return err
}

func photoHash(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func setPhoto(tx store.RecordTx, u *directory.User, data []byte) error {
	h := photoHash(data)
	if h == u.PhotoHash {
		return nil
	}
	u.PhotoHash = h
	if h == "" {
		return deleteRecord(tx, nsPhoto, u.ID)
	}
	return putRaw(tx, nsPhoto, u.ID, data, -1)
}

// sourcedAddresses canonicalises a synced entry's aliases: those in
// domains not hosted for the tenant, or used by another entry than
// (kind, id), are skipped with the reason; the primary address and
// duplicates are dropped.
func sourcedAddresses(r reader, tenant, primary string, aliases []string, kind, id string) (keep, skipped []string, err error) {
	for _, a := range aliases {
		c, _, err := tenantAddress(r, a, tenant)
		if errors.Is(err, directory.ErrInvalid) || errors.Is(err, directory.ErrNotFound) {
			skipped = append(skipped, fmt.Sprintf("%s: not in a domain of tenant %s", a, tenant))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if c == primary || slices.Contains(keep, c) {
			continue
		}
		ref, err := lookupRef(r, c)
		switch {
		case errors.Is(err, directory.ErrNotFound):
		case err != nil:
			return nil, nil, err
		case ref.Kind != kind || ref.ID != id:
			skipped = append(skipped, fmt.Sprintf("%s: used by another %s", c, ref.Kind))
			continue
		}
		keep = append(keep, c)
	}
	slices.Sort(keep)
	return keep, skipped, nil
}

// readdress moves an entry (kind, id) from its current primary address
// and aliases to new ones, claiming and releasing addresses as their role
// changes. It returns the addresses that no longer reach the entry.
func readdress(tx store.RecordTx, kind, id, oldPrimary string, oldAliases []string, newPrimary string, newAliases []string) ([]string, error) {
	role := func(primary string, aliases []string) map[string]string {
		m := map[string]string{primary: kind}
		for _, a := range aliases {
			m[a] = refSecondary
		}
		return m
	}
	before, after := role(oldPrimary, oldAliases), role(newPrimary, newAliases)
	var gone []string
	for a, k := range before {
		if after[a] != k {
			if err := release(tx, a, k); err != nil {
				return nil, err
			}
			if after[a] == "" {
				gone = append(gone, a)
			}
		}
	}
	for a, k := range after {
		if before[a] != k {
			if err := claim(tx, a, addrRef{kind, id}, k); err != nil {
				return nil, err
			}
		}
	}
	slices.Sort(gone)
	return gone, nil
}

// UpsertSourcedUser creates or updates the user that u.Source knows as
// u.ExternalID, so a connector can apply what it read without tracking
// directory IDs:
//
//  1. No user has this external ID: it is created as by
//     [Directory.CreateUser] without a password (u.PasswordHash must be
//     empty), with u's quota and protocols.
//  2. Otherwise the user keeps its ID (and mailbox) and takes u's primary
//     address, aliases, names, GAL attributes, ExternalDN and Disabled
//     (a user an administrator disabled here stays disabled); a rename
//     releases the old addresses and drops them from group members and
//     alias targets. Quota and protocols stay as set here. A user marked
//     as vanished is listed again: the mark is cleared (Reappeared).
//
// Aliases outside the tenant's domains or used by other entries are
// skipped (listed in the result), not fatal. photo replaces the user's
// photo (nil removes it; larger than MaxPhotoBytes is skipped). Nothing
// is written when nothing changed (SyncUnchanged). Errors: ErrInvalid
// (no source or external ID, bad or non-hosted primary address, a
// password hash), ErrExists (the primary address belongs to another
// entry).
func (b *Directory) UpsertSourcedUser(ctx context.Context, u directory.User, photo []byte) (directory.UpsertResult, error) {
	if err := checkSourced(u.Source, u.ExternalID); err != nil {
		return directory.UpsertResult{}, err
	}
	if u.PasswordHash != "" {
		return directory.UpsertResult{}, fmt.Errorf("%w: synced users authenticate at their source and have no password hash", directory.ErrInvalid)
	}
	var res directory.UpsertResult
	if len(photo) > directory.MaxPhotoBytes {
		res.Skipped = append(res.Skipped, fmt.Sprintf("photo: larger than %d bytes", directory.MaxPhotoBytes))
		photo = nil
	}
	r := storeReader{ctx, b.records}
	id, err := externalRef(r, refUser, u.Source, u.ExternalID)
	if errors.Is(err, directory.ErrNotFound) {
		return b.createSourcedUser(ctx, u, photo, res)
	}
	if err != nil {
		return directory.UpsertResult{}, err
	}
	res.ID = id
	var cur directory.User
	if _, err := getJSON(r, nsUser, id, &cur); err != nil {
		return directory.UpsertResult{}, err
	}
	// A read-only comparison first: a full sync of an unchanged source
	// writes nothing.
	want, skipped, err := applySourcedUser(r, cur, u)
	if err != nil {
		return directory.UpsertResult{}, err
	}
	res.Skipped = append(res.Skipped, skipped...)
	if sameUser(cur, want) && cur.PhotoHash == photoHash(photo) {
		return res, nil
	}
	_, err = b.updateUser(ctx, id, func(tx store.RecordTx, cur *directory.User) error {
		r := txReader{tx}
		res.Reappeared = !cur.Vanished.IsZero()
		want, _, err := applySourcedUser(r, *cur, u)
		if err != nil {
			return err
		}
		gone, err := readdress(tx, refUser, id, cur.Address, cur.Aliases, want.Address, want.Aliases)
		if err != nil {
			return err
		}
		if err := b.dropReferences(ctx, tx, gone, ""); err != nil {
			return err
		}
		*cur = want
		return setPhoto(tx, cur, photo)
	})
	if err != nil {
		return directory.UpsertResult{}, err
	}
	res.Change = directory.SyncUpdated
	return res, nil
}

// applySourcedUser returns cur with the fields a source manages taken
// from u, and the aliases that had to be skipped.
func applySourcedUser(r reader, cur, u directory.User) (directory.User, []string, error) {
	w := cur
	w.DisplayName, w.GivenName, w.Surname = u.DisplayName, u.GivenName, u.Surname
	w.Title, w.Department, w.Company, w.Office = u.Title, u.Department, u.Company, u.Office
	w.Phone, w.Mobile = u.Phone, u.Mobile
	w.ExternalDN, w.Disabled = u.ExternalDN, u.Disabled || cur.LocallyDisabled
	w.Vanished = time.Time{}
	if sameAddresses(cur.Address, cur.Aliases, u.Address, u.Aliases) {
		// The stored addresses are canonical and claimed by this user:
		// nothing to look up (the common case of a full sync).
		return w, nil, nil
	}
	addr, _, err := tenantAddress(r, u.Address, cur.Tenant)
	if err != nil {
		return directory.User{}, nil, err
	}
	if ref, err := lookupRef(r, addr); err == nil && (ref.Kind != refUser || ref.ID != cur.ID) {
		return directory.User{}, nil, fmt.Errorf("%w: address %q is already in use", directory.ErrExists, addr)
	} else if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return directory.User{}, nil, err
	}
	aliases, skipped, err := sourcedAddresses(r, cur.Tenant, addr, u.Aliases, refUser, cur.ID)
	if err != nil {
		return directory.User{}, nil, err
	}
	w.Address, w.Aliases = addr, aliases
	return w, skipped, nil
}

// sameAddresses reports whether primary and aliases, in canonical form,
// are exactly the stored canonical addresses (aliases sorted, without
// the primary). Any other spelling (an alternative domain name, an
// address that does not parse) takes the full path, which is correct
// for all inputs.
func sameAddresses(curPrimary string, curAliases []string, primary string, aliases []string) bool {
	if c, err := directory.CanonicalAddress(primary); err != nil || c != curPrimary {
		return false
	}
	return sameCanonical(curAliases, aliases, curPrimary)
}

// sameCanonical reports whether list, in canonical form, sorted, without
// duplicates and without except, equals the canonical sorted want.
func sameCanonical(want, list []string, except string) bool {
	canon := make([]string, 0, len(list))
	for _, a := range list {
		c, err := directory.CanonicalAddress(a)
		if err != nil {
			return false
		}
		if c != except {
			canon = append(canon, c)
		}
	}
	slices.Sort(canon)
	return slices.Equal(slices.Compact(canon), want)
}

func sameUser(a, b directory.User) bool {
	return a.Address == b.Address && slices.Equal(a.Aliases, b.Aliases) &&
		a.DisplayName == b.DisplayName && a.GivenName == b.GivenName && a.Surname == b.Surname &&
		a.Title == b.Title && a.Department == b.Department && a.Company == b.Company &&
		a.Office == b.Office && a.Phone == b.Phone && a.Mobile == b.Mobile &&
		a.ExternalDN == b.ExternalDN && a.Disabled == b.Disabled && a.Vanished.Equal(b.Vanished)
}

// MarkVanished records that a full sync of the user's source no longer
// finds it, as of at: the user is disabled (it cannot log in, mail to it
// is refused as to any disabled user, it leaves the global address list)
// and keeps its addresses, store account and mail, so that a source that
// lists it again ([Directory.UpsertSourcedUser] clears the mark) gets it
// back whole, and nobody else can take its addresses meanwhile. A user
// marked already keeps its first time. It reports whether it disabled
// the user (false if the user was disabled already). ErrInvalid for a
// user that is not synced from a source.
func (b *Directory) MarkVanished(ctx context.Context, id string, at time.Time) (bool, error) {
	cur, err := b.User(ctx, id)
	if err != nil {
		return false, err
	}
	if !cur.Vanished.IsZero() && cur.Disabled {
		return false, nil // nothing to write
	}
	disabled := false
	_, err = b.updateUser(ctx, id, func(_ store.RecordTx, u *directory.User) error {
		if !u.IsSourced() {
			return fmt.Errorf("%w: user %s is not synced from a source", directory.ErrInvalid, u.Address)
		}
		if u.Vanished.IsZero() {
			u.Vanished = at.UTC()
		}
		disabled = !u.Disabled
		u.Disabled = true
		return nil
	})
	return disabled, err
}

func (b *Directory) createSourcedUser(ctx context.Context, u directory.User, photo []byte, res directory.UpsertResult) (directory.UpsertResult, error) {
	r := storeReader{ctx, b.records}
	addr, tenant, err := tenantAddress(r, u.Address, "")
	if err != nil {
		return directory.UpsertResult{}, err
	}
	aliases, skipped, err := sourcedAddresses(r, tenant, addr, u.Aliases, refUser, "")
	if err != nil {
		return directory.UpsertResult{}, err
	}
	res.Skipped = append(res.Skipped, skipped...)
	u.Aliases = aliases
	created, err := b.CreateUser(ctx, u, "")
	if err != nil {
		return directory.UpsertResult{}, err
	}
	res.ID, res.Change = created.ID, directory.SyncAdded
	if len(photo) > 0 {
		if err := b.SetPhoto(ctx, created.ID, photo); err != nil {
			return res, err
		}
	}
	return res, nil
}

// UpsertSourcedGroup creates or updates the group that g.Source knows as
// g.ExternalID, like [Directory.UpsertSourcedUser]: the group keeps its ID
// and SendAs rights and takes g's address, aliases, DisplayName,
// ExternalDN and Members. Members that are local addresses must exist;
// those that do not (yet) are skipped, so a connector adds groups first
// and upserts again once nested groups exist. Members are kept sorted.
func (b *Directory) UpsertSourcedGroup(ctx context.Context, g directory.Group) (directory.UpsertResult, error) {
	if err := checkSourced(g.Source, g.ExternalID); err != nil {
		return directory.UpsertResult{}, err
	}
	r := storeReader{ctx, b.records}
	id, err := externalRef(r, refGroup, g.Source, g.ExternalID)
	if errors.Is(err, directory.ErrNotFound) {
		addr, tenant, err := tenantAddress(r, g.Address, "")
		if err != nil {
			return directory.UpsertResult{}, err
		}
		var res directory.UpsertResult
		spec := g
		if spec.Aliases, res.Skipped, err = sourcedAddresses(r, tenant, addr, g.Aliases, refGroup, ""); err != nil {
			return directory.UpsertResult{}, err
		}
		var skipped []string
		if spec.Members, skipped, err = sourcedMembers(r, addr, spec.Aliases, g.Members); err != nil {
			return directory.UpsertResult{}, err
		}
		res.Skipped = append(res.Skipped, skipped...)
		spec.SendAs = nil
		created, err := b.CreateGroup(ctx, spec)
		if err != nil {
			return directory.UpsertResult{}, err
		}
		res.ID, res.Change = created.ID, directory.SyncAdded
		return res, nil
	}
	if err != nil {
		return directory.UpsertResult{}, err
	}
	res := directory.UpsertResult{ID: id}
	var cur directory.Group
	if _, err := getJSON(r, nsGroup, id, &cur); err != nil {
		return directory.UpsertResult{}, err
	}
	want, skipped, err := applySourcedGroup(r, cur, g)
	if err != nil {
		return directory.UpsertResult{}, err
	}
	res.Skipped = skipped
	if sameGroup(cur, want) {
		return res, nil
	}
	_, err = b.updateGroup(ctx, id, func(tx store.RecordTx, cur *directory.Group) error {
		want, _, err := applySourcedGroup(txReader{tx}, *cur, g)
		if err != nil {
			return err
		}
		gone, err := readdress(tx, refGroup, id, cur.Address, cur.Aliases, want.Address, want.Aliases)
		if err != nil {
			return err
		}
		*cur = want
		return b.dropReferences(ctx, tx, gone, "")
	})
	if err != nil {
		return directory.UpsertResult{}, err
	}
	res.Change = directory.SyncUpdated
	return res, nil
}

func applySourcedGroup(r reader, cur, g directory.Group) (directory.Group, []string, error) {
	w := cur
	w.DisplayName, w.ExternalDN = g.DisplayName, g.ExternalDN
	if sameAddresses(cur.Address, cur.Aliases, g.Address, g.Aliases) && sameCanonical(cur.Members, g.Members, "") {
		// Stored members are canonical and exist: deleting an entry
		// drops its addresses from every group.
		return w, nil, nil
	}
	addr, _, err := tenantAddress(r, g.Address, cur.Tenant)
	if err != nil {
		return directory.Group{}, nil, err
	}
	if ref, err := lookupRef(r, addr); err == nil && (ref.Kind != refGroup || ref.ID != cur.ID) {
		return directory.Group{}, nil, fmt.Errorf("%w: address %q is already in use", directory.ErrExists, addr)
	} else if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return directory.Group{}, nil, err
	}
	aliases, skipped, err := sourcedAddresses(r, cur.Tenant, addr, g.Aliases, refGroup, cur.ID)
	if err != nil {
		return directory.Group{}, nil, err
	}
	members, mskipped, err := sourcedMembers(r, addr, aliases, g.Members)
	if err != nil {
		return directory.Group{}, nil, err
	}
	w.Address, w.Aliases, w.Members = addr, aliases, members
	return w, append(skipped, mskipped...), nil
}

// sourcedMembers normalises members, skipping unknown local addresses,
// invalid ones and references to the group itself.
func sourcedMembers(r reader, self string, selfAliases, members []string) (keep, skipped []string, err error) {
	for _, m := range members {
		n, err := normalizeTarget(r, m)
		if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid) {
			skipped = append(skipped, fmt.Sprintf("%s: not a known address", m))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if pointsAt(n, self) || slices.ContainsFunc(selfAliases, func(a string) bool { return pointsAt(n, a) }) {
			skipped = append(skipped, fmt.Sprintf("%s: the group itself", m))
			continue
		}
		if !slices.ContainsFunc(keep, func(s string) bool { return sameTarget(s, n) }) {
			keep = append(keep, n)
		}
	}
	slices.Sort(keep)
	return keep, skipped, nil
}

func sameGroup(a, b directory.Group) bool {
	return a.Address == b.Address && slices.Equal(a.Aliases, b.Aliases) && slices.Equal(a.Members, b.Members) &&
		a.DisplayName == b.DisplayName && a.ExternalDN == b.ExternalDN
}

const refContact = "contact"

// UpsertSourcedContact creates or replaces the address-book contact that
// source knows as externalID. e.Tenant (which must exist) and e.Address
// (any valid address) are required; e.Kind and e.ID are set here.
// Nothing is written if the entry is unchanged.
func (b *Directory) UpsertSourcedContact(ctx context.Context, source, externalID string, e directory.GALEntry) (directory.UpsertResult, error) {
	if err := checkSourced(source, externalID); err != nil {
		return directory.UpsertResult{}, err
	}
	if _, err := directory.ParseAddress(e.Address); err != nil {
		return directory.UpsertResult{}, err
	}
	if err := checkID(e.Tenant); err != nil {
		return directory.UpsertResult{}, err
	}
	e.Kind, e.HasPhoto = directory.KindContact, false
	var res directory.UpsertResult
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		r := txReader{tx}
		if _, err := getJSON(r, nsTenant, e.Tenant, &directory.Tenant{}); err != nil {
			return err
		}
		res = directory.UpsertResult{}
		id, err := externalRef(r, refContact, source, externalID)
		if errors.Is(err, directory.ErrNotFound) {
			if id, err = newID(); err != nil {
				return err
			}
			if err := claimExternal(tx, refContact, source, externalID, id); err != nil {
				return err
			}
			res.Change = directory.SyncAdded
		} else if err != nil {
			return err
		}
		res.ID, e.ID = id, id
		if res.Change != directory.SyncAdded {
			var old directory.GALEntry
			if rec, err := r.get(nsGALRef, refContact+"/"+id); err == nil {
				if _, err := getJSON(r, nsGAL, string(rec.Value), &old); err == nil && galEqual(old, e) {
					return nil
				}
			}
			res.Change = directory.SyncUpdated
		}
		return galPut(tx, refContact, id, &e)
	})
	if err != nil {
		return directory.UpsertResult{}, fmt.Errorf("directory: upsert contact %q: %w", e.Address, err)
	}
	return res, nil
}

func galEqual(a, b directory.GALEntry) bool {
	return a.Kind == b.Kind && a.ID == b.ID && a.Tenant == b.Tenant && a.Address == b.Address &&
		slices.Equal(a.Aliases, b.Aliases) && a.DisplayName == b.DisplayName && a.GivenName == b.GivenName &&
		a.Surname == b.Surname && a.Title == b.Title && a.Department == b.Department && a.Company == b.Company &&
		a.Office == b.Office && a.Phone == b.Phone && a.Mobile == b.Mobile
}

// DeleteSourcedContact removes an address-book contact synced from
// source. ErrNotFound if there is none.
func (b *Directory) DeleteSourcedContact(ctx context.Context, source, externalID string) error {
	return b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		id, err := externalRef(txReader{tx}, refContact, source, externalID)
		if err != nil {
			return err
		}
		if err := releaseExternal(tx, refContact, source, externalID); err != nil {
			return err
		}
		return galPut(tx, refContact, id, nil)
	})
}
