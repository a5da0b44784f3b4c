package memstore

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// collection is a calendar or address book with its objects (by name)
// and its change log for sync tokens (RFC 6578).
type collection struct {
	info    store.Collection
	objects map[string]*store.Object
	log     []objectChange // ascending by token
	pruned  uint64         // tokens below this are no longer in log
}

type objectChange struct {
	token uint64
	store.ObjectChange
}

func (c *collection) out() store.Collection {
	o := c.info
	o.Components = slices.Clone(c.info.Components)
	return o
}

// insertCollection adds a collection to a; c has been validated, unless
// it is one of the defaults. The caller holds s.mu.
func (s *Store) insertCollection(a *account, c store.Collection) store.Collection {
	s.lastCollID++
	c.ID, c.SyncToken, c.Account = s.lastCollID, 1, a.info.ID
	s.colls[c.ID] = &collection{info: c, objects: make(map[string]*store.Object)}
	a.colls[collKey{c.Kind, c.Name}] = c.ID
	return c
}

// CreateCollection implements store.Collections. ID and SyncToken of c
// are ignored.
func (s *Store) CreateCollection(ctx context.Context, c store.Collection) (store.Collection, error) {
	if c.Kind != store.KindCalendar && c.Kind != store.KindAddressBook {
		return store.Collection{}, errorf("%w: unknown collection kind %q", store.ErrInvalid, c.Kind)
	}
	if err := store.ValidSegment("collection", c.Name); err != nil {
		return store.Collection{}, err
	}
	comps, err := store.CanonicalComponents(c.Components)
	if err != nil {
		return store.Collection{}, err
	}
	c.Components = comps
	var out store.Collection
	err = s.write(ctx, func() error {
		a, err := s.account(c.Account)
		if err != nil {
			return err
		}
		if _, ok := a.colls[collKey{c.Kind, c.Name}]; ok {
			return errorf("collection %q: %w", c.Name, store.ErrExists)
		}
		out = s.insertCollection(a, c)
		s.publish(store.Change{Kind: store.ChangeCollection, Account: c.Account, CollectionID: out.ID, SyncToken: out.SyncToken})
		return nil
	})
	return out, err
}

// collectionByName returns a collection or ErrNotFound. The caller holds
// s.mu.
func (s *Store) collectionByName(account string, kind store.CollectionKind, name string) (*collection, error) {
	if a := s.accounts[account]; a != nil {
		if id, ok := a.colls[collKey{kind, name}]; ok {
			return s.colls[id], nil
		}
	}
	return nil, errorf("collection %q: %w", name, store.ErrNotFound)
}

// collection returns a collection by ID or ErrNotFound. The caller holds
// s.mu.
func (s *Store) collection(id int64) (*collection, error) {
	if c := s.colls[id]; c != nil {
		return c, nil
	}
	return nil, errorf("collection %d: %w", id, store.ErrNotFound)
}

// Collection implements store.Collections.
func (s *Store) Collection(ctx context.Context, account string, kind store.CollectionKind, name string) (store.Collection, error) {
	var out store.Collection
	err := s.read(ctx, func() error {
		c, err := s.collectionByName(account, kind, name)
		if err == nil {
			out = c.out()
		}
		return err
	})
	return out, err
}

// ListCollections implements store.Collections. An empty kind lists both
// kinds; collections come by kind, then name.
func (s *Store) ListCollections(ctx context.Context, account string, kind store.CollectionKind) ([]store.Collection, error) {
	var out []store.Collection
	err := s.read(ctx, func() error {
		a, err := s.account(account)
		if err != nil {
			return err
		}
		for k, id := range a.colls {
			if kind == "" || k.kind == kind {
				out = append(out, s.colls[id].out())
			}
		}
		return nil
	})
	slices.SortFunc(out, func(a, b store.Collection) int {
		return strings.Compare(string(a.Kind)+"/"+a.Name, string(b.Kind)+"/"+b.Name)
	})
	return out, err
}

// UpdateCollection implements store.Collections. The collection is found
// by c.ID if set, else by account, kind and name.
func (s *Store) UpdateCollection(ctx context.Context, c store.Collection) error {
	comps, err := store.CanonicalComponents(c.Components)
	if err != nil {
		return err
	}
	return s.write(ctx, func() error {
		var cur *collection
		var err error
		if c.ID != 0 {
			cur, err = s.collection(c.ID)
		} else {
			cur, err = s.collectionByName(c.Account, c.Kind, c.Name)
		}
		if err != nil {
			return err
		}
		cur.info.DisplayName, cur.info.Description, cur.info.Color, cur.info.Components = c.DisplayName, c.Description, c.Color, comps
		return nil
	})
}

// DeleteCollection implements store.Collections.
func (s *Store) DeleteCollection(ctx context.Context, account string, kind store.CollectionKind, name string) error {
	return s.write(ctx, func() error {
		c, err := s.collectionByName(account, kind, name)
		if err != nil {
			return err
		}
		delete(s.colls, c.info.ID)
		delete(s.accounts[account].colls, collKey{kind, name})
		s.publish(store.Change{Kind: store.ChangeCollection, Account: account, CollectionID: c.info.ID})
		return nil
	})
}

// logChange bumps a collection's sync token, records the change and
// prunes the log to Options.ChangeLogLimit entries.
func (s *Store) logChange(c *collection, name string, deleted bool) {
	c.info.SyncToken++
	tok := c.info.SyncToken
	c.log = append(c.log, objectChange{tok, store.ObjectChange{Name: name, Deleted: deleted}})
	if limit := uint64(s.opts.ChangeLogLimit); tok > limit {
		cut := tok - limit
		i, _ := slices.BinarySearchFunc(c.log, cut+1, func(e objectChange, t uint64) int {
			return cmp.Compare(e.token, t)
		})
		if i > 0 {
			c.log = slices.Delete(c.log, 0, i)
			c.pruned = max(c.pruned, cut)
		}
	}
	s.publish(store.Change{Kind: store.ChangeCollection, Account: c.info.Account, CollectionID: c.info.ID, SyncToken: tok})
}

// PutObject implements store.Collections. An empty ContentType becomes
// the kind's default (text/calendar or text/vcard).
func (s *Store) PutObject(ctx context.Context, collectionID int64, o store.Object, opts store.PutOptions) (store.Object, error) {
	if err := store.ValidSegment("object", o.Name); err != nil {
		return store.Object{}, err
	}
	if o.UID == "" || len(o.UID) > 1024 {
		return store.Object{}, errorf("%w: object UID must be 1-1024 bytes", store.ErrInvalid)
	}
	o, err := store.CanonicalObject(o)
	if err != nil {
		return store.Object{}, errorf("object %q: %w", o.Name, err)
	}
	o.Data = append([]byte{}, o.Data...)
	o.ETag = store.ETag(o.Data)
	o.Size = int64(len(o.Data))
	o.Modified = s.now().UTC()
	err = s.write(ctx, func() error {
		c, err := s.collection(collectionID)
		if err != nil {
			return err
		}
		if o.ContentType == "" {
			o.ContentType = "text/calendar; charset=utf-8"
			if c.info.Kind == store.KindAddressBook {
				o.ContentType = "text/vcard; charset=utf-8"
			}
		}
		cur := c.objects[o.Name]
		if opts.IfNoneMatch && cur != nil {
			return errorf("object %q exists: %w", o.Name, store.ErrPreconditionFailed)
		}
		if !store.IfMatch(opts.IfMatch, cur != nil, objectETag(cur)) {
			return errorf("object %q: If-Match %q: %w", o.Name, opts.IfMatch, store.ErrPreconditionFailed)
		}
		for name, other := range c.objects {
			if other.UID == o.UID && name != o.Name {
				// RFC 4791 §5.3.2.1 no-uid-conflict, RFC 6352 §6.3.2.1.
				return errorf("UID %q already used by %q: %w", o.UID, name, store.ErrExists)
			}
		}
		stored := o
		c.objects[o.Name] = &stored
		s.logChange(c, o.Name, false)
		return nil
	})
	if err != nil {
		return store.Object{}, err
	}
	o.Data = slices.Clone(o.Data)
	return o, nil
}

// object returns a copy of the object of a collection that satisfies
// match, with its data if withData.
func (s *Store) object(ctx context.Context, collectionID int64, what string, match func(*store.Object) bool) (store.Object, error) {
	var out store.Object
	err := s.read(ctx, func() error {
		c := s.colls[collectionID]
		if c != nil {
			for _, o := range c.objects {
				if match(o) {
					out = *o
					out.Data = slices.Clone(o.Data)
					return nil
				}
			}
		}
		return errorf("object %s: %w", what, store.ErrNotFound)
	})
	return out, err
}

// GetObject implements store.Collections.
func (s *Store) GetObject(ctx context.Context, collectionID int64, name string) (store.Object, error) {
	return s.object(ctx, collectionID, "name "+name, func(o *store.Object) bool { return o.Name == name })
}

// ObjectByUID implements store.Collections.
func (s *Store) ObjectByUID(ctx context.Context, collectionID int64, uid string) (store.Object, error) {
	return s.object(ctx, collectionID, "UID "+uid, func(o *store.Object) bool { return o.UID == uid })
}

// ListObjects implements store.Collections; objects come by name, without
// data.
func (s *Store) ListObjects(ctx context.Context, collectionID int64) ([]store.Object, error) {
	var out []store.Object
	err := s.read(ctx, func() error {
		c, err := s.collection(collectionID)
		if err != nil {
			return err
		}
		out = []store.Object{}
		for _, name := range sortedKeys(c.objects) {
			o := *c.objects[name]
			o.Data = nil
			out = append(out, o)
		}
		return nil
	})
	return out, err
}

// QueryObjects implements store.Collections: it looks at every object of
// the collection, which is what an in-memory backend can afford.
func (s *Store) QueryObjects(ctx context.Context, collectionID int64, q store.ObjectQuery) ([]store.Object, error) {
	q, err := store.CanonicalQuery(q)
	if err != nil {
		return nil, errorf("query objects: %w", err)
	}
	var out []store.Object
	err = s.read(ctx, func() error {
		c, err := s.collection(collectionID)
		if err != nil {
			return err
		}
		out = []store.Object{}
		for _, name := range sortedKeys(c.objects) {
			o := c.objects[name]
			if name <= q.After || !store.ComponentMatches(o.Component, q.Component) || !o.Overlaps(q.From, q.To) ||
				!store.ContainsMatches(o.Data, q.Contains) {
				continue
			}
			cp := *o
			cp.Data = slices.Clone(o.Data)
			out = append(out, cp)
			if len(out) == q.Limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteObject implements store.Collections. A non-empty ifMatch on a
// missing object is ErrPreconditionFailed (RFC 7232 §3.1), otherwise a
// missing object is ErrNotFound.
func (s *Store) DeleteObject(ctx context.Context, collectionID int64, name, ifMatch string) error {
	return s.write(ctx, func() error {
		c, err := s.collection(collectionID)
		if err != nil {
			return err
		}
		cur := c.objects[name]
		if !store.IfMatch(ifMatch, cur != nil, objectETag(cur)) {
			return errorf("object %q: If-Match %q: %w", name, ifMatch, store.ErrPreconditionFailed)
		}
		if cur == nil {
			return errorf("object %q: %w", name, store.ErrNotFound)
		}
		delete(c.objects, name)
		s.logChange(c, name, true)
		return nil
	})
}

// ChangesSince implements store.Collections. Each name appears once, with
// its latest state, in the order of its latest change.
func (s *Store) ChangesSince(ctx context.Context, collectionID int64, token uint64) ([]store.ObjectChange, uint64, error) {
	var out []store.ObjectChange
	var cur uint64
	err := s.read(ctx, func() error {
		c, err := s.collection(collectionID)
		if err != nil {
			return err
		}
		cur = c.info.SyncToken
		out = []store.ObjectChange{}
		if token == 0 {
			for _, name := range sortedKeys(c.objects) {
				out = append(out, store.ObjectChange{Name: name})
			}
			return nil
		}
		// RFC 6578 §3.2: a token we never issued or whose changes were
		// pruned is not valid.
		if token > cur || token < c.pruned {
			return errorf("sync token %d (current %d, log from %d): %w", token, cur, c.pruned, store.ErrSyncTokenInvalid)
		}
		seen := make(map[string]bool)
		for i := len(c.log) - 1; i >= 0 && c.log[i].token > token; i-- {
			if e := c.log[i]; !seen[e.Name] {
				seen[e.Name] = true
				out = append(out, e.ObjectChange)
			}
		}
		slices.Reverse(out)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, cur, nil
}

// objectETag is cur's ETag, "" when there is no object.
func objectETag(cur *store.Object) string {
	if cur == nil {
		return ""
	}
	return cur.ETag
}

// QueryAccounts implements store.AccountsQuerier under one read lock.
func (s *Store) QueryAccounts(ctx context.Context, accounts []string, kind store.CollectionKind, q store.ObjectQuery, fn func(c *store.Collection, o *store.Object) error) error {
	if kind != store.KindCalendar && kind != store.KindAddressBook {
		return errorf("query accounts: %w: unknown collection kind %q", store.ErrInvalid, kind)
	}
	q, err := store.CanonicalQuery(q)
	if err != nil {
		return errorf("query accounts: %w", err)
	}
	return s.read(ctx, func() error {
		seen := make(map[string]bool, len(accounts))
		for _, id := range accounts {
			a, err := s.account(id)
			if seen[id] || err != nil {
				continue
			}
			seen[id] = true
			for k, cid := range a.colls {
				if k.kind != kind {
					continue
				}
				c := s.colls[cid]
				info := c.out()
				for _, o := range c.objects {
					if !store.ComponentMatches(o.Component, q.Component) || !o.Overlaps(q.From, q.To) ||
						!store.ContainsMatches(o.Data, q.Contains) {
						continue
					}
					cp := *o
					cp.Data = slices.Clone(o.Data)
					if err := fn(&info, &cp); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}
