package queue_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"

	"github.com/mailyard/mailyard/internal/testhop"
	"github.com/mailyard/mailyard/internal/testpeer"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
)

const queueBody = "From: <alice@example.test>\r\nTo: <bob@remote.test>\r\nSubject: outbound\r\n\r\nhello remote\r\n"

// A queued message reaches the next hop with its envelope and bytes, over
// STARTTLS when offered; afterwards its records and its file are gone.
func TestQueueDeliversOverSTARTTLS(t *testing.T) {
	serverTLS, _ := testTLS(t)
	hop := testhop.Start(t, testhop.Options{TLS: serverTLS})
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{hop.Route("remote.test", routing.TLSOpportunistic, nil)}}, nil)
	f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test", "carol@remote.test")
	eventually(t, "delivery", func() bool { return len(hop.Received()) == 1 })
	m := hop.Received()[0]
	if m.From != "alice@example.test" || strings.Join(m.To, ",") != "bob@remote.test,carol@remote.test" || m.Data != queueBody {
		t.Fatalf("next hop got %+v", m)
	}
	if !m.TLS {
		t.Error("delivered without STARTTLS although the hop offered it")
	}
	eventually(t, "queue empty", func() bool { return len(f.list(t)) == 0 && len(f.files(t)) == 0 })
}

// Messages for one destination share a connection while there is a
// backlog.
func TestQueueReusesConnections(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{hop.Route("remote.test", routing.TLSNone, nil)}},
		func(o *queue.Options) { o.PerDestination = 1 })
	for range 20 {
		f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test")
	}
	eventually(t, "20 deliveries", func() bool { return len(hop.Received()) == 20 })
	conns := hop.Conns()
	if conns > 5 {
		t.Errorf("20 messages took %d connections, want them to share", conns)
	}
}

// A 5xx for a recipient bounces at once: the sender gets an RFC 3464 DSN
// in the INBOX, the other recipient is delivered, nothing stays queued.
func TestQueuePermanentFailureBounces(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{hop.Route("remote.test", routing.TLSNone, nil)}}, nil)
	f.enqueue(t, "alice@example.test", queueBody, "perm-user@remote.test", "bob@remote.test")
	eventually(t, "DSN", func() bool { return len(f.inbox(t)) == 1 })
	dsn := f.inbox(t)[0]
	for _, want := range []string{
		"From: Mail Delivery System <MAILER-DAEMON@mx.example.test>",
		"Auto-Submitted: auto-replied",
		"Content-Type: multipart/report; report-type=delivery-status;",
		"Content-Type: message/delivery-status",
		"Reporting-MTA: dns; mx.example.test",
		"Final-Recipient: rfc822; perm-user@remote.test",
		"Action: failed",
		"Status: 5.1.1",
		"Remote-MTA: dns; 127.0.0.1",
		"Diagnostic-Code: smtp; 550 5.1.1 no such user here",
		"Content-Type: text/rfc822-headers",
		"Subject: outbound",
	} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
	if strings.Contains(dsn, "bob@remote.test>:") || strings.Contains(dsn, "hello remote") {
		t.Errorf("DSN reports the delivered recipient or returns the body:\n%s", dsn)
	}
	if got := hop.Received(); len(got) != 1 || strings.Join(got[0].To, ",") != "bob@remote.test" {
		t.Fatalf("next hop got %+v", got)
	}
	eventually(t, "queue empty", func() bool { return len(f.list(t)) == 0 && len(f.files(t)) == 0 })
}

// A 4xx is retried with back-off; the sender gets one "delayed" DSN after
// DelayWarning and a "failed" one at Expiry, and the message leaves the
// queue.
func TestQueueTemporaryFailureRetriesThenExpires(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	// The queue's clock moves one attempt at a time. One worker for the
	// hop, so that attempts run one after the other (see the probe).
	clock := queueClock()
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{hop.Route("remote.test", routing.TLSNone, nil)}},
		func(o *queue.Options) { fastRetries(o); withClock(clock)(o); o.PerDestination = 1 })
	id := f.enqueue(t, "alice@example.test", queueBody, "temp-user@remote.test")
	// Attempts at 0, 20, 60, 100, 140 ms (deferred), 180 (past
	// DelayWarning: the "delayed" DSN), 220 ... 380, and 420 (past Expiry).
	for f.step(t, clock, id) { // one attempt at a time until it expires
	}
	if n := hop.RcptAttempts(); n < 3 {
		t.Errorf("%d attempts before expiry, want retries", n)
	}
	in := f.inbox(t)
	if len(in) != 2 {
		t.Fatalf("%d DSNs, want the delay warning and the expiry bounce", len(in))
	}
	if !strings.Contains(in[0], "Action: delayed") || !strings.Contains(in[0], "Status: 4.2.0") || !strings.Contains(in[0], "Will-Retry-Until:") {
		t.Errorf("first DSN is not the delay warning:\n%s", in[0])
	}
	if !strings.Contains(in[1], "Action: failed") || !strings.Contains(in[1], "Diagnostic-Code: smtp; 451 4.2.0 try again later") {
		t.Errorf("second DSN is not the expiry bounce:\n%s", in[1])
	}
	eventually(t, "queue empty", func() bool { return len(f.list(t)) == 0 && len(f.files(t)) == 0 })
	// No attempt, and so no DSN, comes after the bounce. A probe with the
	// null sender (no DSNs of its own) to the same hop, behind the same
	// single worker, makes three attempts (a step is at least one): by
	// its third, later on the queue's clock than RetryMax after the
	// bounce, any retry of the bounced recipient would have been
	// dispatched before it, and its DSN stored.
	probe := f.enqueue(t, "", queueBody, "temp-probe@remote.test")
	for range 3 {
		f.step(t, clock, probe)
	}
	if n := len(f.inbox(t)); n != 2 {
		t.Errorf("%d DSNs after the bounce and later attempts, want 2", n)
	}
}

// A next hop that refuses connections is retried; meanwhile List shows the
// error and the attempts, and the message arrives once the hop is up.
func TestQueueConnectionRefusedRetried(t *testing.T) {
	// The port is held, not listening, until the hop comes up: nothing
	// else can take it meanwhile.
	port := testpeer.ReservePort(t)
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{{Match: "remote.test", Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + strconv.Itoa(port.Addr().Port)}}}},
		func(o *queue.Options) { fastRetries(o); o.Expiry = time.Hour; o.DelayWarning = -1 })
	f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test")
	eventually(t, "two failed attempts", func() bool {
		l := f.list(t)
		return len(l) == 1 && l[0].Attempts >= 2 && strings.Contains(l[0].LastError, "refused")
	})
	if len(f.inbox(t)) != 0 {
		t.Fatal("DSN before expiry with delay warnings off")
	}
	hop := testhop.Serve(t, port.Listen(), testhop.Options{})
	eventually(t, "delivery after the hop came up", func() bool { return len(hop.Received()) == 1 })
}

// With tls = "required", a hop that does not offer STARTTLS gets nothing;
// with "opportunistic" the same hop gets the message in plain text.
func TestQueueRequiredTLSNotOffered(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{
		hop.Route("secure.test", routing.TLSRequired, nil),
		hop.Route("remote.test", routing.TLSOpportunistic, nil),
	}}, func(o *queue.Options) { fastRetries(o); o.Expiry = time.Hour; o.DelayWarning = -1 })
	f.enqueue(t, "alice@example.test", queueBody, "bob@secure.test")
	eventually(t, "a failed attempt", func() bool {
		l := f.list(t)
		return len(l) == 1 && l[0].Attempts >= 1 && strings.Contains(l[0].LastError, "TLS is required")
	})
	f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test")
	eventually(t, "plain delivery", func() bool { return len(hop.Received()) == 1 })
	if m := hop.Received()[0]; m.TLS || m.To[0] != "bob@remote.test" {
		t.Fatalf("next hop got %+v", m)
	}
	// The tls=required message is refused again on an attempt that ends
	// after the plain delivery: had it gone out in plain text, it would
	// have by then (and its record would be gone).
	// The delivered recipient's record goes after the hop's 250.
	var l []queue.Entry
	eventually(t, "the delivered recipient's record removed", func() bool {
		l = f.list(t)
		return !slices.ContainsFunc(l, func(e queue.Entry) bool { return e.Recipient == "bob@remote.test" })
	})
	if len(l) != 1 || l[0].Recipient != "bob@secure.test" {
		t.Fatalf("queue after the plain delivery: %+v", l)
	}
	seen := l[0].Attempts
	eventually(t, "a later attempt", func() bool {
		l := f.list(t)
		return len(l) == 0 || l[0].Attempts > seen
	})
	if got := hop.Received(); len(got) != 1 {
		t.Fatalf("the tls=required message went out in plain text: %+v", got)
	}
	if l := f.list(t); len(l) != 1 || !strings.Contains(l[0].LastError, "TLS is required") {
		t.Fatalf("queue after a later attempt: %+v", l)
	}
}

// A smarthost with AUTH gets the route's credentials over TLS; wrong
// credentials keep the message queued.
func TestQueueSmarthostAuth(t *testing.T) {
	serverTLS, _ := testTLS(t)
	hop := testhop.Start(t, testhop.Options{TLS: serverTLS, Auth: true})
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{
		hop.Route("remote.test", routing.TLSRequired, &routing.Credentials{Username: "relay", Password: "secret"}),
		hop.Route("wrong.test", routing.TLSRequired, &routing.Credentials{Username: "relay", Password: "nope"}),
	}}, func(o *queue.Options) { fastRetries(o); o.Expiry = time.Hour; o.DelayWarning = -1 })
	f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test")
	f.enqueue(t, "alice@example.test", queueBody, "bob@wrong.test")
	eventually(t, "delivery", func() bool { return len(hop.Received()) == 1 })
	if m := hop.Received()[0]; m.Auth != "relay" || !m.TLS || m.To[0] != "bob@remote.test" {
		t.Fatalf("next hop got %+v", m)
	}
	eventually(t, "auth failure recorded", func() bool {
		l := f.list(t)
		return len(l) == 1 && strings.Contains(l[0].LastError, "535")
	})
}

// A message with the null sender that fails gets no DSN (no bounce loops).
func TestQueueNoDSNForNullSender(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{hop.Route("remote.test", routing.TLSNone, nil)}}, nil)
	f.enqueue(t, "", queueBody, "perm-user@remote.test")
	eventually(t, "queue empty", func() bool { return len(f.list(t)) == 0 && len(f.files(t)) == 0 })
	if n := len(f.inbox(t)); n != 0 {
		t.Fatalf("%d messages in the INBOX after a null-sender failure", n)
	}
	if hop.RcptAttempts() != 1 {
		t.Fatalf("%d attempts", hop.RcptAttempts())
	}
}

// Records and files survive a restart: a message queued while the hop was
// down is delivered by the next process, and a body file without records
// (a crash before commit) is removed at start.
func TestQueueRecoversAfterRestart(t *testing.T) {
	port := testpeer.ReservePort(t) // refuses until the hop listens
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{{Match: "remote.test", Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + strconv.Itoa(port.Addr().Port), TLS: routing.TLSNone}}}},
		func(o *queue.Options) { o.RetryMin = time.Hour })
	id := f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test", "carol@remote.test")
	eventually(t, "first attempt", func() bool { l := f.list(t); return len(l) == 2 && l[0].Attempts == 1 })
	orphan := filepath.Join(f.qdir, "orphan-from-a-crash")
	if err := os.WriteFile(orphan, []byte("never acknowledged"), 0o600); err != nil {
		t.Fatal(err)
	}
	hop := testhop.Serve(t, port.Listen(), testhop.Options{})
	f.opts.RetryMin = 0 // back to the default, but the message is due now:
	f.restart(t)
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan file still there after start: %v", err)
	}
	if err := f.q.RetryNow(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivery after restart", func() bool { return len(hop.Received()) == 1 })
	if m := hop.Received()[0]; len(m.To) != 2 || m.Data != queueBody {
		t.Fatalf("next hop got %+v", m)
	}
	eventually(t, "queue empty", func() bool { return len(f.list(t)) == 0 && len(f.files(t)) == 0 })
}

// Hold keeps a message back, Release and RetryNow send it, Delete removes
// it without a DSN; unknown ids are queue.ErrNoSuchMessage.
func TestQueueAdminOperations(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	// One worker for the hop: the messages go out in queue order (see
	// the held message below).
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{hop.Route("remote.test", routing.TLSNone, nil)}},
		func(o *queue.Options) { o.RetryMin = time.Hour; o.PerDestination = 1 })
	ctx := context.Background()
	f.q.Close() // admin operations work without a running queue
	f.startQueueStopped(t)
	id := f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test")
	gone := f.enqueue(t, "alice@example.test", queueBody, "carol@remote.test")
	if err := f.q.Hold(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := f.q.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	l := f.list(t)
	if len(l) != 1 || l[0].ID != id || !l[0].Held || l[0].Recipient != "bob@remote.test" || l[0].From != "alice@example.test" {
		t.Fatalf("List = %+v", l)
	}
	if len(f.files(t)) != 1 {
		t.Fatalf("files after Delete: %v", f.files(t))
	}
	for _, op := range []func(context.Context, string) error{f.q.Hold, f.q.Release, f.q.RetryNow, f.q.Delete} {
		if err := op(ctx, "nosuchid"); !errors.Is(err, queue.ErrNoSuchMessage) {
			t.Errorf("unknown id: %v", err)
		}
	}
	// Another process (a running queue on the same store) sees the hold.
	f.q.Close()
	f.startQueue(t)
	// A message queued after the held one goes to the same hop through
	// the same single worker: the held one, were it due, would have gone
	// first.
	f.enqueue(t, "alice@example.test", queueBody, "dan@remote.test")
	eventually(t, "delivery of a later message", func() bool { return len(hop.Received()) >= 1 })
	if got := hop.Received(); len(got) != 1 || got[0].To[0] != "dan@remote.test" {
		t.Fatalf("held message delivered: next hop got %+v", got)
	}
	if err := f.q.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivery after release", func() bool { return len(hop.Received()) == 2 })
	if m := hop.Received()[1]; m.To[0] != "bob@remote.test" {
		t.Fatalf("next hop got %+v after release", m)
	}
	if len(f.inbox(t)) != 0 {
		t.Error("Delete sent a DSN")
	}
}

// startQueueStopped makes a queue that is not started, as the admin
// commands use it.
func (f *queueFixture) startQueueStopped(t testing.TB) {
	t.Helper()
	o := f.opts
	o.Dir, o.Store, o.Deliverer, o.Router = f.qdir, f.st, f.st, f.table
	q, err := queue.New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.q = q
}

// MX delivery (RFC 5321 §5.1): the lowest preference answering host gets
// the message; a domain without MX is its own host; a null MX (RFC 7505)
// bounces at once.
func TestQueueMXResolution(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	zones := map[string]mockdns.Zone{
		"remote.test.":      {MX: []net.MX{{Host: "down.remote.test.", Pref: 20}, {Host: "mx.remote.test.", Pref: 10}}},
		"mx.remote.test.":   {A: []string{"127.0.0.1"}},
		"down.remote.test.": {A: []string{"127.0.0.2"}},
		"nomx.test.":        {A: []string{"127.0.0.1"}},
		"nullmx.test.":      {MX: []net.MX{{Host: ".", Pref: 0}}},
	}
	// nxdomain.test exists nowhere: no MX, no address (RFC 5321 §5.1).
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{{Match: "*", Gateway: routing.Gateway{NextHop: ":" + hop.Port, TLS: routing.TLSNone}}}},
		func(o *queue.Options) { o.Resolver = &mockdns.Resolver{Zones: zones} })
	f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test")
	f.enqueue(t, "alice@example.test", queueBody, "dan@nomx.test")
	f.enqueue(t, "alice@example.test", queueBody, "eve@nullmx.test")
	eventually(t, "two deliveries and a bounce", func() bool { return len(hop.Received()) == 2 && len(f.inbox(t)) == 1 })
	if dsn := f.inbox(t)[0]; !strings.Contains(dsn, "Status: 5.1.10") || !strings.Contains(dsn, "eve@nullmx.test") {
		t.Errorf("null MX DSN:\n%s", dsn)
	}
	f.enqueue(t, "alice@example.test", queueBody, "fay@nxdomain.test")
	eventually(t, "a second bounce", func() bool { return len(f.inbox(t)) == 2 })
	if dsn := f.inbox(t)[1]; !strings.Contains(dsn, "Status: 5.1.2") || !strings.Contains(dsn, "fay@nxdomain.test") {
		t.Errorf("NXDOMAIN DSN:\n%s", dsn)
	}
}
