package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

const (
	alice    = "alice@example.com"
	alicePW  = "correct horse"
	bob      = "bob@example.com"
	bobPW    = "battery staple"
	testHost = "imap.example.com"
)

// env is a server on a real store/sqlite in a temp dir, with the built-in
// directory holding alice and bob.
type env struct {
	t        testing.TB
	st       *sqlite.Store
	dir      *builtin.Directory
	srv      *Server
	addr     string
	tlsSrv   *Server
	tlsAddr  string
	client   *tls.Config // trusts the server certificate
	aliceID  string
	bobID    string
	lim      *authlimit.Limiter
	serveErr chan error
}

type envOption func(*Options)

func newEnv(t testing.TB, opts ...envOption) *env {
	return newEnvIn(t, t.TempDir(), opts...)
}

// memDir is a temporary directory in memory where the system has one:
// the store's fsyncs are then cheap, for tests that commit thousands of
// times. Durability is not what such tests check.
func memDir(t testing.TB) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "mailyard-imap-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

func newEnvIn(t testing.TB, dataDir string, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dataDir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := builtin.New(st, builtin.Options{Accounts: st})
	if _, err := dir.CreateDomain(ctx, directory.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	a, err := dir.CreateUser(ctx, directory.User{Address: alice, Aliases: []string{"al@example.com"}}, alicePW)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dir.CreateUser(ctx, directory.User{Address: bob}, bobPW)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certs.SelfSigned([]string{testHost, "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	e := &env{
		t: t, st: st, dir: dir, aliceID: a.ID, bobID: b.ID,
		client:   &tls.Config{RootCAs: pool, ServerName: testHost, MinVersion: tls.VersionTLS12},
		lim:      authlimit.New(authlimit.Policy{Pair: authlimit.Backoff{Free: 2, BaseDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond, BlockAfter: 5}}),
		serveErr: make(chan error, 2),
	}
	// Options are applied to each server's own copy, after ImplicitTLS
	// is set, so that an option can tell them apart.
	for _, implicit := range []bool{false, true} {
		o := Options{Backend: st, Auth: dir, AuthLimiter: e.lim, TLSConfig: srvTLS, ImplicitTLS: implicit}
		for _, opt := range opts {
			opt(&o)
		}
		if implicit {
			e.tlsSrv, e.tlsAddr = e.start(o)
		} else {
			e.srv, e.addr = e.start(o)
		}
	}
	return e
}

func (e *env) start(o Options) (*Server, string) {
	e.t.Helper()
	srv, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
			e.serveErr <- err
		}
	}()
	e.t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return srv, ln.Addr().String()
}

// login dials STARTTLS and logs in with imapclient.
func (e *env) login(user, pw string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialStartTLS(e.addr, &imapclient.Options{TLSConfig: e.client, UnilateralDataHandler: h})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pw).Wait(); err != nil {
		e.t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// deliver stores a message for an account as the SMTP server does.
func (e *env) deliver(account, mailbox, msg string) uint32 {
	e.t.Helper()
	d, err := e.st.Deliver(context.Background(), store.Delivery{Recipients: []store.Recipient{{Account: account, Mailbox: mailbox}}},
		strings.NewReader(msg))
	if err != nil {
		e.t.Fatal(err)
	}
	return d[0].UID
}

// indexText fills the full-text entries the store's background indexer
// has not filled yet (it indexes after Deliver and Append return).
func (e *env) indexText() {
	e.t.Helper()
	if _, err := e.st.IndexPendingText(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// tb is what raw needs from a test: testing.TB or *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// deliverTo is deliver for property tests.
func (e *env) deliverTo(t tb, account, mailbox, msg string) uint32 {
	t.Helper()
	d, err := e.st.Deliver(context.Background(), store.Delivery{Recipients: []store.Recipient{{Account: account, Mailbox: mailbox}}},
		strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return d[0].UID
}

// raw is a line-level client for checking exact responses.
type raw struct {
	t    tb
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func (e *env) raw() *raw {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.greeted(c)
}

// rawTLS dials the implicit-TLS listener.
func (e *env) rawTLS() *raw {
	e.t.Helper()
	return e.rawTLSFrom("")
}

// starttls upgrades a raw connection.
func (r *raw) starttls(cfg *tls.Config) {
	r.t.Helper()
	r.expectOK("STARTTLS")
	tc := tls.Client(r.conn, cfg)
	if err := tc.Handshake(); err != nil {
		r.t.Fatal(err)
	}
	r.conn = tc
	r.r = bufio.NewReader(tc)
}

func (r *raw) line() string {
	r.t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := r.conn.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// cmd sends one command and returns the untagged lines and the tagged
// status line. Literals in responses are read whole into the line.
func (r *raw) cmd(c string) (untagged []string, status string) {
	r.t.Helper()
	r.n++
	tag := fmt.Sprintf("t%d", r.n)
	r.send(tag + " " + c + "\r\n")
	return r.readUntil(tag)
}

func (r *raw) readUntil(tag string) (untagged []string, status string) {
	r.t.Helper()
	for {
		l := r.line()
		for {
			// {n} at the end: a literal follows.
			i := strings.LastIndexByte(l, '{')
			if i < 0 || !strings.HasSuffix(l, "}") {
				break
			}
			var n int
			if _, err := fmt.Sscanf(l[i:], "{%d}", &n); err != nil {
				break
			}
			buf := make([]byte, n)
			if _, err := readFull(r.r, buf); err != nil {
				r.t.Fatal(err)
			}
			l += "\n" + string(buf) + r.line()
		}
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

func readFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (r *raw) expectOK(c string) []string {
	r.t.Helper()
	u, st := r.cmd(c)
	if !strings.HasPrefix(st, "OK") {
		r.t.Fatalf("%s: got %q (untagged %q)", c, st, u)
	}
	return u
}

func (r *raw) expectStatus(c, prefix string) []string {
	r.t.Helper()
	u, st := r.cmd(c)
	if !strings.HasPrefix(st, prefix) {
		r.t.Fatalf("%s: want %q, got %q (untagged %q)", c, prefix, st, u)
	}
	return u
}

// has reports whether some line contains every one of parts.
func has(lines []string, parts ...string) bool {
	for _, l := range lines {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func mustHave(t testing.TB, lines []string, parts ...string) {
	t.Helper()
	if !has(lines, parts...) {
		t.Fatalf("no line with %q in:\n%s", parts, strings.Join(lines, "\n"))
	}
}

func mustNotHave(t testing.TB, lines []string, parts ...string) {
	t.Helper()
	if has(lines, parts...) {
		t.Fatalf("unexpected line with %q in:\n%s", parts, strings.Join(lines, "\n"))
	}
}

const simpleMsg = "From: Carol <carol@example.org>\r\n" +
	"To: Alice <alice@example.com>\r\n" +
	"Subject: hello there\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 -0700\r\n" +
	"Message-ID: <1@example.org>\r\n" +
	"\r\n" +
	"The quick brown fox.\r\n"

const multipartMsg = "From: Dave <dave@example.org>\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
	"Date: Tue, 10 Mar 2020 08:00:00 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Sch=C3=B6ne Gr=C3=BC=C3=9Fe, zebra\r\n" +
	"--b1\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"From: inner@example.net\r\n" +
	"Subject: inner subject\r\n" +
	"\r\n" +
	"inner body giraffe\r\n" +
	"--b1--\r\n"
