package geo_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailyard/mailyard/geo"
)

// TestOneEndedLink: d links to a, but a has no link to d. Both record the
// conflict, and d has no view of a: the link is not half-used.
func TestOneEndedLink(t *testing.T) {
	sites := newSites(t, "a", "d")
	a, d := sites["a"], sites["d"]
	a.links = nil
	a.createUser("alice", "Alice")
	a.start()
	d.start()
	for _, s := range []*testSite{a, d} {
		eventually(t, 10*time.Second, "one-ended link on "+s.id, func() error {
			for _, c := range s.node.Conflicts() {
				if c.Kind == geo.ConflictOneEndedLink {
					return nil
				}
			}
			return fmt.Errorf("conflicts %+v", s.node.Conflicts())
		})
	}
	if err := notLocated(d.node, "alice@a.example"); err != nil {
		t.Fatal(err)
	}
	h := d.node.Health()
	if len(h) != 1 || h[0].Green() || h[0].LastError == "" {
		t.Fatalf("health of d's link to a: %+v", h)
	}
}

// TestPeerPermissions: a peer's identity may read its consumer but not
// write the site's stream, nor ask free/busy as another site.
func TestPeerPermissions(t *testing.T) {
	sites := newSites(t, "a", "b", "c")
	a, b := sites["a"], sites["b"]
	a.start()
	nc, err := nats.Connect(a.link().Endpoints[0], nats.Secure(clientTLS(b, "a")), nats.Timeout(5*time.Second),
		nats.CustomInboxPrefix("_INBOX_b"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	perm := make(chan error, 4)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { perm <- err })
	if err := nc.Publish("geo.a.dir.user.x", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("geo.a.fb.c", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-perm:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("want a permissions violation, got %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a peer published on a subject that is not its own")
		}
	}
	// Its own free/busy subject is allowed (a has no responder: it says so).
	m, err := nc.Request("geo.a.fb.b", []byte(`{"accounts":[],"from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z"}`), 5*time.Second)
	if err != nil || len(m.Data) == 0 {
		t.Fatalf("own free/busy subject: %v", err)
	}
}

// TestInvalidPayload: a record that does not validate is skipped and
// recorded as a conflict; the records after it still arrive.
func TestInvalidPayload(t *testing.T) {
	sites := newSites(t, "a", "b")
	a, b := sites["a"], sites["b"]
	a.start()
	b.start()
	// a's own connection writes a bad record into a's stream, as a
	// broken or hostile a could.
	nc, err := nats.Connect(a.node.URL(), nats.Secure(clientTLS(a, "a")), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "geo.a.dir.user.bad", []byte(`{"kind":"user","key":"x","address":"Not An Address"}`)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	a.createUser("after", "After")
	eventually(t, 10*time.Second, "invalid payload conflict", func() error {
		if err := hasConflict(b.node, "a", "Not An Address", geo.ConflictInvalidPayload); err != nil {
			return err
		}
		return locatedAt(b.node, "after@a.example", "a")
	})
}

// TestCloseStopsEverything: after Close, the goroutines of the nodes,
// their links and their embedded servers are gone.
func TestCloseStopsEverything(t *testing.T) {
	sites := newSites(t, "a", "b")
	a, b := sites["a"], sites["b"]
	before := runtime.NumGoroutine()
	a.start()
	b.start()
	a.createUser("g", "G")
	eventually(t, 10*time.Second, "replicated", func() error { return locatedAt(b.node, "g@a.example", "a") })
	if n := runtime.NumGoroutine(); n <= before {
		t.Fatalf("%d goroutines running two sites, %d before: the count says nothing", n, before)
	}
	a.stop()
	b.stop()
	eventually(t, 10*time.Second, "goroutines gone", func() error {
		if n := runtime.NumGoroutine(); n > before+2 {
			return fmt.Errorf("%d goroutines after Close, %d before", n, before)
		}
		return nil
	})
}
