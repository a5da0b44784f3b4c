package dav

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

const (
	alice   = "alice@example.com"
	alicePW = "alice-secret"
	bob     = "bob@example.com"
	bobPW   = "bob-secret"
	carol   = "carol@example.com" // may not use DAV
	carolPW = "carol-secret"
)

// env is a handler over a real store on disk and the built-in directory.
type env struct {
	t       testing.TB
	st      *sqlite.Store
	dir     *builtin.Directory
	h       *Handler
	srv     *httptest.Server
	lim     *authlimit.Limiter
	aliceID string
	bobID   string
}

type envOption func(*Options)

// memDir is a temporary directory in memory where the system has one, so
// that tests storing thousands of objects are not slowed by fsyncs.
func memDir(t testing.TB) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "mailyard-dav-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvStore(t, sqlite.Options{}, opts...)
}

// newEnvStore is newEnv over a store opened with so.
func newEnvStore(t testing.TB, so sqlite.Options, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, memDir(t), so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := builtin.New(st, builtin.Options{Accounts: st})
	if _, err := dir.CreateDomain(ctx, directory.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	a, err := dir.CreateUser(ctx, directory.User{Address: alice, Aliases: []string{"al@example.com"}, DisplayName: "Alice Liddell"}, alicePW)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dir.CreateUser(ctx, directory.User{Address: bob}, bobPW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.CreateUser(ctx, directory.User{Address: carol, Protocols: []directory.Protocol{directory.ProtoIMAP}}, carolPW); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, dir: dir, aliceID: a.ID, bobID: b.ID,
		lim: authlimit.New(authlimit.Policy{Pair: authlimit.Backoff{Free: 2, BaseDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond, BlockAfter: 4, BlockFor: time.Hour}})}
	o := Options{Store: st, Directory: dir, GAL: dir, AuthLimiter: e.lim}
	for _, opt := range opts {
		opt(&o)
	}
	e.h, err = NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	return e
}

// resp is a response with its body read.
type resp struct {
	*http.Response
	body []byte
}

// do sends a request as alice (or as user/password given in hdr's
// "Auth" pseudo-header "user:password"; "-" sends none).
func (e *env) do(method, path, body string, hdr ...string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	user, pw := alice, alicePW
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Auth" {
			user, pw, _ = strings.Cut(hdr[i+1], ":")
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if user != "-" {
		req.SetBasicAuth(user, pw)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{res, b}
}

// expect fails unless the response has the status.
func (r resp) expect(t testing.TB, status int) resp {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
	return r
}

// tree parses the XML body.
func (r resp) tree(t testing.TB) *node {
	t.Helper()
	n, err := parseXML(strings.NewReader(string(r.body)), Limits{MaxXMLDepth: 100, MaxXMLElements: 1 << 20})
	if err != nil || n == nil {
		t.Fatalf("body is no XML (%v):\n%s", err, r.body)
	}
	return n
}

// msResponse is one DAV:response of a multistatus, flattened.
type msResponse struct {
	href   string
	status int            // the response's own status, if any
	props  map[string]int // "space local" -> propstat status
	values map[string]*node
	err    *node
}

// multistatus parses a 207 body into responses by href.
func (r resp) multistatus(t testing.TB) map[string]msResponse {
	t.Helper()
	r.expect(t, http.StatusMultiStatus)
	root := r.tree(t)
	if !root.is(nsDAV, "multistatus") {
		t.Fatalf("root is %v", root.Name)
	}
	out := map[string]msResponse{}
	for _, rn := range root.Children {
		if !rn.is(nsDAV, "response") {
			continue
		}
		m := msResponse{href: rn.child(nsDAV, "href").Text, props: map[string]int{}, values: map[string]*node{}, err: rn.child(nsDAV, "error")}
		if s := rn.child(nsDAV, "status"); s != nil {
			m.status = statusCode(t, s.Text)
		}
		for _, ps := range rn.Children {
			if !ps.is(nsDAV, "propstat") {
				continue
			}
			code := statusCode(t, ps.child(nsDAV, "status").Text)
			for _, p := range ps.child(nsDAV, "prop").Children {
				k := p.Name.Space + " " + p.Name.Local
				m.props[k] = code
				m.values[k] = p
			}
		}
		out[m.href] = m
	}
	return out
}

func statusCode(t testing.TB, line string) int {
	t.Helper()
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("bad status line %q", line)
	}
	var code int
	for _, c := range f[1] {
		code = code*10 + int(c-'0')
	}
	return code
}

// prop returns a property value of a response, failing unless it is 200.
func (m msResponse) prop(t testing.TB, space, local string) *node {
	t.Helper()
	k := space + " " + local
	if m.props[k] != http.StatusOK {
		t.Fatalf("%s: property %s has status %d (props %v)", m.href, k, m.props[k], m.props)
	}
	return m.values[k]
}

// propfindBody asks for the named properties ("D:x", "C:x", "CR:x",
// "CS:x", "A:x").
func propfindBody(props ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CR="urn:ietf:params:xml:ns:carddav" xmlns:CS="http://calendarserver.org/ns/" xmlns:A="http://apple.com/ns/ical/" xmlns:X="urn:x-test"><D:prop>`)
	for _, p := range props {
		b.WriteString("<" + p + "/>")
	}
	b.WriteString(`</D:prop></D:propfind>`)
	return b.String()
}

func storeKind(k string) store.CollectionKind { return store.CollectionKind(k) }
