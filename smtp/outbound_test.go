package smtp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/testhop"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store/sqlite"
)

// withQueue gives a real stack's server routing rules and an outbound
// queue on the same store.
func withQueue(t testing.TB, cfg routing.Config, q **queue.Queue) func(*Options, *sqlite.Store) {
	return func(o *Options, st *sqlite.Store) {
		withRules(t, cfg)(o, st)
		if *q == nil {
			var err error
			*q, err = queue.New(queue.Options{Dir: t.TempDir(), Store: st, Deliverer: st, Router: o.Router, Hostname: "mx.example.test", Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := (*q).Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { (*q).Close() })
		}
		o.Queue = *q
	}
}

// With a queue, the MX accepts mail for a relay domain from anyone and the
// next hop receives it, with our Received field on top.
func TestMXRelayDomainThroughQueue(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	var q *queue.Queue
	cfg := routing.Config{RelayDomains: []routing.RelayDomain{{Domain: "partner.test", Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + hop.Port, TLS: routing.TLSNone}}}}
	r := startRealStackWith(t, withQueue(t, cfg, &q), nil)
	c := r.ts.client(t)
	body := "Subject: for the partner\r\n\r\nrelayed\r\n"
	if err := send(c, "x@remote.test", []string{"bob@partner.test"}, body); err != nil {
		t.Fatal(err)
	}
	eventually(t, "relay delivery", func() bool { return len(hop.Received()) == 1 })
	m := hop.Received()[0]
	if m.From != "x@remote.test" || m.To[0] != "bob@partner.test" || !strings.HasPrefix(m.Data, "Return-Path: <x@remote.test>\r\nReceived: ") || !strings.HasSuffix(m.Data, body) {
		t.Fatalf("next hop got %+v", m)
	}
	// Relaying elsewhere is still refused.
	if err := c.Mail("x@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("victim@elsewhere.test", nil), 554, "5.7.1")
}

// A submitted message for a local and a remote recipient is stored for
// the local one and queued for the remote one before the 250; a remote
// recipient that bounces sends the DSN to the sender's INBOX.
func TestSubmissionLocalAndRemoteRecipients(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	var q *queue.Queue
	cfg := routing.Config{Routes: []routing.Route{{Match: "*", Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + hop.Port, TLS: routing.TLSNone}}}}
	r := startRealStackWith(t, nil, withQueue(t, cfg, &q))
	alice := r.user(t, "alice@example.test", 0)
	bob := r.user(t, "bob@example.test", 0)
	c := r.sub.authClient(t, r.tls, "alice@example.test", "pw")
	body := "From: <alice@example.test>\r\nSubject: mixed\r\n\r\nhello all\r\n"
	if err := send(c, "alice@example.test", []string{"bob@example.test", "carol@remote.test", "perm-x@remote.test"}, body); err != nil {
		t.Fatal(err)
	}
	if got := r.inbox(t, bob); len(got) != 1 || !strings.HasSuffix(got[0], body) {
		t.Fatalf("bob has %q", got)
	}
	eventually(t, "relay delivery", func() bool { return len(hop.Received()) == 1 })
	if m := hop.Received()[0]; strings.Join(m.To, ",") != "carol@remote.test" || !strings.HasSuffix(m.Data, body) {
		t.Fatalf("next hop got %+v", m)
	}
	eventually(t, "DSN to alice", func() bool { return len(r.inbox(t, alice)) == 1 })
	if dsn := r.inbox(t, alice)[0]; !strings.Contains(dsn, "Final-Recipient: rfc822; perm-x@remote.test") {
		t.Fatalf("DSN:\n%s", dsn)
	}
}

// eventually polls cond for up to 10s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
