package geo

import (
	"context"
	"fmt"
	"strings"

	"github.com/mailyard/mailyard/directory"
)

// EntrySource is a [Source] that also reads single entries, which lets
// [Node.Changed] publish a change without listing the whole directory.
// [BuiltinSource] implements it.
type EntrySource interface {
	Source
	// Owners returns the local entries that own address now, among those
	// Records lists (none if no such entry owns it).
	Owners(ctx context.Context, address string) ([]EntryRef, error)
	// Entry returns the record of ref exactly as Records lists it; ok is
	// false when Records would not list it (deleted, disabled).
	Entry(ctx context.Context, ref EntryRef) (rec Record, ok bool, err error)
}

// EntryRef names one entry of a site: its record kind and key.
type EntryRef struct{ Kind, Key string }

// MaxChanged bounds the addresses of one [Node.Changed] call.
const MaxChanged = 1000

// Changed publishes at once the current state of the local entries that
// own addresses now or owned them when last published: an entry that
// is gone gets its tombstone, a renamed one its new addresses. It is the
// per-entry notice after a change whose addresses are known; it returns
// when the records are in this site's stream (or nothing changed), and
// the peers apply them as they arrive. It reads only those entries, so
// its cost does not grow with the directory. The periodic reconcile
// stays the safety net for changes nobody announced (and a failed
// notice); the two may run concurrently, and a record read before the
// one published last for its entry is dropped, never published over it.
//
// Without an [EntrySource] it asks for a whole reconcile ([Node.Notify]).
// A malformed address is an error wrapping [directory.ErrInvalid], and
// then nothing is published.
func (n *Node) Changed(ctx context.Context, addresses ...string) error {
	if len(addresses) > MaxChanged {
		return fmt.Errorf("%w: %d addresses in one notice, at most %d", directory.ErrInvalid, len(addresses), MaxChanged)
	}
	canon := make([]string, 0, len(addresses))
	for _, a := range addresses {
		c, err := directory.CanonicalAddress(a)
		if err != nil {
			return fmt.Errorf("geo: changed entry: %w", err)
		}
		canon = append(canon, c)
	}
	es, ok := n.opts.Source.(EntrySource)
	if !ok {
		n.Notify()
		return nil
	}
	// Numbered before anything is read, so that any listing that starts
	// later counts as newer.
	read := n.reads.Add(1)
	refs := n.publishedOwners(canon)
	for _, a := range canon {
		now, err := es.Owners(ctx, a)
		if err != nil {
			return fmt.Errorf("geo: owners of %s: %w", a, err)
		}
		refs = append(refs, now...)
	}
	seen := map[EntryRef]bool{}
	for _, ref := range refs {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		if err := n.publishEntry(ctx, es, ref, read); err != nil {
			return err
		}
	}
	return nil
}

// publishedOwners returns this site's entries that own one of addresses
// in what it published.
func (n *Node) publishedOwners(addresses []string) []EntryRef {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []EntryRef
	for _, a := range addresses {
		for o := range n.view.addrs[a] {
			if o.site != n.opts.Site {
				continue
			}
			if kind, key, ok := strings.Cut(o.key, "/"); ok {
				out = append(out, EntryRef{kind, key})
			}
		}
	}
	return out
}

// publishEntry reads one entry and publishes its record, or its
// tombstone if it was published and the Source no longer lists it.
func (n *Node) publishEntry(ctx context.Context, es EntrySource, ref EntryRef, read uint64) error {
	rec, ok, err := es.Entry(ctx, ref)
	if err != nil {
		return fmt.Errorf("geo: reading %s %q: %w", ref.Kind, ref.Key, err)
	}
	if !ok {
		rec = Record{Kind: ref.Kind, Key: ref.Key, Deleted: true}
		n.mu.Lock()
		e, held := n.view.get(n.opts.Site, ref.Kind, ref.Key)
		n.mu.Unlock()
		if !held || e.Rec.Deleted {
			return nil // never published, or its tombstone already is
		}
	}
	rec = rec.normalize()
	if err := rec.Validate(); err != nil {
		n.log.Warn("geo: not publishing an invalid local entry", "err", err)
		return nil
	}
	return n.publishIfChanged(ctx, rec, read)
}
