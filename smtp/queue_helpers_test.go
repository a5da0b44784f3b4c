package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/testclock"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// hopServer is a loopback next hop: recipients starting with "perm" get
// 550 5.1.1, with "temp" 451 4.2.0; everything else is accepted.
type hopServer struct {
	addr string
	port string
	srv  *gosmtp.Server

	mu       sync.Mutex
	msgs     []hopMsg
	rcptSeen int
	conns    int
}

type hopMsg struct {
	from string
	to   []string
	data string
	tls  bool
	auth string
}

type hopOptions struct {
	tls  *tls.Config // offer STARTTLS
	auth bool        // offer AUTH PLAIN (relay/secret), required before MAIL
}

func startHop(t testing.TB, o hopOptions) *hopServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveHop(t, ln, o)
}

// serveHop runs a next hop on ln until the test ends.
func serveHop(t testing.TB, ln net.Listener, o hopOptions) *hopServer {
	t.Helper()
	h := &hopServer{}
	s := newHopSMTPServer(h, o)
	h.srv, h.addr = s, ln.Addr().String()
	_, h.port, _ = net.SplitHostPort(h.addr)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return h
}

func newHopSMTPServer(h *hopServer, o hopOptions) *gosmtp.Server {
	s := gosmtp.NewServer(hopBackend{h: h, auth: o.auth})
	s.Domain = "hop.test"
	s.TLSConfig = o.tls
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	return s
}

func (h *hopServer) received() []hopMsg {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hopMsg(nil), h.msgs...)
}

func (h *hopServer) rcptAttempts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rcptSeen
}

type hopBackend struct {
	h    *hopServer
	auth bool
}

func (b hopBackend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	b.h.mu.Lock()
	b.h.conns++
	b.h.mu.Unlock()
	_, isTLS := c.TLSConnectionState()
	return &hopSession{h: b.h, c: c, tls: isTLS, needAuth: b.auth}, nil
}

type hopSession struct {
	h        *hopServer
	c        *gosmtp.Conn
	tls      bool
	needAuth bool
	user     string
	msg      hopMsg
}

func (s *hopSession) AuthMechanisms() []string {
	if !s.needAuth {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *hopSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "relay" || pass != "secret" {
			return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.user = user
		return nil
	}), nil
}

func (s *hopSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.needAuth && s.user == "" {
		return &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	_, s.tls = s.c.TLSConnectionState()
	s.msg = hopMsg{from: from, tls: s.tls, auth: s.user}
	return nil
}

func (s *hopSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.h.mu.Lock()
	s.h.rcptSeen++
	s.h.mu.Unlock()
	switch {
	case strings.HasPrefix(to, "perm"):
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
	case strings.HasPrefix(to, "temp"):
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 2, 0}, Message: "try again later"}
	}
	s.msg.to = append(s.msg.to, to)
	return nil
}

func (s *hopSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = string(b)
	s.h.mu.Lock()
	s.h.msgs = append(s.h.msgs, s.msg)
	s.h.mu.Unlock()
	return nil
}

func (s *hopSession) Reset()        { s.msg = hopMsg{} }
func (s *hopSession) Logout() error { return nil }

// queueFixture is a queue on the real embedded store, with a routing
// table over the built-in directory (domain example.test, user alice).
type queueFixture struct {
	st    *sqlite.Store
	dir   *builtin.Directory
	table *routing.Table
	q     *Queue
	qdir  string
	alice directory.User
	data  string
	opts  QueueOptions
	cfg   routing.Config
}

// fastRetries makes a queue retry every 20ms, warn after 150ms and give up
// after 400ms.
func fastRetries(o *QueueOptions) {
	o.RetryMin, o.RetryMax = 20*time.Millisecond, 40*time.Millisecond
	o.DelayWarning, o.Expiry = 150*time.Millisecond, 400*time.Millisecond
	o.PollInterval = 50 * time.Millisecond
}

// queueClock returns a test clock for
// QueueOptions.Now that moves only when the test moves it, so that which
// attempt falls in which window (retry, delay warning, expiry) does not
// depend on how busy the machine is; withClock makes the queue use it.
func queueClock() *testclock.Clock { return testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

func withClock(c *testclock.Clock) func(*QueueOptions) {
	return func(o *QueueOptions) { o.Now = c.Now }
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
	f.q.kick()
	eventually(t, "an attempt of "+id, func() bool {
		n, _, left := state()
		return !left || n > before
	})
	_, _, left = state()
	return left
}

func newQueueFixture(t testing.TB, cfg routing.Config, mod func(*QueueOptions)) *queueFixture {
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
	f.opts = QueueOptions{Hostname: "mx.example.test", Logger: testLogger(t), TLSConfig: &tls.Config{}}
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
	q, err := NewQueue(o)
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

func (f *queueFixture) list(t testing.TB) []QueueEntry {
	t.Helper()
	l, err := f.q.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
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

// hopRoute routes domain to the loopback hop.
func hopRoute(domain string, h *hopServer, tlsPolicy routing.TLSPolicy, auth *routing.Credentials) routing.Route {
	return routing.Route{Match: domain, Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + h.port, TLS: tlsPolicy, Auth: auth}}
}
