package geo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/geo"
)

// noPeriodic leaves a node only its first reconcile (at start) and the
// per-entry notices.
func noPeriodic(o *geo.Options) { o.ReconcileInterval = time.Hour }

// galName is the display name b's GAL shows for address, from site.
func galName(s *testSite, address string) (string, error) {
	page, err := geo.GAL{Local: s.d, Node: s.node}.SearchGAL(context.Background(), directory.GALQuery{Tenant: "org", Text: address})
	if err != nil {
		return "", err
	}
	for _, e := range page.Entries {
		if e.Address == address {
			return e.DisplayName, nil
		}
	}
	return "", fmt.Errorf("%s not in the GAL", address)
}

// TestChangedPublishesEntries: with no periodic reconcile, Changed alone
// carries a new user, a rename, a new alias, a deletion and a directory
// alias to the peer.
func TestChangedPublishesEntries(t *testing.T) {
	ctx := context.Background()
	sites := newSites(t, "a", "b")
	a, b := sites["a"], sites["b"]
	a.opts, b.opts = noPeriodic, noPeriodic
	a.start()
	b.start()
	eventually(t, 15*time.Second, "b links to a", func() error {
		for _, h := range b.node.Health() {
			if h.Mutual {
				return nil
			}
		}
		return errors.New("b has no mutual link yet")
	})

	u, err := a.d.CreateUser(ctx, directory.User{Address: "nina@a.example", DisplayName: "Nina"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.node.Changed(ctx, "Nina@A.example"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "new user on b", func() error { return locatedAt(b.node, "nina@a.example", "a") })

	if _, err := a.d.UpdateUser(ctx, u.ID, builtin.UserUpdate{DisplayName: ptr("Nina Renamed")}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.d.AddUserAlias(ctx, u.ID, "nr@a.example"); err != nil {
		t.Fatal(err)
	}
	if err := a.node.Changed(ctx, "nina@a.example"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "rename and alias on b", func() error {
		if name, err := galName(b, "nina@a.example"); err != nil || name != "Nina Renamed" {
			return fmt.Errorf("GAL name %q, %v", name, err)
		}
		return locatedAt(b.node, "nr@a.example", "a")
	})

	if _, err := a.d.CreateAlias(ctx, directory.Alias{Address: "team@a.example", Targets: []string{"nina@a.example"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.node.Changed(ctx, "team@a.example"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "directory alias on b", func() error { return locatedAt(b.node, "team@a.example", "a") })

	// Deleted: the notice names the address the entry no longer has.
	if err := a.d.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	// Deleting its only target may have dropped the alias already.
	if err := a.d.DeleteAlias(ctx, "team@a.example"); err != nil && !errors.Is(err, directory.ErrNotFound) {
		t.Fatal(err)
	}
	if err := a.node.Changed(ctx, "nina@a.example", "team@a.example"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "deletions on b", func() error {
		for _, addr := range []string{"nina@a.example", "nr@a.example", "team@a.example"} {
			if err := notLocated(b.node, addr); err != nil {
				return err
			}
		}
		return nil
	})

	// A malformed address: an error, and nothing published.
	if err := a.node.Changed(ctx, "ok@a.example", "not an address"); !errors.Is(err, directory.ErrInvalid) {
		t.Fatalf("Changed with a malformed address: %v, want ErrInvalid", err)
	}
	if err := a.node.Changed(ctx, make([]string, geo.MaxChanged+1)...); !errors.Is(err, directory.ErrInvalid) {
		t.Fatalf("Changed with too many addresses: %v, want ErrInvalid", err)
	}
}

// gatedSource lists the directory as it was when its first listing
// began, and returns that listing only when released: a reconcile slower
// than the notices made meanwhile. Its second listing blocks until the
// node closes, so the test knows the first reconcile is over.
type gatedSource struct {
	geo.BuiltinSource
	release chan struct{}
	second  chan struct{}
	mu      sync.Mutex
	calls   int
}

func (g *gatedSource) Records(ctx context.Context) ([]geo.Record, error) {
	g.mu.Lock()
	g.calls++
	call := g.calls
	g.mu.Unlock()
	if call > 1 {
		if call == 2 {
			close(g.second)
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	recs, err := g.BuiltinSource.Records(ctx)
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return recs, err
}

// TestChangedWinsOverStaleListing: a reconcile whose listing began
// before a notice cannot undo what the notice published: neither a new
// entry (absent from the old listing) nor a rename.
func TestChangedWinsOverStaleListing(t *testing.T) {
	ctx := context.Background()
	sites := newSites(t, "a", "b")
	a, b := sites["a"], sites["b"]
	old, err := a.d.CreateUser(ctx, directory.User{Address: "old@a.example", DisplayName: "Old Name"}, "")
	if err != nil {
		t.Fatal(err)
	}
	gate := &gatedSource{BuiltinSource: geo.BuiltinSource{Dir: a.d}, release: make(chan struct{}), second: make(chan struct{})}
	a.opts = func(o *geo.Options) { o.Source = gate; o.ReconcileInterval = time.Hour }
	b.opts = noPeriodic
	a.start() // its first listing is now taken and held
	b.start()

	if _, err := a.d.CreateUser(ctx, directory.User{Address: "new@a.example", DisplayName: "New"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a.d.UpdateUser(ctx, old.ID, builtin.UserUpdate{DisplayName: ptr("Fresh Name")}); err != nil {
		t.Fatal(err)
	}
	if err := a.node.Changed(ctx, "new@a.example", "old@a.example"); err != nil {
		t.Fatal(err)
	}
	close(gate.release)
	a.node.Notify()
	select {
	case <-gate.second:
	case <-time.After(30 * time.Second):
		t.Fatal("the first reconcile did not end")
	}
	// Everything a published before this marker has reached b once b
	// holds the marker (a stream is delivered in order).
	if _, err := a.d.CreateUser(ctx, directory.User{Address: "marker@a.example", DisplayName: "Marker"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := a.node.Changed(ctx, "marker@a.example"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "marker on b", func() error { return locatedAt(b.node, "marker@a.example", "a") })
	if err := locatedAt(b.node, "new@a.example", "a"); err != nil {
		t.Fatalf("the stale listing's tombstone won: %v", err)
	}
	if name, err := galName(b, "old@a.example"); err != nil || name != "Fresh Name" {
		t.Fatalf("b shows %q (%v) for the renamed user: the stale listing won", name, err)
	}
}
