package memstore

import (
	"context"
	"slices"
	"sort"

	"github.com/mailyard/mailyard/store"
)

// account is everything one account owns, except its collections'
// objects, which hang off s.colls.
type account struct {
	info       store.Account
	used       store.Usage
	mailboxes  map[string]*mailbox // by canonical name
	subscribed map[string]bool     // the subscription list, by name
	colls      map[collKey]int64   // collection IDs
	meta       map[string][]byte   // the server's metadata entries (RFC 5464), by name
}

type collKey struct {
	kind store.CollectionKind
	name string
}

// account returns an account or ErrNotFound. The caller holds s.mu.
func (s *Store) account(id string) (*account, error) {
	a := s.accounts[id]
	if a == nil {
		return nil, errorf("account %q: %w", id, store.ErrNotFound)
	}
	return a, nil
}

// CreateAccount implements store.Accounts.
func (s *Store) CreateAccount(ctx context.Context, id string, q store.Quota) (store.Account, error) {
	if err := store.ValidAccountID(id); err != nil {
		return store.Account{}, err
	}
	if err := store.ValidQuota(q); err != nil {
		return store.Account{}, err
	}
	var out store.Account
	err := s.write(ctx, func() error {
		if s.accounts[id] != nil {
			return errorf("account %q: %w", id, store.ErrExists)
		}
		a := &account{
			info:       store.Account{ID: id, Quota: q, Created: s.now().UTC()},
			mailboxes:  make(map[string]*mailbox),
			subscribed: make(map[string]bool),
			colls:      make(map[collKey]int64),
		}
		s.accounts[id] = a
		for _, m := range store.DefaultMailboxes() {
			s.insertMailbox(a, m.Name, m.Use)
			a.subscribed[m.Name] = true
		}
		for _, c := range []store.Collection{
			{Account: id, Kind: store.KindCalendar, Name: "calendar", DisplayName: "Calendar"},
			{Account: id, Kind: store.KindAddressBook, Name: "contacts", DisplayName: "Contacts"},
		} {
			s.insertCollection(a, c)
		}
		out = a.info
		return nil
	})
	return out, err
}

// Account implements store.Accounts.
func (s *Store) Account(ctx context.Context, id string) (store.Account, error) {
	var out store.Account
	err := s.read(ctx, func() error {
		a, err := s.account(id)
		if err == nil {
			out = a.info
		}
		return err
	})
	return out, err
}

// ListAccounts implements store.Accounts. limit <= 0 means no limit.
func (s *Store) ListAccounts(ctx context.Context, after string, limit int) ([]store.Account, error) {
	var out []store.Account
	err := s.read(ctx, func() error {
		for id, a := range s.accounts {
			if id > after {
				out = append(out, a.info)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// SetQuota implements store.Accounts.
func (s *Store) SetQuota(ctx context.Context, id string, q store.Quota) error {
	if err := store.ValidQuota(q); err != nil {
		return err
	}
	return s.write(ctx, func() error {
		a, err := s.account(id)
		if err == nil {
			a.info.Quota = q
		}
		return err
	})
}

// Usage implements store.Accounts.
func (s *Store) Usage(ctx context.Context, id string) (store.Usage, store.Quota, error) {
	var u store.Usage
	var q store.Quota
	err := s.read(ctx, func() error {
		a, err := s.account(id)
		if err == nil {
			u, q = a.used, a.info.Quota
		}
		return err
	})
	return u, q, err
}

// DeleteAccount implements store.Accounts.
func (s *Store) DeleteAccount(ctx context.Context, id string) error {
	return s.write(ctx, func() error {
		a, err := s.account(id)
		if err != nil {
			return err
		}
		for _, m := range a.mailboxes {
			for _, msg := range m.msgs {
				s.unrefBlob(msg.BlobID)
			}
		}
		for _, cid := range a.colls {
			delete(s.colls, cid)
		}
		delete(s.accounts, id)
		s.publish(store.Change{Kind: store.ChangeAccountDeleted, Account: id})
		return nil
	})
}

// checkQuota refuses additions that would take an account over a limit
// (guarantee 5). adds are in the caller's order, one entry per account.
func (s *Store) checkQuota(adds []quotaAdd) error {
	var qe *store.QuotaError
	for _, add := range adds {
		a, err := s.account(add.account)
		if err != nil {
			return err
		}
		res := ""
		switch q := a.info.Quota; {
		case q.MaxBytes > 0 && a.used.Bytes+add.bytes > q.MaxBytes:
			res = "STORAGE"
		case q.MaxMessages > 0 && a.used.Messages+add.count > q.MaxMessages:
			res = "MESSAGE"
		}
		if res == "" {
			continue
		}
		if qe == nil {
			qe = &store.QuotaError{Resource: res}
		}
		qe.Accounts = append(qe.Accounts, add.account)
	}
	if qe != nil {
		return qe
	}
	return nil
}

type quotaAdd struct {
	account      string
	bytes, count int64
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
