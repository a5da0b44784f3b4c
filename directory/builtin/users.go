package builtin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// UserUpdate changes some fields of a user; nil fields stay as they are.
type UserUpdate struct {
	DisplayName *string
	GivenName   *string
	Surname     *string
	Title       *string
	Department  *string
	Phone       *string
	// QuotaBytes and QuotaMessages, if either is set, are applied to the
	// store account too (idempotently, so retrying a failed update fixes
	// a store that missed it).
	QuotaBytes    *int64
	QuotaMessages *int64
	// Protocols replaces the allowed protocols; an empty slice allows all.
	Protocols *[]directory.Protocol
}

func checkProtocols(ps []directory.Protocol) error {
	for _, p := range ps {
		switch p {
		case directory.ProtoSMTP, directory.ProtoIMAP, directory.ProtoDAV:
		default:
			return fmt.Errorf("%w: unknown protocol %q", directory.ErrInvalid, p)
		}
	}
	return nil
}

func checkQuota(bytes, messages int64) error {
	if bytes < 0 || messages < 0 {
		return fmt.Errorf("%w: negative quota", directory.ErrInvalid)
	}
	return nil
}

// checkHashFormat verifies that a hash is one VerifyPassword can check,
// without the cost of a verification.
func checkHashFormat(h string) error {
	scheme, rest := splitScheme(h)
	switch scheme {
	case "", "CRYPT", "BLF-CRYPT", "ARGON2ID":
		switch {
		case strings.HasPrefix(rest, "$argon2id$"):
			_, err := parseArgon2id(rest)
			return err
		case strings.HasPrefix(rest, "$2"):
			// A password over 72 bytes is refused before any hashing,
			// after the prefix and cost have been validated.
			_, err := verifyBcrypt(rest, strings.Repeat("x", 73))
			return err
		}
	}
	// The remaining schemes are cheap to verify; a verification against
	// the empty password validates their layout.
	_, err := VerifyPassword(h, "")
	return err
}

// claim reserves a canonical address for ref in the uniqueness index and
// the listing index (under indexKind).
func claim(tx store.RecordTx, canonical string, ref addrRef, indexKind string) error {
	r := txReader{tx}
	taken, err := exists(r, nsAddr, canonical)
	if err != nil {
		return err
	}
	if taken {
		return fmt.Errorf("%w: address %q is already in use", directory.ErrExists, canonical)
	}
	if err := putJSON(tx, nsAddr, canonical, ref, 0); err != nil {
		return err
	}
	return putRaw(tx, nsIndex, indexKey(indexKind, canonical), []byte(ref.ID), 0)
}

// release frees an address claimed with claim.
func release(tx store.RecordTx, canonical, indexKind string) error {
	if err := deleteRecord(tx, nsAddr, canonical); err != nil {
		return err
	}
	return deleteRecord(tx, nsIndex, indexKey(indexKind, canonical))
}

// tenantAddress maps addr to its canonical form and requires a hosted
// domain of the given tenant ("" accepts any and returns the domain's).
func tenantAddress(r reader, addr, tenant string) (string, string, error) {
	m, d, err := hostedAddress(r, addr)
	if err != nil {
		return "", "", err
	}
	if tenant != "" && d.Tenant != tenant {
		return "", "", fmt.Errorf("%w: %q is in a domain of another tenant", directory.ErrInvalid, addr)
	}
	return m.canonical, d.Tenant, nil
}

// CreateUser creates a user with a new random ID from u's Address (its
// domain must be hosted here and decides the tenant), Aliases (in domains
// of the same tenant), names and GAL attributes, quota, Protocols,
// Disabled, Source (default SourceBuiltin), ExternalID and ExternalDN;
// u's ID, Tenant, PhotoHash, LocallyDisabled, Vanished and times are
// ignored. A non-empty ExternalID must be unique for its Source
// (ErrExists); connectors use [Directory.UpsertSourcedUser] instead.
//
// A non-empty password is hashed with argon2id. Otherwise u.PasswordHash,
// if set, is imported as is: an argon2id PHC string or a legacy hash that
// VerifyPassword accepts (migrated accounts; it becomes argon2id at the
// first login). With neither, the user cannot log in with a password here
// (LDAP bind).
//
// With Options.Accounts set, the store account (ID = user ID) is
// created first, with the user's quota, and removed again if the directory
// write fails. Errors: ErrInvalid (bad address, domain not hosted, bad
// protocol, negative quota, unverifiable PasswordHash, both password
// kinds), ErrExists (an address is in use).
func (b *Directory) CreateUser(ctx context.Context, u directory.User, password string) (directory.User, error) {
	if err := checkProtocols(u.Protocols); err != nil {
		return directory.User{}, err
	}
	if err := checkQuota(u.QuotaBytes, u.QuotaMessages); err != nil {
		return directory.User{}, err
	}
	if _, err := directory.ParseAddress(u.Address); err != nil {
		return directory.User{}, err
	}
	switch {
	case password != "" && u.PasswordHash != "":
		return directory.User{}, fmt.Errorf("%w: give a password or a password hash, not both", directory.ErrInvalid)
	case password != "":
		h, err := b.hasher.Hash(ctx, password)
		if err != nil {
			return directory.User{}, err
		}
		u.PasswordHash = h
	case u.PasswordHash != "":
		if err := checkHashFormat(u.PasswordHash); err != nil {
			return directory.User{}, fmt.Errorf("%w: password hash: %w", directory.ErrInvalid, err)
		}
	}
	id, err := newID()
	if err != nil {
		return directory.User{}, err
	}
	now := b.now().UTC()
	spec := u
	u.ID, u.Created, u.Updated, u.PhotoHash = id, now, now, ""
	u.Protocols = slices.Clone(u.Protocols)
	if u.Source == "" {
		u.Source = directory.SourceBuiltin
	}
	// A built-in user is only ever disabled here; a synced one is
	// disabled by its source until an administrator does it here.
	u.LocallyDisabled = u.Disabled && !u.IsSourced()
	u.Vanished = time.Time{}
	var out directory.User
	q := store.Quota{MaxBytes: u.QuotaBytes, MaxMessages: u.QuotaMessages}
	err = b.withAccount(ctx, id, q, func() error {
		return b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
			r := txReader{tx}
			nu := u
			addr, tenant, err := tenantAddress(r, spec.Address, "")
			if err != nil {
				return err
			}
			nu.Address, nu.Tenant, nu.Aliases = addr, tenant, nil
			if err := claim(tx, addr, addrRef{refUser, id}, refUser); err != nil {
				return err
			}
			for _, a := range spec.Aliases {
				alias, _, err := tenantAddress(r, a, tenant)
				if err != nil {
					return err
				}
				if err := claim(tx, alias, addrRef{refUser, id}, refSecondary); err != nil {
					return err
				}
				nu.Aliases = append(nu.Aliases, alias)
			}
			slices.Sort(nu.Aliases)
			if err := claimExternal(tx, refUser, nu.Source, nu.ExternalID, id); err != nil {
				return err
			}
			out = nu
			if err := galPut(tx, refUser, id, galFromUser(nu)); err != nil {
				return err
			}
			return putJSON(tx, nsUser, id, nu, 0)
		})
	})
	if err != nil {
		return directory.User{}, fmt.Errorf("directory: create user %q: %w", spec.Address, err)
	}
	return out, nil
}

// User returns a user by ID, including its password hash.
func (b *Directory) User(ctx context.Context, id string) (directory.User, error) {
	var u directory.User
	_, err := getJSON(storeReader{ctx, b.records}, nsUser, id, &u)
	return u, err
}

// UserByAddress returns the user whose primary address or alias is addr
// (exactly; no sub-addressing), including its password hash. ErrNotFound
// if no user has it.
func (b *Directory) UserByAddress(ctx context.Context, addr string) (directory.User, error) {
	u, _, err := b.loginUser(storeReader{ctx, b.records}, addr)
	return u, err
}

// ListUsers returns up to limit users ordered by primary address (by
// domain, then local part), starting after the address after ("" from the
// beginning). A non-empty domain (main or alternative name) restricts the
// listing to that domain. limit <= 0 means DefaultListLimit; at most
// MaxListLimit are returned.
func (b *Directory) ListUsers(ctx context.Context, domain, after string, limit int) ([]directory.User, error) {
	return listByAddress[directory.User](ctx, b, refUser, nsUser, domain, after, limit)
}

// listByAddress pages through the listing index of one kind and loads
// each entity from ns.
func listByAddress[T any](ctx context.Context, b *Directory, kind, ns, domain, afterAddr string, limit int) ([]T, error) {
	r := storeReader{ctx, b.records}
	prefix := kind + "/"
	if domain != "" {
		d, err := directory.CanonicalDomain(domain)
		if err != nil {
			return nil, err
		}
		main, err := mainDomain(r, d)
		if err != nil {
			return nil, err
		}
		prefix += main + "/"
	}
	after := ""
	if afterAddr != "" {
		a, err := directory.CanonicalAddress(afterAddr)
		if err != nil {
			return nil, err
		}
		after = indexKey(kind, a)
	}
	recs, err := listPrefix(r, nsIndex, prefix, after, pageLimit(limit))
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(recs))
	for _, rec := range recs {
		var v T
		if _, err := getJSON(r, ns, string(rec.Value), &v); err != nil {
			if errors.Is(err, directory.ErrNotFound) {
				continue // deleted between the two reads
			}
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// updateUser applies fn to a user in one transaction and stamps Updated.
func (b *Directory) updateUser(ctx context.Context, id string, fn func(store.RecordTx, *directory.User) error) (directory.User, error) {
	out, err := updateJSON(ctx, b.records, nsUser, id, func(tx store.RecordTx, u *directory.User) error {
		if err := fn(tx, u); err != nil {
			return err
		}
		u.Updated = b.now().UTC()
		return galPut(tx, refUser, id, galFromUser(*u))
	})
	if err != nil {
		return directory.User{}, fmt.Errorf("directory: update user %q: %w", id, err)
	}
	return out, nil
}

// UpdateUser changes the fields set in up. If a quota field is set and
// Options.Accounts is configured, the store account's quota is set
// after the directory write.
func (b *Directory) UpdateUser(ctx context.Context, id string, up UserUpdate) (directory.User, error) {
	if up.Protocols != nil {
		if err := checkProtocols(*up.Protocols); err != nil {
			return directory.User{}, err
		}
	}
	u, err := b.updateUser(ctx, id, func(_ store.RecordTx, u *directory.User) error {
		setIf(&u.DisplayName, up.DisplayName)
		setIf(&u.GivenName, up.GivenName)
		setIf(&u.Surname, up.Surname)
		setIf(&u.Title, up.Title)
		setIf(&u.Department, up.Department)
		setIf(&u.Phone, up.Phone)
		setIf(&u.QuotaBytes, up.QuotaBytes)
		setIf(&u.QuotaMessages, up.QuotaMessages)
		if up.Protocols != nil {
			u.Protocols = slices.Clone(*up.Protocols)
		}
		return checkQuota(u.QuotaBytes, u.QuotaMessages)
	})
	if err != nil {
		return directory.User{}, err
	}
	if b.accounts != nil && (up.QuotaBytes != nil || up.QuotaMessages != nil) {
		q := store.Quota{MaxBytes: u.QuotaBytes, MaxMessages: u.QuotaMessages}
		if err := b.accounts.SetQuota(ctx, id, q); err != nil {
			return u, fmt.Errorf("directory: user %q updated, but setting the account quota failed (retry the update): %w", id, err)
		}
	}
	return u, nil
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// SetPassword replaces the user's password with an argon2id hash of pw.
func (b *Directory) SetPassword(ctx context.Context, id, pw string) error {
	h, err := b.hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	_, err = b.updateUser(ctx, id, func(_ store.RecordTx, u *directory.User) error {
		u.PasswordHash = h
		return nil
	})
	return err
}

// SetDisabled disables (blocks) or enables a user. Disabled users cannot
// log in and receive no mail. An administrator's choice is kept by later
// syncs of a synced user (User.LocallyDisabled), except that a source
// disabling the user wins. A user that vanished from its source cannot be
// enabled here (ErrInvalid): it is enabled again when the source lists it
// again, or deleted.
func (b *Directory) SetDisabled(ctx context.Context, id string, disabled bool) error {
	_, err := b.updateUser(ctx, id, func(_ store.RecordTx, u *directory.User) error {
		if !disabled && !u.Vanished.IsZero() {
			return fmt.Errorf("%w: user %s vanished from %s at %s and stays disabled until it is listed there again",
				directory.ErrInvalid, u.Address, u.Source, u.Vanished.UTC().Format(time.RFC3339))
		}
		u.Disabled, u.LocallyDisabled = disabled, disabled
		return nil
	})
	return err
}

// AddUserAlias gives the user a further address in a domain of its tenant.
// ErrExists if the address is in use.
func (b *Directory) AddUserAlias(ctx context.Context, id, addr string) (directory.User, error) {
	return b.updateUser(ctx, id, func(tx store.RecordTx, u *directory.User) error {
		a, _, err := tenantAddress(txReader{tx}, addr, u.Tenant)
		if err != nil {
			return err
		}
		if err := claim(tx, a, addrRef{refUser, id}, refSecondary); err != nil {
			return err
		}
		u.Aliases = append(u.Aliases, a)
		slices.Sort(u.Aliases)
		return nil
	})
}

// RemoveUserAlias removes one of the user's further addresses (not the
// primary one). ErrNotFound if the user has no such alias. Group members
// and alias targets naming the removed address are dropped with it.
func (b *Directory) RemoveUserAlias(ctx context.Context, id, addr string) (directory.User, error) {
	return b.updateUser(ctx, id, func(tx store.RecordTx, u *directory.User) error {
		m, err := mapAddress(txReader{tx}, addr)
		if err != nil {
			return err
		}
		i := slices.Index(u.Aliases, m.canonical)
		if m.canonical == "" || i < 0 {
			return fmt.Errorf("%w: %q is not an alias of user %q", directory.ErrNotFound, addr, id)
		}
		u.Aliases = slices.Delete(u.Aliases, i, i+1)
		if err := release(tx, m.canonical, refSecondary); err != nil {
			return err
		}
		return b.dropReferences(ctx, tx, []string{m.canonical}, "")
	})
}

// DeleteUser deletes a user: its addresses, its SendAs rights, its
// membership in groups and its place among alias targets (an alias left
// without targets is deleted too), all in one transaction; then, with
// Options.Accounts set, its store account and everything in it.
// That transaction also records the account as still to be deleted, so
// that a crash or store error before the account is gone leaves a
// record that [Directory.CompleteDeletions] finishes. Synced users are
// deleted like any other (their source may list them again: they come
// back as new users with an empty mailbox).
func (b *Directory) DeleteUser(ctx context.Context, id string) error {
	return b.deleteUser(ctx, id, nil)
}

// DeleteVanished deletes a user as [Directory.DeleteUser] does, with its
// store account and mail, provided it vanished from its source at or
// before cutoff ([Directory.MarkVanished]). The condition is checked in
// the deleting transaction, so a user listed again meanwhile is kept:
// ErrInvalid.
func (b *Directory) DeleteVanished(ctx context.Context, id string, cutoff time.Time) error {
	return b.deleteUser(ctx, id, func(u directory.User) error {
		if u.Vanished.IsZero() || u.Vanished.After(cutoff) {
			return fmt.Errorf("%w: user %s has not been missing from its source since %s", directory.ErrInvalid, u.Address, cutoff.UTC().Format(time.RFC3339))
		}
		return nil
	})
}

// deleteUser deletes the user if check (when set) accepts it.
func (b *Directory) deleteUser(ctx context.Context, id string, check func(directory.User) error) error {
	var u directory.User
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		u = directory.User{}
		if _, err := getJSON(txReader{tx}, nsUser, id, &u); err != nil {
			return err
		}
		if check != nil {
			if err := check(u); err != nil {
				return err
			}
		}
		if err := b.markDrop(tx, refUser, id, u.Address); err != nil {
			return err
		}
		if err := release(tx, u.Address, refUser); err != nil {
			return err
		}
		for _, a := range u.Aliases {
			if err := release(tx, a, refSecondary); err != nil {
				return err
			}
		}
		if err := b.dropReferences(ctx, tx, append([]string{u.Address}, u.Aliases...), id); err != nil {
			return err
		}
		if err := releaseExternal(tx, refUser, u.Source, u.ExternalID); err != nil {
			return err
		}
		if err := galPut(tx, refUser, id, nil); err != nil {
			return err
		}
		if err := deleteRecord(tx, nsPhoto, id); err != nil {
			return err
		}
		return deleteRecord(tx, nsUser, id)
	})
	if err != nil {
		return fmt.Errorf("directory: delete user %q: %w", id, err)
	}
	b.log.InfoContext(ctx, "directory: user deleted", "user", u.Address, "id", id, "source", u.Source)
	return b.dropAccount(ctx, refUser, id)
}

// dropReferences removes the given canonical addresses from every group's
// members and every alias's targets, and userID (if set) from every
// group's SendAs. An alias left without targets is deleted, and its own
// address is dropped in turn.
func (b *Directory) dropReferences(ctx context.Context, tx store.RecordTx, addrs []string, userID string) error {
	r := txReader{tx}
	if userID != "" {
		var groups []string
		err := forEach(r, nsSendAs, userID+"/", func(rec store.Record) error {
			_, gid, _ := strings.Cut(rec.Key, "/")
			groups = append(groups, gid)
			return deleteRecord(tx, nsSendAs, rec.Key)
		})
		if err != nil {
			return err
		}
		for _, gid := range groups {
			var g directory.Group
			v, err := getJSON(r, nsGroup, gid, &g)
			if errors.Is(err, directory.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			g.SendAs = slices.DeleteFunc(g.SendAs, func(s string) bool { return s == userID })
			if err := putJSON(tx, nsGroup, gid, g, v); err != nil {
				return err
			}
		}
	}
	gone := map[string]bool{}
	for len(addrs) > 0 {
		for _, a := range addrs {
			gone[a] = true
		}
		addrs = nil
		refersToGone := func(target string) bool {
			if gone[target] {
				return true
			}
			at := strings.LastIndexByte(target, '@')
			base, _, ok := directory.SplitSubaddress(target[:at])
			return ok && gone[base+target[at:]]
		}
		type change struct {
			key     string
			version int64
			value   any
		}
		var changes []change
		err := forEach(r, nsGroup, "", func(rec store.Record) error {
			var g directory.Group
			if err := decode(rec, &g); err != nil {
				return err
			}
			n := len(g.Members)
			g.Members = slices.DeleteFunc(g.Members, refersToGone)
			if len(g.Members) != n {
				changes = append(changes, change{rec.Key, rec.Version, g})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range changes {
			if err := putJSON(tx, nsGroup, c.key, c.value, c.version); err != nil {
				return err
			}
		}
		changes = changes[:0]
		var emptied []string
		err = forEach(r, nsAlias, "", func(rec store.Record) error {
			var al directory.Alias
			if err := decode(rec, &al); err != nil {
				return err
			}
			n := len(al.Targets)
			al.Targets = slices.DeleteFunc(al.Targets, refersToGone)
			switch {
			case len(al.Targets) == 0:
				emptied = append(emptied, al.Address)
			case len(al.Targets) != n:
				changes = append(changes, change{rec.Key, rec.Version, al})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range changes {
			if err := putJSON(tx, nsAlias, c.key, c.value, c.version); err != nil {
				return err
			}
		}
		for _, a := range emptied {
			b.log.InfoContext(ctx, "directory: deleting alias left without targets", "alias", a)
			if err := deleteRecord(tx, nsAlias, a); err != nil {
				return err
			}
			if err := release(tx, a, refAlias); err != nil {
				return err
			}
			addrs = append(addrs, a)
		}
	}
	return nil
}
