package builtin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// Kinds as stored in the addr and index namespaces.
const (
	refUser      = "user"
	refGroup     = "group"
	refAlias     = "alias"
	refResource  = "resource"
	refSecondary = "secondary"
)

// Paging bounds of the List calls.
const (
	// DefaultListLimit is used when ListOptions.Limit is 0 or negative.
	DefaultListLimit = 100
	// MaxListLimit caps ListOptions.Limit.
	MaxListLimit = 1000
)

// Options configures [New]. The zero value works.
type Options struct {
	// Accounts, if set, keeps store accounts in step with the directory:
	// CreateUser and CreateResource create the account (with the user's
	// quota), quota changes call SetQuota, DeleteUser and DeleteResource
	// delete it.
	Accounts store.Accounts
	// Logger receives warnings (never secrets). Nil discards.
	Logger *slog.Logger
	// Now is the clock for Created/Updated times. Nil means time.Now.
	Now func() time.Time
	// Hasher hashes and verifies passwords. Nil means
	// NewPasswordHasher(0) (at most GOMAXPROCS computations at once).
	Hasher *PasswordHasher
}

// Directory is the built-in directory. It keeps everything in
// [store.Records] and reads the records on every lookup, without a cache,
// so that several processes sharing one data directory (the server and an
// admin command) always agree. It is safe for concurrent use.
type Directory struct {
	records  store.Records
	accounts store.Accounts
	log      *slog.Logger
	now      func() time.Time
	hasher   *PasswordHasher
}

var _ directory.Directory = (*Directory)(nil)

// New returns a directory persisted in records.
func New(records store.Records, opts Options) *Directory {
	b := &Directory{records: records, accounts: opts.Accounts, log: opts.Logger, now: opts.Now, hasher: opts.Hasher}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.hasher == nil {
		b.hasher = NewPasswordHasher(0)
	}
	return b
}

func pageLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultListLimit
	case n > MaxListLimit:
		return MaxListLimit
	}
	return n
}

// addrRef is the value of an addr record.
type addrRef struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// reader is the read side shared by transactions and plain lookups, so
// that admin operations validate with the same code the lookups use.
type reader interface {
	get(ns, key string) (store.Record, error)
	list(ns, after string, limit int) ([]store.Record, error)
}

type storeReader struct {
	ctx context.Context
	r   store.Records
}

func (s storeReader) get(ns, key string) (store.Record, error) { return s.r.GetRecord(s.ctx, ns, key) }
func (s storeReader) list(ns, after string, limit int) ([]store.Record, error) {
	return s.r.ListRecords(s.ctx, ns, after, limit)
}

type txReader struct{ tx store.RecordTx }

func (t txReader) get(ns, key string) (store.Record, error) { return t.tx.Get(ns, key) }
func (t txReader) list(ns, after string, limit int) ([]store.Record, error) {
	return t.tx.List(ns, after, limit)
}

// getJSON reads and decodes one record. A missing record is an error
// wrapping ErrNotFound; any other failure is an infrastructure error.
func getJSON(r reader, ns, key string, v any) (int64, error) {
	rec, err := r.get(ns, key)
	if errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("%w: %s %q", directory.ErrNotFound, ns, key)
	}
	if err != nil {
		return 0, fmt.Errorf("directory: read %s %q: %w", ns, key, err)
	}
	if err := store.DecodeJSON(rec, v); err != nil {
		return 0, fmt.Errorf("directory: %s: %w", ns, err)
	}
	return rec.Version, nil
}

// updateJSON applies fn to the entity stored as JSON under ns/key and writes
// it back, in one transaction; the write requires the version read, so a
// concurrent writer of the same record is never overwritten. ErrNotFound
// if the record does not exist.
func updateJSON[T any](ctx context.Context, records store.Records, ns, key string, fn func(store.RecordTx, *T) error) (T, error) {
	var out T
	err := records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		var v T
		version, err := getJSON(txReader{tx}, ns, key, &v)
		if err != nil {
			return err
		}
		if err := fn(tx, &v); err != nil {
			return err
		}
		out = v
		return putJSON(tx, ns, key, v, version)
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

func decode(rec store.Record, v any) error {
	if err := store.DecodeJSON(rec, v); err != nil {
		return fmt.Errorf("directory: %s: %w", rec.Namespace, err)
	}
	return nil
}

// putJSON writes one record; expect as in store.RecordTx.Put. A failed
// "must not exist" precondition becomes ErrExists.
func putJSON(tx store.RecordTx, ns, key string, v any, expect int64) error {
	return putErr(store.PutJSON(tx, ns, key, v, expect), ns, key, expect)
}

func putRaw(tx store.RecordTx, ns, key string, data []byte, expect int64) error {
	return putErr(tx.Put(ns, key, data, expect), ns, key, expect)
}

// putErr is the error of a write of ns/key with precondition expect.
func putErr(err error, ns, key string, expect int64) error {
	if errors.Is(err, store.ErrPreconditionFailed) && expect == 0 {
		return fmt.Errorf("%w: %s %q", directory.ErrExists, ns, key)
	}
	if err != nil {
		return fmt.Errorf("directory: write %s %q: %w", ns, key, err)
	}
	return nil
}

func deleteRecord(tx store.RecordTx, ns, key string) error {
	if err := tx.Delete(ns, key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("directory: delete %s %q: %w", ns, key, err)
	}
	return nil
}

// exists reports whether a record exists.
func exists(r reader, ns, key string) (bool, error) {
	_, err := r.get(ns, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("directory: read %s %q: %w", ns, key, err)
}

// listPrefix returns up to limit records of ns whose keys start with
// prefix and sort after after (which may be empty).
func listPrefix(r reader, ns, prefix, after string, limit int) ([]store.Record, error) {
	start := prefix
	if after > start {
		start = after
	}
	recs, err := r.list(ns, start, limit)
	if err != nil {
		return nil, fmt.Errorf("directory: list %s: %w", ns, err)
	}
	for i, rec := range recs {
		if !strings.HasPrefix(rec.Key, prefix) {
			return recs[:i], nil
		}
	}
	return recs, nil
}

// forEach calls fn for every record of ns whose key starts with prefix,
// in key order, reading in pages.
func forEach(r reader, ns, prefix string, fn func(store.Record) error) error {
	after := ""
	for {
		recs, err := listPrefix(r, ns, prefix, after, MaxListLimit)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if err := fn(rec); err != nil {
				return err
			}
		}
		if len(recs) < MaxListLimit {
			return nil
		}
		after = recs[len(recs)-1].Key
	}
}

func indexKey(kind, canonical string) string {
	at := strings.LastIndexByte(canonical, '@')
	return kind + "/" + canonical[at+1:] + "/" + canonical[:at]
}

// addressFromIndexKey inverts indexKey. Domains never hold '/', so the
// first two slashes delimit kind and domain.
func addressFromIndexKey(key string) string {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) != 3 {
		return ""
	}
	return parts[2] + "@" + parts[1]
}

func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("directory: new ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// mapped is an address after alternative domain mapping.
type mapped struct {
	parsed    directory.Address // as given, domain lowercase
	canonical string            // lowercase local part @ main domain; "" if not hosted
	domain    string            // main domain name; "" if not hosted
}

// mapAddress parses addr and maps its domain to the main domain name if it
// is hosted here.
func mapAddress(r reader, addr string) (mapped, error) {
	a, err := directory.ParseAddress(addr)
	if err != nil {
		return mapped{}, err
	}
	m := mapped{parsed: a}
	main, err := mainDomain(r, a.Domain)
	if errors.Is(err, directory.ErrNotFound) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	m.domain = main
	m.canonical = a.CanonicalIn(main)
	return m, nil
}

// mainDomain returns the main name of a hosted domain name (canonical).
func mainDomain(r reader, name string) (string, error) {
	rec, err := r.get(nsDomainName, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: domain %q is not hosted here", directory.ErrNotFound, name)
	}
	if err != nil {
		return "", fmt.Errorf("directory: read domain name %q: %w", name, err)
	}
	return string(rec.Value), nil
}

// hostedAddress maps addr and requires its domain to be hosted.
func hostedAddress(r reader, addr string) (mapped, directory.Domain, error) {
	m, err := mapAddress(r, addr)
	if err != nil {
		return m, directory.Domain{}, err
	}
	if m.domain == "" {
		return m, directory.Domain{}, fmt.Errorf("%w: domain of %q is not hosted here", directory.ErrInvalid, addr)
	}
	var d directory.Domain
	if _, err := getJSON(r, nsDomain, m.domain, &d); err != nil {
		return m, directory.Domain{}, err
	}
	return m, d, nil
}

// lookupRef returns the addr record of a canonical address.
func lookupRef(r reader, canonical string) (addrRef, error) {
	var ref addrRef
	_, err := getJSON(r, nsAddr, canonical, &ref)
	return ref, err
}

// resolveRef finds the entry for a canonical address, applying
// sub-addressing: "user+tag@d" falls back to "user@d" unless it exists
// itself (RFC 5233 describes the convention). It returns the address that
// matched.
func resolveRef(r reader, canonical string) (addrRef, string, error) {
	ref, err := lookupRef(r, canonical)
	if !errors.Is(err, directory.ErrNotFound) {
		return ref, canonical, err
	}
	at := strings.LastIndexByte(canonical, '@')
	base, _, ok := directory.SplitSubaddress(canonical[:at])
	if !ok {
		return ref, canonical, err
	}
	stripped := base + canonical[at:]
	ref, err = lookupRef(r, stripped)
	return ref, stripped, err
}

// loadEntry reads the entity an addr record points at.
func loadEntry(r reader, ref addrRef, matched string) (directory.Entry, error) {
	e := directory.Entry{Address: matched}
	var err error
	switch ref.Kind {
	case refUser:
		e.Kind, e.User = directory.KindUser, new(directory.User)
		_, err = getJSON(r, nsUser, ref.ID, e.User)
	case refGroup:
		e.Kind, e.Group = directory.KindGroup, new(directory.Group)
		_, err = getJSON(r, nsGroup, ref.ID, e.Group)
	case refAlias:
		e.Kind, e.Alias = directory.KindAlias, new(directory.Alias)
		_, err = getJSON(r, nsAlias, ref.ID, e.Alias)
	case refResource:
		e.Kind, e.Resource = directory.KindResource, new(directory.Resource)
		_, err = getJSON(r, nsResource, ref.ID, e.Resource)
	default:
		return directory.Entry{}, fmt.Errorf("directory: address %q has unknown kind %q", matched, ref.Kind)
	}
	if errors.Is(err, directory.ErrNotFound) {
		// The index and the entity are written in one transaction, so this
		// means the records were changed by hand.
		return directory.Entry{}, fmt.Errorf("directory: address %q points at missing %s %q: %w", matched, ref.Kind, ref.ID, err)
	}
	return e, err
}

// LookupDomain returns the hosted domain that name is, or is an
// alternative name of. ErrNotFound if it is not hosted; ErrInvalid if name
// is not a domain name.
func (b *Directory) LookupDomain(ctx context.Context, name string) (directory.Domain, error) {
	d, err := directory.CanonicalDomain(name)
	if err != nil {
		return directory.Domain{}, err
	}
	r := storeReader{ctx, b.records}
	main, err := mainDomain(r, d)
	if err != nil {
		return directory.Domain{}, err
	}
	var dom directory.Domain
	if _, err := getJSON(r, nsDomain, main, &dom); err != nil {
		return directory.Domain{}, err
	}
	return dom, nil
}

// LookupAddress resolves an address: alternative domain names map to the
// main domain and "user+tag@d" reaches "user@d" unless "user+tag@d" exists.
// Entry.Address is the canonical address that matched. Users are returned
// without their password hash. ErrNotFound if the address (or its domain)
// is unknown; ErrInvalid if it is malformed.
func (b *Directory) LookupAddress(ctx context.Context, address string) (directory.Entry, error) {
	return lookupAddress(storeReader{ctx, b.records}, address)
}

// lookupAddress is LookupAddress reading through r.
func lookupAddress(r reader, address string) (directory.Entry, error) {
	m, err := mapAddress(r, address)
	if err != nil {
		return directory.Entry{}, err
	}
	if m.domain == "" {
		return directory.Entry{}, fmt.Errorf("%w: domain %q is not hosted here", directory.ErrNotFound, m.parsed.Domain)
	}
	ref, matched, err := resolveRef(r, m.canonical)
	if err != nil {
		return directory.Entry{}, err
	}
	e, err := loadEntry(r, ref, matched)
	if err != nil {
		return directory.Entry{}, err
	}
	if e.User != nil {
		e.User.PasswordHash = ""
	}
	return e, nil
}

// Authenticate checks a login (primary address or alias of a user, in any
// case, under the main or an alternative domain name) and password for
// protocol p. The password is checked first, with the same cost for
// unknown logins, so that ErrDisabled and ErrProtocolNotAllowed only tell
// the rightful owner anything. Errors: ErrAuthFailed (unknown login, wrong
// password, user without a password here), ErrDisabled,
// ErrProtocolNotAllowed; anything else is an infrastructure failure.
// A correct password stored in a legacy scheme is re-hashed with argon2id.
func (b *Directory) Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error) {
	r := storeReader{ctx, b.records}
	u, version, err := b.loginUser(r, login)
	if err != nil && !errors.Is(err, directory.ErrNotFound) && !errors.Is(err, directory.ErrInvalid) {
		return directory.User{}, err
	}
	if err != nil || u.PasswordHash == "" {
		if err := b.hasher.VerifyDummy(ctx, password); err != nil {
			return directory.User{}, err
		}
		return directory.User{}, directory.ErrAuthFailed
	}
	ok, err := b.hasher.Verify(ctx, u.PasswordHash, password)
	if errors.Is(err, ErrUnsupportedHash) {
		b.log.WarnContext(ctx, "directory: stored password hash cannot be verified", "user", u.ID, "err", err)
		return directory.User{}, directory.ErrAuthFailed
	}
	if err != nil {
		return directory.User{}, err
	}
	if !ok {
		return directory.User{}, directory.ErrAuthFailed
	}
	if u.Disabled {
		return directory.User{}, directory.ErrDisabled
	}
	if !u.Allows(p) {
		return directory.User{}, directory.ErrProtocolNotAllowed
	}
	if NeedsRehash(u.PasswordHash) {
		b.upgradeHash(ctx, u.ID, version, password)
	}
	u.PasswordHash = ""
	return u, nil
}

// loginUser finds the user whose primary address or alias is login
// (sub-addressing does not apply to logins).
func (b *Directory) loginUser(r reader, login string) (directory.User, int64, error) {
	m, err := mapAddress(r, login)
	if err != nil {
		return directory.User{}, 0, err
	}
	if m.domain == "" {
		return directory.User{}, 0, fmt.Errorf("%w: login domain not hosted", directory.ErrNotFound)
	}
	ref, err := lookupRef(r, m.canonical)
	if err != nil {
		return directory.User{}, 0, err
	}
	if ref.Kind != refUser {
		return directory.User{}, 0, fmt.Errorf("%w: %q is not a user", directory.ErrNotFound, m.canonical)
	}
	var u directory.User
	v, err := getJSON(r, nsUser, ref.ID, &u)
	return u, v, err
}

// upgradeHash replaces a legacy hash after a successful login. Failure
// only costs the upgrade, never the login.
func (b *Directory) upgradeHash(ctx context.Context, id string, version int64, password string) {
	h, err := b.hasher.Hash(ctx, password)
	if err != nil {
		b.log.WarnContext(ctx, "directory: re-hashing password failed", "user", id, "err", err)
		return
	}
	err = b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		var u directory.User
		if _, err := getJSON(txReader{tx}, nsUser, id, &u); err != nil {
			return err
		}
		u.PasswordHash = h
		// Version check: a concurrent password change wins.
		return putJSON(tx, nsUser, id, u, version)
	})
	if err != nil {
		b.log.WarnContext(ctx, "directory: storing re-hashed password failed", "user", id, "err", err)
	}
}

// SendAddresses returns every address the user may use as envelope sender
// or From, sorted: the primary address and aliases, the same local parts
// under each alternative name of their domains, and the addresses (with
// aliases and alternative names) of groups whose SendAs lists the user.
func (b *Directory) SendAddresses(ctx context.Context, userID string) ([]string, error) {
	r := storeReader{ctx, b.records}
	var u directory.User
	if _, err := getJSON(r, nsUser, userID, &u); err != nil {
		return nil, err
	}
	domains := map[string][]string{} // main name -> alternative names
	var out []string
	add := func(addrs ...string) error {
		for _, a := range addrs {
			at := strings.LastIndexByte(a, '@')
			local, dom := a[:at], a[at+1:]
			alts, ok := domains[dom]
			if !ok {
				var d directory.Domain
				if _, err := getJSON(r, nsDomain, dom, &d); err != nil && !errors.Is(err, directory.ErrNotFound) {
					return err
				}
				alts = d.Aliases
				domains[dom] = alts
			}
			out = append(out, a)
			for _, alt := range alts {
				out = append(out, local+"@"+alt)
			}
		}
		return nil
	}
	if err := add(u.Address); err != nil {
		return nil, err
	}
	if err := add(u.Aliases...); err != nil {
		return nil, err
	}
	err := forEach(r, nsSendAs, userID+"/", func(rec store.Record) error {
		var g directory.Group
		_, gid, _ := strings.Cut(rec.Key, "/")
		if _, err := getJSON(r, nsGroup, gid, &g); err != nil {
			if errors.Is(err, directory.ErrNotFound) {
				return nil // group deleted since the index was read
			}
			return err
		}
		if err := add(g.Address); err != nil {
			return err
		}
		return add(g.Aliases...)
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// withAccount runs write, the directory transaction that creates a user or
// resource with ID id. With Options.Accounts set, the store account
// (ID id, quota q) is created first, so that mail can be delivered the
// moment the address resolves, and removed again if write fails, so that a
// failed creation leaves nothing behind. The removal ignores ctx's
// cancellation: a caller giving up is a common reason for write to fail,
// and must not leave an orphan account.
func (b *Directory) withAccount(ctx context.Context, id string, q store.Quota, write func() error) error {
	if b.accounts != nil {
		if _, err := b.accounts.CreateAccount(ctx, id, q); err != nil {
			return fmt.Errorf("creating its store account: %w", err)
		}
	}
	err := write()
	if err != nil && b.accounts != nil {
		if derr := b.accounts.DeleteAccount(context.WithoutCancel(ctx), id); derr != nil {
			b.log.ErrorContext(ctx, "directory: removing the store account of a failed creation", "account", id, "err", derr)
		}
	}
	return err
}

// markDrop records, in the transaction deleting the entry, that its
// store account is to be deleted next (when Options.Accounts is
// set; without it the directory keeps no accounts).
func (b *Directory) markDrop(tx store.RecordTx, kind, id, addr string) error {
	if b.accounts == nil {
		return nil
	}
	return putJSON(tx, nsDrop, id, directory.PendingDeletion{Account: id, Kind: kind, Address: addr, Deleted: b.now().UTC()}, -1)
}

// dropAccount deletes the store account of a user or resource (kind) whose
// directory entry was just deleted, when Options.Accounts is set,
// then the record markDrop wrote. Like withAccount's clean-up it ignores
// ctx's cancellation: the directory change is committed, and a caller
// giving up now must not leave the mailbox of a deleted entry behind. If
// it fails all the same, the record stays for CompleteDeletions.
func (b *Directory) dropAccount(ctx context.Context, kind, id string) error {
	if b.accounts == nil {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	if err := b.accounts.DeleteAccount(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("directory: %s %q deleted, but deleting its account failed (CompleteDeletions retries): %w", kind, id, err)
	}
	err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error { return deleteRecord(tx, nsDrop, id) })
	if err != nil {
		return fmt.Errorf("directory: %s %q and its account deleted, but not the record of it: %w", kind, id, err)
	}
	return nil
}

// CompleteDeletions deletes the store accounts of users and resources
// whose deletion was interrupted between its two steps (a crash, or a
// store error, after the directory entry was deleted and before its
// account was), and returns those it completed. Running it at any time,
// also concurrently with deletions, is safe: a deleted entry's ID is
// never used again. It stops at the first error.
func (b *Directory) CompleteDeletions(ctx context.Context) ([]directory.PendingDeletion, error) {
	var pending []directory.PendingDeletion
	err := forEach(storeReader{ctx, b.records}, nsDrop, "", func(rec store.Record) error {
		var p directory.PendingDeletion
		if err := decode(rec, &p); err != nil {
			return err
		}
		pending = append(pending, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var done []directory.PendingDeletion
	for _, p := range pending {
		if err := b.dropAccount(ctx, p.Kind, p.Account); err != nil {
			return done, err
		}
		b.log.InfoContext(ctx, "directory: completed an interrupted deletion", "kind", p.Kind, "address", p.Address, "account", p.Account)
		done = append(done, p)
	}
	return done, nil
}
