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

// The global address list (GAL) is kept as an index next to the entities,
// written in the same transaction as every change to a user, group or
// resource:
//
//	gal       TENANT/SORTKEY          -> GALEntry (JSON)
//	galref    KIND/ID                 -> TENANT/SORTKEY (where the entry is)
//	galtoken  TENANT/TOKEN<US>SORTKEY -> TENANT/SORTKEY
//	galinner  TENANT/SUFFIX<US>SORTKEY -> TENANT/SORTKEY
//
// SORTKEY is the lowercase display name (or address), a unit separator
// (U+001F) and KIND/ID, so listing the gal namespace pages through a
// tenant in display-name order, and a token prefix finds the entries that
// have a word starting with it. galinner holds every suffix of every
// token that starts after its first character
// (directory.GALInnerSuffixes): a word occurs inside a token exactly when
// it is a prefix of the token or of one of those suffixes, so a query
// with Contains reads both namespaces by prefix, as a word-prefix query
// reads galtoken, and never the whole list. It costs a key per character
// of each token (about 50 per user), the price of substring search
// without a scan.
//
// The namespaces are declared in namespaces.go.
const galSep = "\x1f"

func galLimit(n int) int {
	switch {
	case n <= 0:
		return directory.DefaultGALLimit
	case n > directory.MaxGALLimit:
		return directory.MaxGALLimit
	}
	return n
}

func kindName(k directory.EntryKind) string {
	switch k {
	case directory.KindUser:
		return refUser
	case directory.KindGroup:
		return refGroup
	case directory.KindResource:
		return refResource
	case directory.KindContact:
		return refContact
	}
	return "other"
}

func galFromUser(u directory.User) *directory.GALEntry {
	if u.Disabled {
		return nil // blocked users are not shown
	}
	return &directory.GALEntry{
		Kind: directory.KindUser, ID: u.ID, Tenant: u.Tenant, Address: u.Address, Aliases: u.Aliases,
		DisplayName: u.DisplayName, GivenName: u.GivenName, Surname: u.Surname,
		Title: u.Title, Department: u.Department, Company: u.Company, Office: u.Office,
		Phone: u.Phone, Mobile: u.Mobile, HasPhoto: u.PhotoHash != "",
	}
}

func galFromGroup(g directory.Group) *directory.GALEntry {
	return &directory.GALEntry{Kind: directory.KindGroup, ID: g.ID, Tenant: g.Tenant, Address: g.Address, Aliases: g.Aliases, DisplayName: g.DisplayName}
}

func galFromResource(r directory.Resource) *directory.GALEntry {
	return &directory.GALEntry{
		Kind: directory.KindResource, ID: r.ID, Tenant: r.Tenant, Address: r.Address, DisplayName: r.DisplayName,
		ResourceKind: r.Kind, Capacity: r.Capacity, Location: r.Location,
	}
}

// sortKey orders entries by display name, then kind and ID.
func sortKey(e *directory.GALEntry) string {
	name := e.DisplayName
	if name == "" {
		name = e.Address
	}
	return e.Tenant + "/" + strings.ToLower(directory.CleanGALToken(name)) + galSep + kindName(e.Kind) + "/" + e.ID
}

// galPut replaces the GAL entry of kind/id with e (nil removes it).
func galPut(tx store.RecordTx, kind, id string, e *directory.GALEntry) error {
	return galWrite(tx, kind, id, e, false)
}

// galIndexKeys lists the index records of an entry stored under key:
// its tokens (galtoken) and their inner suffixes (galinner), each once.
func galIndexKeys(e *directory.GALEntry, key string) (tokens, inner []string) {
	seen := map[string]bool{}
	for _, t := range e.Tokens() {
		tokens = append(tokens, e.Tenant+"/"+t+galSep+key)
		for _, sfx := range directory.GALInnerSuffixes(t) {
			if !seen[sfx] {
				seen[sfx] = true
				inner = append(inner, e.Tenant+"/"+sfx+galSep+key)
			}
		}
	}
	return tokens, inner
}

// galWrite is galPut; rewrite writes the index records of an entry
// whose words did not change too (ReindexGAL).
func galWrite(tx store.RecordTx, kind, id string, e *directory.GALEntry, rewrite bool) error {
	r := txReader{tx}
	ref := kind + "/" + id
	old, err := r.get(nsGALRef, ref)
	switch {
	case err == nil:
		oldKey := string(old.Value)
		var oe directory.GALEntry
		if _, err := getJSON(r, nsGAL, oldKey, &oe); err == nil {
			if e != nil && !rewrite && sortKey(e) == oldKey && slices.Equal(e.Tokens(), oe.Tokens()) {
				// Same place, same words: only the entry changes.
				return putJSON(tx, nsGAL, oldKey, e, -1)
			}
			tokens, inner := galIndexKeys(&oe, oldKey)
			for _, k := range tokens {
				if err := deleteRecord(tx, nsGALToken, k); err != nil {
					return err
				}
			}
			for _, k := range inner {
				if err := deleteRecord(tx, nsGALInner, k); err != nil {
					return err
				}
			}
		} else if !errors.Is(err, directory.ErrNotFound) {
			return err
		}
		if err := deleteRecord(tx, nsGAL, oldKey); err != nil {
			return err
		}
		if err := deleteRecord(tx, nsGALRef, ref); err != nil {
			return err
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("directory: read %s %q: %w", nsGALRef, ref, err)
	}
	if e == nil || e.Tenant == "" {
		return nil
	}
	key := sortKey(e)
	if err := putJSON(tx, nsGAL, key, e, -1); err != nil {
		return err
	}
	tokens, inner := galIndexKeys(e, key)
	for _, k := range tokens {
		if err := putRaw(tx, nsGALToken, k, []byte(key), -1); err != nil {
			return err
		}
	}
	for _, k := range inner {
		if err := putRaw(tx, nsGALInner, k, []byte(key), -1); err != nil {
			return err
		}
	}
	return putRaw(tx, nsGALRef, ref, []byte(key), -1)
}

// SearchGAL returns a page of a tenant's global address list: users that
// are not disabled, groups and resources, in display-name order, matching
// q.Text (see [GALQuery]; with q.Contains each word anywhere inside a
// word or address). It is the source of the global address book.
// ErrInvalid if the tenant is empty or a query word matches more than
// MaxGALMatches entries.
func (b *Directory) SearchGAL(ctx context.Context, q directory.GALQuery) (directory.GALPage, error) {
	if q.Tenant == "" {
		return directory.GALPage{}, fmt.Errorf("%w: GAL query without tenant", directory.ErrInvalid)
	}
	if err := checkID(q.Tenant); err != nil {
		return directory.GALPage{}, err
	}
	limit := galLimit(q.Limit)
	prefix := q.Tenant + "/"
	after := ""
	if q.After != "" {
		after = prefix + q.After
	}
	wantKind := func(k directory.EntryKind) bool { return len(q.Kinds) == 0 || slices.Contains(q.Kinds, k) }
	r := storeReader{ctx, b.records}
	words := directory.GALQueryWords(q.Text)
	var page directory.GALPage
	last := ""
	// add appends e, or reports false once the page is full, setting Next:
	// a further match proves there is a next page.
	add := func(key string, e directory.GALEntry) bool {
		if len(page.Entries) == limit {
			page.Next = strings.TrimPrefix(last, prefix)
			return false
		}
		page.Entries = append(page.Entries, e)
		last = key
		return true
	}
	if len(words) == 0 {
		// Walk the tenant's entries in order.
		for {
			recs, err := listPrefix(r, nsGAL, prefix, after, limit+1)
			if err != nil {
				return directory.GALPage{}, err
			}
			for _, rec := range recs {
				after = rec.Key
				var e directory.GALEntry
				if err := decode(rec, &e); err != nil {
					return directory.GALPage{}, err
				}
				if wantKind(e.Kind) && !add(rec.Key, e) {
					return page, nil
				}
			}
			if len(recs) < limit+1 {
				return page, nil
			}
		}
	}
	// The longest word is the most selective: collect its candidates from
	// the token index (and for Contains the inner index), then check
	// every word on each candidate.
	scan := slices.MaxFunc(words, func(a, b string) int { return len(a) - len(b) })
	matches := (*directory.GALEntry).Matches
	indexes := []string{nsGALToken}
	if q.Contains {
		matches = (*directory.GALEntry).MatchesInside
		indexes = append(indexes, nsGALInner)
	}
	var keys []string
	seen := map[string]bool{}
	for _, ns := range indexes {
		err := forEach(r, ns, prefix+scan, func(rec store.Record) error {
			k := string(rec.Value)
			if k <= after || seen[k] {
				return nil
			}
			if len(seen) >= directory.MaxGALMatches {
				return fmt.Errorf("%w: %q matches too many entries; type more", directory.ErrInvalid, scan)
			}
			seen[k] = true
			keys = append(keys, k)
			return nil
		})
		if err != nil {
			return directory.GALPage{}, err
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		var e directory.GALEntry
		if _, err := getJSON(r, nsGAL, k, &e); err != nil {
			if errors.Is(err, directory.ErrNotFound) {
				continue // changed since the token was read
			}
			return directory.GALPage{}, err
		}
		if wantKind(e.Kind) && matches(&e, words) && !add(k, e) {
			break
		}
	}
	return page, nil
}

// GALEntry returns the global address list's entry of one user, group
// or resource by ID, exactly as [Directory.SearchGAL] lists it.
// ErrNotFound if the entry is not in the list (unknown, deleted, or a
// disabled user); ErrInvalid for another kind or a malformed ID.
func (b *Directory) GALEntry(ctx context.Context, kind directory.EntryKind, id string) (directory.GALEntry, error) {
	switch kind {
	case directory.KindUser, directory.KindGroup, directory.KindResource:
	default:
		return directory.GALEntry{}, fmt.Errorf("%w: kind %d has no GAL entry", directory.ErrInvalid, kind)
	}
	if err := checkID(id); err != nil {
		return directory.GALEntry{}, err
	}
	r := storeReader{ctx, b.records}
	ref, err := r.get(nsGALRef, kindName(kind)+"/"+id)
	if errors.Is(err, store.ErrNotFound) {
		return directory.GALEntry{}, fmt.Errorf("%w: no GAL entry for %s %q", directory.ErrNotFound, kindName(kind), id)
	}
	if err != nil {
		return directory.GALEntry{}, fmt.Errorf("directory: read %s: %w", nsGALRef, err)
	}
	var e directory.GALEntry
	if _, err := getJSON(r, nsGAL, string(ref.Value), &e); err != nil {
		return directory.GALEntry{}, err
	}
	return e, nil
}

// ReindexGAL rebuilds the global address list from the users, groups and
// resources, for data written before the index existed or repaired by
// hand. It is idempotent and safe while the directory is in use.
func (b *Directory) ReindexGAL(ctx context.Context) error {
	type item struct {
		kind, id string
		e        *directory.GALEntry
	}
	var items []item
	r := storeReader{ctx, b.records}
	collect := func(ns string, fn func(store.Record) (item, error)) error {
		return forEach(r, ns, "", func(rec store.Record) error {
			it, err := fn(rec)
			if err != nil {
				return err
			}
			items = append(items, it)
			return nil
		})
	}
	err := collect(nsUser, func(rec store.Record) (item, error) {
		var u directory.User
		err := decode(rec, &u)
		return item{refUser, u.ID, galFromUser(u)}, err
	})
	if err == nil {
		err = collect(nsGroup, func(rec store.Record) (item, error) {
			var g directory.Group
			err := decode(rec, &g)
			return item{refGroup, g.ID, galFromGroup(g)}, err
		})
	}
	if err == nil {
		err = collect(nsResource, func(rec store.Record) (item, error) {
			var x directory.Resource
			err := decode(rec, &x)
			return item{refResource, x.ID, galFromResource(x)}, err
		})
	}
	if err != nil {
		return err
	}
	// Entries whose entity is gone (written by hand) are removed.
	live := map[string]bool{}
	for _, it := range items {
		live[it.kind+"/"+it.id] = true
	}
	err = forEach(r, nsGALRef, "", func(rec store.Record) error {
		if !live[rec.Key] {
			kind, id, _ := strings.Cut(rec.Key, "/")
			items = append(items, item{kind, id, nil})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for chunk := range slices.Chunk(items, 200) {
		err := b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
			for _, it := range chunk {
				if err := galWrite(tx, it.kind, it.id, it.e, true); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("directory: reindex GAL: %w", err)
		}
	}
	return nil
}

// galIndexVersion marks, in the gal namespace's meta record, that the
// index covers every entry (written by EnsureGAL). v2 added galinner:
// data indexed under v1 is reindexed once. v3 folds tokens with full
// case folding (directory's galFold): the tokens of v1 and v2 (lower
// case) are dropped and rebuilt once, since the words of an entry under
// the new folding do not name the old records.
const galIndexVersion = "gal-index-v3"

// EnsureGAL builds the global address list once for data written before
// the index existed or under an older form of it, and remembers that it
// did; later calls cost one read. A server calls it at start, before it
// serves: while an older index is rebuilt, searches find less.
func (b *Directory) EnsureGAL(ctx context.Context) error {
	r := storeReader{ctx, b.records}
	ok, err := exists(r, nsMeta, galIndexVersion)
	if err != nil || ok {
		return err
	}
	for _, ns := range []string{nsGALToken, nsGALInner} {
		if err := b.dropNamespace(ctx, ns); err != nil {
			return err
		}
	}
	if err := b.ReindexGAL(ctx); err != nil {
		return err
	}
	return b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return putRaw(tx, nsMeta, galIndexVersion, []byte("1"), -1)
	})
}

// dropNamespace deletes every record of ns, a bounded page per
// transaction.
func (b *Directory) dropNamespace(ctx context.Context, ns string) error {
	r := storeReader{ctx, b.records}
	for {
		recs, err := listPrefix(r, ns, "", "", MaxListLimit)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		err = b.records.UpdateRecords(ctx, func(tx store.RecordTx) error {
			for _, rec := range recs {
				if err := deleteRecord(tx, ns, rec.Key); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("directory: drop %s: %w", ns, err)
		}
	}
}
