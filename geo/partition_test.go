package geo_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/geo"
	"github.com/mailyard/mailyard/store/memstore"
)

// liveAddresses lists the addresses of s's directory (what it publishes).
func liveAddresses(t *testing.T, s *testSite) []string {
	t.Helper()
	recs, err := geo.BuiltinSource{Dir: s.d}.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Addresses()...)
	}
	slices.Sort(out)
	return out
}

// converged checks that every site locates every address of every
// site at its site, and that deleted ones are located nowhere.
func converged(t *testing.T, sites map[string]*testSite, gone []string) error {
	for _, owner := range slices.Sorted(maps.Keys(sites)) {
		for _, addr := range liveAddresses(t, sites[owner]) {
			for _, s := range sites {
				if err := locatedAt(s.node, addr, owner); err != nil {
					return fmt.Errorf("on %s: %w", s.id, err)
				}
			}
		}
	}
	for _, addr := range gone {
		for _, s := range sites {
			if err := notLocated(s.node, addr); err != nil {
				return fmt.Errorf("on %s: %w", s.id, err)
			}
		}
	}
	return nil
}

// TestPartitionHealAndResume stops site c, changes and deletes users on
// a and b, restarts c on its stored state and position, and checks that
// all three converge and that c did not read a's stream from the start.
func TestPartitionHealAndResume(t *testing.T) {
	ctx := context.Background()
	sites := newSites(t, "a", "b", "c")
	a, b, c := sites["a"], sites["b"], sites["c"]
	const n = 30
	var aUsers []directory.User
	for i := range n {
		aUsers = append(aUsers, a.createUser(fmt.Sprintf("u%02d", i), fmt.Sprintf("User %02d", i)))
	}
	bob := b.createUser("bob", "Bob")
	b.createUser("bert", "Bert")
	for _, s := range sites {
		s.start()
	}
	eventually(t, 15*time.Second, "initial convergence", func() error { return converged(t, sites, nil) })
	// The view changes before the link's health counts the batch (after
	// the batch is stored and acknowledged): wait for the count too.
	var receivedBefore uint64
	eventually(t, 15*time.Second, "c's count of a's snapshot", func() error {
		if receivedBefore = receivedFrom(c.node, "a"); receivedBefore < n {
			return fmt.Errorf("c received %d records of a for its snapshot, want at least %d", receivedBefore, n)
		}
		return nil
	})

	// Partition: c's server stops. a and b change meanwhile.
	c.stop()
	if _, err := a.d.UpdateUser(ctx, aUsers[0].ID, builtin.UserUpdate{DisplayName: ptr("Renamed Zero")}); err != nil {
		t.Fatal(err)
	}
	if err := a.d.DeleteUser(ctx, aUsers[1].ID); err != nil {
		t.Fatal(err)
	}
	a.createUser("newcomer", "Newcomer")
	if _, err := b.d.AddUserAlias(ctx, bob.ID, "robert@b.example"); err != nil {
		t.Fatal(err)
	}
	a.node.Notify()
	b.node.Notify()
	gone := []string{aUsers[1].Address}
	eventually(t, 10*time.Second, "a and b converge without c", func() error {
		return converged(t, map[string]*testSite{"a": a, "b": b}, gone)
	})
	for _, h := range a.node.Health() {
		if h.Peer == "c" && h.Connected {
			t.Fatalf("a still connected to stopped c: %+v", h)
		}
	}

	// Heal: c restarts from its data directory and store.
	c.start()
	if err := locatedAt(c.node, aUsers[5].Address, "a"); err != nil {
		t.Fatalf("c's stored view is lost on restart: %v", err)
	}
	eventually(t, 15*time.Second, "all converge after heal", func() error { return converged(t, sites, gone) })
	eventually(t, 5*time.Second, "renamed user in c's GAL", func() error {
		page, err := geo.GAL{Local: c.d, Node: c.node}.SearchGAL(ctx, directory.GALQuery{Tenant: "org", Text: "renamed"})
		if err != nil || len(page.Entries) != 1 || page.Entries[0].Site != "a" {
			return fmt.Errorf("%+v %v", page, err)
		}
		return nil
	})
	// Resumed: c got a's changes since the partition, not a new snapshot
	// (counted once the batch is stored, after the view shows it).
	eventually(t, 5*time.Second, "c's count of a's changes", func() error {
		if got := receivedFrom(c.node, "a"); got == 0 {
			return fmt.Errorf("after restart c counted no record of a")
		}
		return nil
	})
	if got := receivedFrom(c.node, "a"); got >= n {
		t.Fatalf("after restart c received %d records of a; a snapshot is %d, the changes 3", got, n+2)
	}
	for _, s := range sites {
		if cs := s.node.Conflicts(); len(cs) != 0 {
			t.Fatalf("conflicts on %s: %+v", s.id, cs)
		}
	}
}

func receivedFrom(n *geo.Node, peer string) uint64 {
	for _, h := range n.Health() {
		if h.Peer == peer {
			return h.Received
		}
	}
	return 0
}

func ptr[T any](v T) *T { return &v }

// TestLostStoreRereads: a site restarted with a new, empty store reads
// its peers' streams from the start again instead of resuming past
// records it no longer holds.
func TestLostStoreRereads(t *testing.T) {
	sites := newSites(t, "a", "b")
	a, b := sites["a"], sites["b"]
	a.createUser("kept", "Kept")
	a.start()
	b.opts = func(o *geo.Options) { o.Records = memstore.New(memstore.Options{}) }
	b.start()
	eventually(t, 10*time.Second, "kept on b", func() error { return locatedAt(b.node, "kept@a.example", "a") })
	b.stop()
	b.start() // a new memstore: nothing held
	eventually(t, 10*time.Second, "kept on b after losing its store", func() error { return locatedAt(b.node, "kept@a.example", "a") })
}
