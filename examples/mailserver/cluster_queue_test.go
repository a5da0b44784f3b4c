package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/pgtest"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
)

// noDSNs is a queue.Router for a test that sends no DSN.
type noDSNs struct{}

func (noDSNs) Resolve(context.Context, routing.Envelope, string) (routing.Result, error) {
	return routing.Result{}, errors.New("no DSNs in this test")
}

// Two nodes configured with the same hostname (their MX name) lease
// queued recipients under different names: node B starting (and taking
// back its own leases) leaves node A's attempt in progress alone. Before,
// both leased as the hostname, so a node that restarted released the
// other's claims and the recipient could be attempted by both at once.
func TestPostgresQueueLeasesPerNode(t *testing.T) {
	dsn := pgtest.FreshDB(t)
	a, b := newPGNode(t, dsn), newPGNode(t, dsn)
	a.mustCLI(t, "init")
	if a.cfg.Hostname != b.cfg.Hostname || nodeName(a.cfg) == nodeName(b.cfg) {
		t.Fatalf("node names %q and %q for hostname %q", nodeName(a.cfg), nodeName(b.cfg), a.cfg.Hostname)
	}
	// A next hop that accepts and never greets: node A's attempt stays
	// in progress, its lease held.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	t.Cleanup(func() {
		ln.Close()
		for len(conns) > 0 {
			(<-conns).Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default:
				c.Close()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	startNodeQueue := func(n pgNode) (mailStore, *queue.Queue) {
		st, err := openStore(ctx, n.cfg, logger, nil, openExisting)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		q, err := newQueue(n.cfg, st, noDSNs{}, logger, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return st, q
	}
	sa, qa := startNodeQueue(a)
	nh, err := routing.ParseNextHop(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	d := routing.Decision{Kind: routing.Relay, Rule: routing.RuleRoute, Address: "bob@remote.test", Hop: routing.Hop{NextHop: nh, TLS: routing.TLSNone}}
	if _, err := qa.Enqueue(ctx, "alice@example.test", []routing.Decision{d}, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	owner := func() string {
		rs, err := sa.ListRecipients(ctx, queue.RecipientKey{}, 0)
		if err != nil || len(rs) != 1 {
			t.Fatalf("queued recipients: %v, %d", err, len(rs))
		}
		return rs[0].LeaseOwner
	}
	deadline := time.Now().Add(30 * time.Second)
	for owner() == "" {
		if time.Now().After(deadline) {
			t.Fatal("node A never claimed the recipient")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := owner(); got != nodeName(a.cfg) {
		t.Fatalf("lease owner %q, want node A's %q", got, nodeName(a.cfg))
	}
	startNodeQueue(b)
	if got := owner(); got != nodeName(a.cfg) {
		t.Fatalf("after node B started, lease owner %q; node A's lease (%q) must stay", got, nodeName(a.cfg))
	}
}
