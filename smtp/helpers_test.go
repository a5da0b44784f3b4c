package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/authtest"
	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/internal/metric"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

// fileDeliverer is a store.Deliverer double that streams each body into a
// temporary file, as a real store streams into a blob, and keeps nothing
// when reading the body fails.
type fileDeliverer struct {
	dir string

	mu   sync.Mutex
	msgs []storedMsg
	// fail, if set, is returned after the body was read completely.
	fail error
	// gate, if set, is called before the body is read (to hold a
	// delivery in flight).
	gate func(ctx context.Context) error
}

type storedMsg struct {
	Delivery store.Delivery
	Path     string
}

func newFileDeliverer(t testing.TB) *fileDeliverer {
	return &fileDeliverer{dir: t.TempDir()}
}

func (d *fileDeliverer) Deliver(ctx context.Context, dl store.Delivery, body io.Reader) ([]store.Delivered, error) {
	d.mu.Lock()
	gate, fail := d.gate, d.fail
	d.mu.Unlock()
	if gate != nil {
		if err := gate(ctx); err != nil {
			return nil, err
		}
	}
	f, err := os.CreateTemp(d.dir, "msg-*.eml")
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("filedeliverer: read body: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if fail != nil {
		os.Remove(f.Name())
		return nil, fail
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, storedMsg{Delivery: dl, Path: f.Name()})
	out := make([]store.Delivered, len(dl.Recipients))
	for i, r := range dl.Recipients {
		out[i] = store.Delivered{Recipient: r, Mailbox: "INBOX", UID: uint32(len(d.msgs))}
	}
	return out, nil
}

func (d *fileDeliverer) stored() []storedMsg {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]storedMsg(nil), d.msgs...)
}

// body returns the content of the i-th stored message.
func (d *fileDeliverer) body(t testing.TB, i int) string {
	t.Helper()
	msgs := d.stored()
	if i >= len(msgs) {
		t.Fatalf("message %d not stored (%d stored)", i, len(msgs))
	}
	b, err := os.ReadFile(msgs[i].Path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// files counts the files in the deliverer's directory: a failed delivery
// must leave none behind.
func (d *fileDeliverer) files(t testing.TB) int {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// testRouter is a routing double: hosted domains, users, groups, an
// optional catch-all and an optional relay-syntax interpretation (a
// "%"/"!" local part becomes a Relay decision, as a sendmail-style router
// would decide).
type testRouter struct {
	domains     map[string]bool
	users       map[string]string   // full address -> account
	groups      map[string][]string // full address -> members
	catchAll    string              // account for unknown local addresses
	relaySyntax bool
	err         error
}

func newTestRouter() *testRouter {
	return &testRouter{
		domains: map[string]bool{"example.test": true, "alt.test": true},
		users: map[string]string{
			"alice@example.test": "alice", "bob@example.test": "bob",
			"alice@alt.test": "alice", "carol@example.test": "carol",
		},
		groups: map[string][]string{
			"team@example.test":  {"alice@example.test", "bob@example.test", "alice@alt.test"},
			"mixed@example.test": {"alice@example.test", "partner@remote.test"},
		},
	}
}

func (r *testRouter) Resolve(ctx context.Context, env routing.Envelope, rcpt string) (routing.Result, error) {
	if r.err != nil {
		return routing.Result{}, r.err
	}
	addr := strings.ToLower(rcpt)
	res := routing.Result{Recipient: addr}
	var walk func(a string, depth int)
	walk = func(a string, depth int) {
		at := strings.LastIndexByte(a, '@')
		local, domain := a[:at], a[at+1:]
		if r.relaySyntax {
			if i := strings.LastIndexByte(local, '%'); i >= 0 {
				res.Decisions = append(res.Decisions, routing.Decision{Kind: routing.Relay, Address: local[:i] + "@" + local[i+1:], Rule: "percent-hack"})
				return
			}
			if i := strings.IndexByte(local, '!'); i >= 0 {
				res.Decisions = append(res.Decisions, routing.Decision{Kind: routing.Relay, Address: local[i+1:] + "@" + local[:i], Rule: "bang-path"})
				return
			}
		}
		switch {
		case !r.domains[domain]:
			res.Decisions = append(res.Decisions, routing.Decision{Kind: routing.Relay, Address: a, Rule: "remote"})
		case r.groups[a] != nil && depth < 5:
			for _, m := range r.groups[a] {
				walk(m, depth+1)
			}
		case r.users[a] != "":
			res.Decisions = append(res.Decisions, routing.Decision{Kind: routing.Deliver, Address: a, Account: r.users[a], Rule: "user"})
		case r.catchAll != "":
			res.Decisions = append(res.Decisions, routing.Decision{Kind: routing.Deliver, Address: a, Account: r.catchAll, Rule: "catch-all"})
		default:
			res.Decisions = append(res.Decisions, routing.Decision{Kind: routing.Reject, Address: a, Code: 550, Enhanced: "5.1.1", Reason: "no such user", Rule: "unknown-recipient"})
		}
	}
	walk(addr, 0)
	return res, nil
}

// testAuth is an Authenticator double.
type testAuth struct {
	users map[string]testUser // by login
}

type testUser struct {
	password string
	user     directory.User
	send     []string
	err      error // returned when the password is right
}

func newTestAuth() *testAuth {
	return &testAuth{users: map[string]testUser{
		"alice@example.test": {password: "alice-pw", user: directory.User{ID: "alice", Address: "alice@example.test"},
			send: []string{"alice@example.test", "alice@alt.test", "team@example.test"}},
		"bob@example.test": {password: "bob-pw", user: directory.User{ID: "bob", Address: "bob@example.test"},
			send: []string{"bob@example.test"}},
		"dave@example.test": {password: "dave-pw", err: directory.ErrDisabled},
		"erin@example.test": {password: "erin-pw", err: directory.ErrProtocolNotAllowed},
	}}
}

func (a *testAuth) Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error) {
	if p != directory.ProtoSMTP {
		return directory.User{}, fmt.Errorf("unexpected protocol %q", p)
	}
	u, ok := a.users[strings.ToLower(login)]
	if !ok || u.password != password {
		return directory.User{}, directory.ErrAuthFailed
	}
	if u.err != nil {
		return directory.User{}, u.err
	}
	return u.user, nil
}

func (a *testAuth) SendAddresses(ctx context.Context, userID string) ([]string, error) {
	for _, u := range a.users {
		if u.user.ID == userID {
			return u.send, nil
		}
	}
	return nil, directory.ErrNotFound
}

// testTLS returns a server config with a fresh self-signed certificate
// and a client config that trusts it.
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

// testLogger writes server logs to the test log, visible with -v or on
// failure.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testServer is a running server with its doubles.
type testServer struct {
	*Server
	addr   string
	store  *fileDeliverer
	router *testRouter
	served chan error
	// rec holds the server's metrics when the test gave no Metrics.
	rec *metric.Recorder
}

// startServer fills o with doubles where unset, serves on 127.0.0.1:0 and
// shuts down when the test ends.
func startServer(t testing.TB, o Options) *testServer {
	t.Helper()
	ts := &testServer{served: make(chan error, 1)}
	if o.Router == nil {
		ts.router = newTestRouter()
		o.Router = ts.router
	}
	if o.Deliverer == nil {
		ts.store = newFileDeliverer(t)
		o.Deliverer = ts.store
	}
	if o.Mode != ModeMX && o.Auth == nil {
		o.Auth = newTestAuth()
	}
	if o.Hostname == "" {
		o.Hostname = "mx.example.test"
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	if o.AuthLimiter == nil {
		o.AuthLimiter = authtest.Limiter(nil)
	}
	if o.Metrics == nil {
		ts.rec = &metric.Recorder{}
		o.Metrics = ts.rec
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.Server, ts.addr = srv, ln.Addr().String()
	go func() { ts.served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-ts.served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return ts
}

// client dials the server with go-smtp's client and says EHLO.
func (ts *testServer) client(t testing.TB) *gosmtp.Client {
	t.Helper()
	c, err := gosmtp.Dial(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsClient dials the server and does STARTTLS (after EHLO localhost).
func (ts *testServer) tlsClient(t testing.TB, clientTLS *tls.Config) *gosmtp.Client {
	t.Helper()
	c, err := gosmtp.DialStartTLS(ts.addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send runs one transaction and returns the error of the first command
// that failed.
func send(c *gosmtp.Client, from string, to []string, msg string) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	return w.Close()
}

// authClient dials submission, does STARTTLS and AUTH PLAIN.
func (ts *testServer) authClient(t testing.TB, clientTLS *tls.Config, login, password string) *gosmtp.Client {
	t.Helper()
	c := ts.tlsClient(t, clientTLS)
	if err := c.Auth(sasl.NewPlainClient("", login, password)); err != nil {
		t.Fatalf("auth %s: %v", login, err)
	}
	return c
}

// smtpCode returns the reply code and enhanced code of a go-smtp client
// error, or 0.
func smtpCode(err error) (int, string) {
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) {
		return 0, ""
	}
	e := se.EnhancedCode
	return se.Code, fmt.Sprintf("%d.%d.%d", e[0], e[1], e[2])
}

// wantCode fails unless err is an SMTP reply with code and enhanced code.
func wantCode(t testing.TB, err error, code int, enhanced string) {
	t.Helper()
	c, e := smtpCode(err)
	if c != code || e != enhanced {
		t.Fatalf("got %v, want %d %s", err, code, enhanced)
	}
}

// rawClient speaks the protocol byte by byte for edge cases.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	return dialRawFrom(t, addr, "")
}

// dialRawFrom dials from a given loopback source address ("" for any) and
// expects the 220 greeting.
func dialRawFrom(t testing.TB, addr, source string) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	if code, text := c.reply(); code != 220 {
		t.Fatalf("greeting %d %s", code, text)
	}
	return c
}

func (c *rawClient) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one (possibly multi-line) reply; code 0 means the
// connection ended.
func (c *rawClient) reply() (int, string) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var text []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			if len(text) == 0 {
				return 0, err.Error()
			}
			c.t.Fatalf("reply cut short: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 {
			c.t.Fatalf("malformed reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			c.t.Fatalf("malformed reply line %q", line)
		}
		text = append(text, line[4:])
		if line[3] == ' ' {
			return code, strings.Join(text, "\n")
		}
	}
}

// cmd sends one command line and reads its reply.
func (c *rawClient) cmd(line string) (int, string) {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.reply()
}

// expect sends a command and fails unless the reply has that code.
func (c *rawClient) expect(line string, code int) string {
	c.t.Helper()
	got, text := c.cmd(line)
	if got != code {
		c.t.Fatalf("%q: got %d %s, want %d", line, got, text, code)
	}
	return text
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// quietLogger discards everything (benchmarks).
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
