package geo_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/geo"
	"github.com/mailyard/mailyard/internal/metric"
	"github.com/mailyard/mailyard/routing"
)

// TestThreeSites links three sites, each with its own embedded NATS on a
// loopback port, and checks replication, the GAL, free/busy, conflicts
// and health.
func TestThreeSites(t *testing.T) {
	ctx := context.Background()
	sites := newSites(t, "a", "b", "c")
	a, b, c := sites["a"], sites["b"], sites["c"]
	room, err := b.d.CreateResource(ctx, directory.Resource{Address: "room1@b.example", DisplayName: "Room One", Kind: directory.ResourceRoom, Capacity: 8})
	if err != nil {
		t.Fatal(err)
	}
	busyStart := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	b.fb = geo.FreeBusyFunc(func(_ context.Context, q geo.FreeBusyQuery) (map[string][]geo.BusyPeriod, error) {
		out := map[string][]geo.BusyPeriod{}
		for _, acct := range q.Accounts {
			if acct == room.ID {
				out[acct] = []geo.BusyPeriod{{Start: busyStart, End: busyStart.Add(time.Hour), Type: "BUSY"}}
			}
		}
		return out, nil
	})
	rec := &metric.Recorder{}
	c.opts = func(o *geo.Options) { o.Metrics = rec }
	for _, s := range sites {
		s.start()
	}
	// Every link becomes mutual once the peers' site records arrive.
	eventually(t, 10*time.Second, "links mutual", func() error {
		for _, s := range sites {
			for _, h := range s.node.Health() {
				if !h.Connected || !h.Mutual {
					return fmt.Errorf("%s->%s: %+v", s.id, h.Peer, h)
				}
			}
		}
		return nil
	})

	a.createUser("alice", "Alice Andersen")
	took := eventually(t, 2*time.Second, "alice on b and c", func() error {
		if err := locatedAt(b.node, "Alice@A.example", "a"); err != nil {
			return err
		}
		return locatedAt(c.node, "alice@a.example", "a")
	})
	t.Logf("a user created on a is located on b and c after %s", took)
	loc, err := c.node.LocateSite(ctx, "alice@a.example")
	if err != nil || loc.MX != a.link().MX || loc.Local || loc.Kind != geo.KindUser {
		t.Fatalf("location of alice on c: %+v, %v", loc, err)
	}
	if loc, err := a.node.LocateSite(ctx, "alice@a.example"); err != nil || !loc.Local {
		t.Fatalf("alice on a: %+v, %v", loc, err)
	}
	// c's routing relays mail for alice to a's MX, TLS required.
	table := routing.NewTable(c.d, routing.TableOptions{Sites: c.node})
	res, err := table.Resolve(ctx, routing.Envelope{From: "x@outside.test"}, "alice@a.example")
	if err != nil || len(res.Decisions) != 1 || res.Decisions[0].Rule != routing.RuleRemoteSite ||
		res.Decisions[0].Hop.Site != "a" || res.Decisions[0].Hop.TLS != routing.TLSRequired {
		t.Fatalf("c routes alice: %+v, %v", res, err)
	}

	// The GAL of c shows alice, marked with her site, after c's own.
	c.createUser("carol", "Carol Clark")
	gal := geo.GAL{Local: c.d, Node: c.node}
	eventually(t, 5*time.Second, "GAL of c", func() error {
		page, err := gal.SearchGAL(ctx, directory.GALQuery{Tenant: "org", Text: "a"})
		if err != nil {
			return err
		}
		var got []string
		for _, e := range page.Entries {
			got = append(got, e.Site+":"+e.Address)
		}
		if fmt.Sprint(got) != "[a:alice@a.example]" {
			return fmt.Errorf("GAL for %q: %v", "a", got)
		}
		page, err = gal.SearchGAL(ctx, directory.GALQuery{Tenant: "org", Limit: 1})
		if err != nil || len(page.Entries) != 1 || page.Entries[0].Site != "" || page.Next == "" {
			return fmt.Errorf("first page %+v %v", page, err)
		}
		var all []string
		for q := (directory.GALQuery{Tenant: "org", Limit: 1}); ; {
			page, err := gal.SearchGAL(ctx, q)
			if err != nil {
				return err
			}
			for _, e := range page.Entries {
				all = append(all, e.Site+":"+e.Address)
			}
			if page.Next == "" {
				break
			}
			q.After = page.Next
		}
		if fmt.Sprint(all) != "[:carol@c.example a:alice@a.example b:room1@b.example]" {
			return fmt.Errorf("paged GAL: %v", all)
		}
		return nil
	})

	// A room on b shows busy to a free/busy query from c.
	fbCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	busy, err := c.node.FreeBusy(fbCtx, []string{"room1@b.example"}, busyStart.Add(-time.Hour), busyStart.Add(5*time.Hour))
	cancel()
	if err != nil || len(busy["room1@b.example"]) != 1 || !busy["room1@b.example"][0].Start.Equal(busyStart) {
		t.Fatalf("free/busy of the room from c: %v, %v", busy, err)
	}
	// a has no responder: the error says so.
	if _, err := c.node.FreeBusy(ctx, []string{"alice@a.example"}, busyStart, busyStart.Add(time.Hour)); !errors.Is(err, geo.ErrNoFreeBusy) {
		t.Fatalf("free/busy from a site without a responder: %v", err)
	}

	// The same address on b and c is a conflict on every site, and is
	// located nowhere.
	for _, s := range []*testSite{b, c} {
		if _, err := s.d.CreateDomain(ctx, directory.Domain{Name: "shared.example", Tenant: "org"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.d.CreateUser(ctx, directory.User{Address: "dup@shared.example", DisplayName: "Dup " + s.id}, ""); err != nil {
			t.Fatal(err)
		}
		s.node.Notify()
	}
	for _, s := range sites {
		eventually(t, 5*time.Second, "conflict on "+s.id, func() error {
			if _, err := s.node.LocateSite(ctx, "dup@shared.example"); !errors.Is(err, geo.ErrConflict) {
				return fmt.Errorf("locate: %v", err)
			}
			return hasConflict(s.node, "b", "dup@shared.example", geo.ConflictDuplicateAddress)
		})
	}
	// Mail for it is not routed across sites: on a it is unknown.
	res, err = routing.NewTable(a.d, routing.TableOptions{Sites: a.node}).Resolve(ctx, routing.Envelope{Authenticated: true}, "dup@shared.example")
	if err != nil || res.Decisions[0].Rule == routing.RuleRemoteSite {
		t.Fatalf("a routes a conflicting address: %+v, %v", res, err)
	}
	// Clearing the record does not resolve it: it returns.
	if err := a.node.ClearConflict(ctx, "b", geo.ConflictDuplicateAddress, "dup@shared.example"); err != nil {
		t.Fatal(err)
	}
	if hasConflict(a.node, "b", "dup@shared.example", geo.ConflictDuplicateAddress) == nil {
		t.Fatal("cleared conflict still listed")
	}
	a.node.Notify()
	eventually(t, 5*time.Second, "conflict returns", func() error {
		return hasConflict(a.node, "b", "dup@shared.example", geo.ConflictDuplicateAddress)
	})

	// Health as metrics on c.
	eventually(t, 5*time.Second, "metrics", func() error {
		for _, p := range []string{"a", "b"} {
			if v, ok := rec.Value("mailyard_geo_link_up", map[string]string{"peer": p}); !ok || v != 1 {
				return fmt.Errorf("link_up{peer=%s} = %v %v; health %+v", p, v, ok, c.node.Health())
			}
		}
		if v, _ := rec.Value("mailyard_geo_conflicts", map[string]string{"kind": geo.ConflictDuplicateAddress}); v < 2 {
			return fmt.Errorf("conflicts = %v", v)
		}
		return nil
	})
}

func hasConflict(n *geo.Node, site, address, kind string) error {
	for _, c := range n.Conflicts() {
		if c.Site == site && c.Address == address && c.Kind == kind {
			return nil
		}
	}
	return fmt.Errorf("no %s conflict for %s at %s in %+v", kind, address, site, n.Conflicts())
}
