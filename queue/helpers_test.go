package queue_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/internal/testclock"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// queueFixture is a queue on the real embedded store, with a routing
// table over the built-in directory (domain example.test, user alice).
type queueFixture struct {
	st    *sqlite.Store
	dir   *builtin.Directory
	table *routing.Table
	q     *queue.Queue
	qdir  string
	alice directory.User
	data  string
	opts  queue.Options
	cfg   routing.Config
	// writes counts the queue's writes to st, across restarts.
	writes storeWrites
}

// storeWrites counts a queue's writes to its Store, by method.
type storeWrites struct {
	enqueues, claims, renewals, settles atomic.Int64
	emptyClaims                         atomic.Int64 // claims that found nothing due
	renewed                             atomic.Int64 // claims named by the renewals
}

// perMessage formats the writes per message for n messages.
func (w *storeWrites) perMessage(n int) string {
	e, c, r, s := w.enqueues.Load(), w.claims.Load(), w.renewals.Load(), w.settles.Load()
	return fmt.Sprintf("%.2f writes per message (%d messages: %d enqueue, %d claim of which %d found nothing, %d renewal naming %d recipients, %d settle)",
		float64(e+c+r+s)/float64(n), n, e, c, w.emptyClaims.Load(), r, w.renewed.Load(), s)
}

// countingStore is the fixture's store as its queue sees it: every
// write is counted in writes.
type countingStore struct {
	queue.Store
	writes *storeWrites
}

func (s countingStore) EnqueueRecipients(ctx context.Context, rcpts []queue.Recipient) error {
	s.writes.enqueues.Add(1)
	return s.Store.EnqueueRecipients(ctx, rcpts)
}

func (s countingStore) ClaimRecipients(ctx context.Context, owner string, now, until time.Time, limit int) ([]queue.Recipient, error) {
	s.writes.claims.Add(1)
	rs, err := s.Store.ClaimRecipients(ctx, owner, now, until, limit)
	if len(rs) == 0 {
		s.writes.emptyClaims.Add(1)
	}
	return rs, err
}

func (s countingStore) RenewLeases(ctx context.Context, owner string, claims []queue.Claim, until time.Time) ([]queue.RecipientKey, error) {
	s.writes.renewals.Add(1)
	s.writes.renewed.Add(int64(len(claims)))
	return s.Store.RenewLeases(ctx, owner, claims, until)
}

func (s countingStore) SettleRecipients(ctx context.Context, owner string, outcomes []queue.Outcome) ([]string, error) {
	s.writes.settles.Add(1)
	return s.Store.SettleRecipients(ctx, owner, outcomes)
}

// fastRetries makes a queue retry every 20ms, warn after 150ms and give up
// after 400ms.
func fastRetries(o *queue.Options) {
	o.RetryMin, o.RetryMax = 20*time.Millisecond, 40*time.Millisecond
	o.DelayWarning, o.Expiry = 150*time.Millisecond, 400*time.Millisecond
	o.PollInterval = 50 * time.Millisecond
}

// queueClock returns a test clock for
// queue.Options.Now that moves only when the test moves it, so that which
// attempt falls in which window (retry, delay warning, expiry) does not
// depend on how busy the machine is; withClock makes the queue use it.
func queueClock() *testclock.Clock { return testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

func withClock(c *testclock.Clock) func(*queue.Options) {
	return func(o *queue.Options) { o.Now = c.Now }
}

// step makes the next attempt of message id due on c and waits until
// it has been made: its recipients' attempts grew, or they are gone. It
// reports whether any recipient of id is left.
func (f *queueFixture) step(t testing.TB, c *testclock.Clock, id string) bool {
	t.Helper()
	state := func() (attempts int, next time.Time, left bool) {
		for _, e := range f.list(t) {
			if e.ID != id {
				continue
			}
			attempts += e.Attempts
			if !left || e.Next.Before(next) {
				next = e.Next
			}
			left = true
		}
		return attempts, next, left
	}
	before, next, left := state()
	if !left {
		return false
	}
	if d := next.Sub(c.Now()); d > 0 {
		c.Add(d)
	}
	f.q.Kick()
	eventually(t, "an attempt of "+id, func() bool {
		n, _, left := state()
		return !left || n > before
	})
	_, _, left = state()
	return left
}

func newQueueFixture(t testing.TB, cfg routing.Config, mod func(*queue.Options)) *queueFixture {
	t.Helper()
	f := &queueFixture{data: t.TempDir(), cfg: cfg}
	f.open(t)
	ctx := context.Background()
	if _, err := f.dir.CreateDomain(ctx, directory.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	u, err := f.dir.CreateUser(ctx, directory.User{Address: "alice@example.test"}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	f.alice = u
	f.opts = queue.Options{Hostname: "mx.example.test", Logger: testLogger(t), TLSConfig: &tls.Config{}}
	if mod != nil {
		mod(&f.opts)
	}
	f.startQueue(t)
	return f
}

// open opens (or reopens) the store, directory and routing table.
func (f *queueFixture) open(t testing.TB) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), f.data, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rules, err := routing.Compile(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.st = st
	f.dir = builtin.New(st, builtin.Options{Accounts: st})
	f.table = routing.NewTable(f.dir, routing.TableOptions{Rules: rules})
	f.qdir = f.data + "/queue"
}

func (f *queueFixture) startQueue(t testing.TB) {
	t.Helper()
	o := f.opts
	o.Dir, o.Records, o.Deliverer, o.Router = f.qdir, f.st, f.st, f.table
	o.Store = countingStore{Store: f.st, writes: &f.writes}
	q, err := queue.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	f.q = q
}

// restart closes the queue and the store and opens both again, as after
// a crash (the records and files are all there is).
func (f *queueFixture) restart(t testing.TB) {
	t.Helper()
	f.q.Close()
	f.st.Close()
	f.open(t)
	f.startQueue(t)
}

// enqueue resolves rcpts as an authenticated client would and queues the
// relay decisions.
func (f *queueFixture) enqueue(t testing.TB, from, body string, rcpts ...string) string {
	t.Helper()
	ctx := context.Background()
	var ds []routing.Decision
	for _, r := range rcpts {
		res, err := f.table.Resolve(ctx, routing.Envelope{From: from, Authenticated: true}, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.Decisions {
			if d.Kind != routing.Relay {
				t.Fatalf("%s: decision %v, want relay", r, d)
			}
			ds = append(ds, d)
		}
	}
	id, err := f.q.Enqueue(ctx, from, ds, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *queueFixture) list(t testing.TB) []queue.Entry {
	t.Helper()
	l, err := f.q.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// leased counts the queued recipients under a lease.
func (f *queueFixture) leased(t testing.TB) int {
	t.Helper()
	rs, err := f.st.ListRecipients(context.Background(), queue.RecipientKey{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rs {
		if r.LeaseOwner != "" {
			n++
		}
	}
	return n
}

// inbox returns the bodies in alice's INBOX.
func (f *queueFixture) inbox(t testing.TB) []string {
	t.Helper()
	ctx := context.Background()
	msgs, err := f.st.ListMessages(ctx, f.alice.ID, store.Inbox, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		rc, err := f.st.OpenBody(ctx, f.alice.ID, store.Inbox, m.UID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		out = append(out, string(b))
	}
	return out
}

// files returns the names in the queue directory.
func (f *queueFixture) files(t testing.TB) []string {
	t.Helper()
	des, err := os.ReadDir(f.qdir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
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

// testLogger writes the queue's logs to the test log, visible with -v or
// on failure.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testTLS returns a server configuration with a self-signed certificate
// for localhost and 127.0.0.1, and a client configuration that trusts it.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	cert, err := certs.SelfSigned([]string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, ServerName: "localhost"}
}
