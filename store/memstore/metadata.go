package memstore

import (
	"context"
	"slices"
	"strings"

	"github.com/mailyard/mailyard/store"
)

var _ store.Metadata = (*Store)(nil)

// metaOf returns the entries of mailbox in a, the server's when mailbox
// is "", creating the map when create is set. The caller holds s.mu.
func (s *Store) metaOf(account, mailbox string, create bool) (*account, map[string][]byte, error) {
	if mailbox == "" {
		a, err := s.account(account)
		if err != nil {
			return nil, nil, err
		}
		if a.meta == nil && create {
			a.meta = make(map[string][]byte)
		}
		return a, a.meta, nil
	}
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, nil, err
	}
	a, m, err := s.mailbox(account, name)
	if err != nil {
		return nil, nil, err
	}
	if m.meta == nil && create {
		m.meta = make(map[string][]byte)
	}
	return a, m.meta, nil
}

// Metadata implements store.Metadata.
func (s *Store) Metadata(ctx context.Context, account, mailbox string) ([]store.MetadataEntry, error) {
	var out []store.MetadataEntry
	err := s.read(ctx, func() error {
		_, meta, err := s.metaOf(account, mailbox, false)
		if err != nil {
			return err
		}
		for name, v := range meta {
			out = append(out, store.MetadataEntry{Name: name, Value: slices.Clone(v)})
		}
		return nil
	})
	slices.SortFunc(out, func(a, b store.MetadataEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// SetMetadata implements store.Metadata.
func (s *Store) SetMetadata(ctx context.Context, account, mailbox string, entries []store.MetadataEntry, lim store.MetadataLimits) error {
	entries, err := store.ValidMetadataEntries(entries)
	if err != nil {
		return err
	}
	return s.write(ctx, func() error {
		a, meta, err := s.metaOf(account, mailbox, true)
		if err != nil {
			return err
		}
		accountBytes := a.metaBytes()
		after, bytesAfter := len(meta), accountBytes
		for _, e := range entries {
			if old, ok := meta[e.Name]; ok {
				after--
				bytesAfter -= store.MetadataSize(e.Name, old)
			}
			if e.Value != nil {
				after++
				bytesAfter += store.MetadataSize(e.Name, e.Value)
			}
		}
		if err := store.CheckMetadataLimits(entries, lim, len(meta), after, accountBytes, bytesAfter); err != nil {
			return err
		}
		for _, e := range entries {
			if e.Value == nil {
				delete(meta, e.Name)
			} else {
				meta[e.Name] = slices.Clone(e.Value)
			}
		}
		return nil
	})
}

// metaBytes is what the account's entries count toward
// store.MetadataLimits.MaxAccountBytes.
func (a *account) metaBytes() int64 {
	var n int64
	add := func(meta map[string][]byte) {
		for name, v := range meta {
			n += store.MetadataSize(name, v)
		}
	}
	add(a.meta)
	for _, m := range a.mailboxes {
		add(m.meta)
	}
	return n
}
