package geo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailyard/mailyard/store"
)

// Conflict kinds.
const (
	// ConflictDuplicateAddress: two sites claim the same address.
	ConflictDuplicateAddress = "duplicate_address"
	// ConflictInvalidPayload: a peer published a record that does not
	// validate; it is skipped.
	ConflictInvalidPayload = "invalid_payload"
	// ConflictOneEndedLink: a link is configured on one end only.
	ConflictOneEndedLink = "one_ended_link"
)

// ErrConflict is returned by [Node.LocateSite] for an address more than
// one site claims: mail for it is not routed across sites.
var ErrConflict = errors.New("geo: address claimed by more than one site")

// Conflict is one problem an administrator resolves by hand. Nothing
// resolves it silently; [Node.ClearConflict] removes the record only, and
// it comes back while its cause remains.
type Conflict struct {
	// Site is the site that is the source of the conflict.
	Site string `json:"site"`
	// Address is the address in conflict (empty for a link).
	Address string `json:"address"`
	Kind    string `json:"kind"`
	Detail  string `json:"detail"`
	// FirstSeen and LastSeen bound when the cause was observed.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

func (c Conflict) key() string { return c.Site + "/" + c.Kind + "/" + c.Address }

// Record namespaces geo keeps in store.Records (their owner is this
// package):
//
//	geo.view      SITE/KIND/KEY -> entry (JSON): a peer's replicated record
//	geo.position  SITE          -> last applied stream sequence (decimal)
//	geo.conflict  SITE/KIND/ADDRESS -> Conflict (JSON)
const (
	nsView     = "geo.view"
	nsPosition = "geo.position"
	nsConflict = "geo.conflict"
)

// Namespaces lists the store.Records namespaces package geo writes.
func Namespaces() []string { return []string{nsView, nsPosition, nsConflict} }

// raise records a conflict (or refreshes its LastSeen) in memory and in
// the store. n.mu must be held.
func (n *Node) raise(ctx context.Context, c Conflict) {
	c.Address, c.Detail = clip(c.Address, 320), clip(c.Detail, 1000) // a hostile payload stays bounded
	now := n.now()
	if cur, ok := n.conflicts[c.key()]; ok {
		cur.LastSeen = now
		cur.Detail = c.Detail
		c = cur
	} else {
		c.FirstSeen, c.LastSeen = now, now
		n.log.Warn("geo: conflict", "site", c.Site, "address", c.Address, "kind", c.Kind, "detail", c.Detail)
	}
	n.conflicts[c.key()] = c
	if n.opts.Records == nil {
		return
	}
	err := n.opts.Records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return store.PutJSON(tx, nsConflict, c.key(), c, -1)
	})
	if err != nil {
		n.log.Error("geo: storing conflict", "err", err)
	}
}

// checkAddresses raises a duplicate-address conflict for each address
// more than one site claims. n.mu must be held.
func (n *Node) checkAddresses(ctx context.Context, addrs []string) {
	for _, a := range addrs {
		sites := n.claimants(a)
		if len(sites) < 2 {
			continue
		}
		for _, s := range sites {
			others := slices.DeleteFunc(slices.Clone(sites), func(x string) bool { return x == s })
			n.raise(ctx, Conflict{Site: s, Address: a, Kind: ConflictDuplicateAddress,
				Detail: fmt.Sprintf("also claimed by %s", strings.Join(others, ", "))})
		}
	}
}

// Conflicts returns the conflict records, by site, kind and address.
func (n *Node) Conflicts() []Conflict {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Conflict, 0, len(n.conflicts))
	for _, c := range n.conflicts {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Conflict) int { return strings.Compare(a.key(), b.key()) })
	return out
}

// ClearConflict removes one conflict record. It resolves nothing: if its
// cause remains, the next check (at the latest the next reconcile)
// records it again with a new FirstSeen.
func (n *Node) ClearConflict(ctx context.Context, site, kind, address string) error {
	c := Conflict{Site: site, Kind: kind, Address: address}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.conflicts[c.key()]; !ok {
		return fmt.Errorf("geo: no such conflict %s: %w", c.key(), store.ErrNotFound)
	}
	delete(n.conflicts, c.key())
	if n.opts.Records == nil {
		return nil
	}
	return n.opts.Records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		err := tx.Delete(nsConflict, c.key())
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
}

// loadState reads the persisted view of the peers and the conflicts.
func (n *Node) loadState(ctx context.Context) error {
	if n.opts.Records == nil {
		return nil
	}
	err := eachRecord(ctx, n.opts.Records, nsView, func(r store.Record) error {
		site, _, _ := strings.Cut(r.Key, "/")
		var e entry
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return fmt.Errorf("geo: record %s %q: %w", nsView, r.Key, err)
		}
		n.view.apply(site, e.Seq, e.Rec)
		return nil
	})
	if err != nil {
		return err
	}
	err = eachRecord(ctx, n.opts.Records, nsPosition, func(r store.Record) error {
		v, err := strconv.ParseUint(string(r.Value), 10, 64)
		if err != nil {
			return fmt.Errorf("geo: record %s %q: %w", nsPosition, r.Key, err)
		}
		n.positions[r.Key] = v
		return nil
	})
	if err != nil {
		return err
	}
	return eachRecord(ctx, n.opts.Records, nsConflict, func(r store.Record) error {
		var c Conflict
		if err := json.Unmarshal(r.Value, &c); err != nil {
			return fmt.Errorf("geo: record %s %q: %w", nsConflict, r.Key, err)
		}
		n.conflicts[c.key()] = c
		return nil
	})
}

func eachRecord(ctx context.Context, rs store.Records, ns string, fn func(store.Record) error) error {
	after := ""
	for {
		recs, err := rs.ListRecords(ctx, ns, after, 1000)
		if err != nil {
			return fmt.Errorf("geo: reading %s: %w", ns, err)
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(recs) < 1000 {
			return nil
		}
		after = recs[len(recs)-1].Key
	}
}

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
