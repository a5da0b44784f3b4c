package dav

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailyard/mailyard/directory"
)

func TestAuthRequired(t *testing.T) {
	e := newEnv(t)
	r := e.do("PROPFIND", "/dav/", propfindBody("D:current-user-principal"), "Auth", "-:", "Depth", "0").expect(t, http.StatusUnauthorized)
	if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="Mailyard"`) {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
	r = e.do("PROPFIND", "/dav/", propfindBody("D:current-user-principal"), "Auth", alice+":wrong", "Depth", "0").expect(t, http.StatusUnauthorized)
	if r.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without a challenge")
	}
	e.do("PROPFIND", "/dav/", propfindBody("D:current-user-principal"), "Depth", "0").expect(t, http.StatusMultiStatus)
}

func TestAuthProtocolNotAllowed(t *testing.T) {
	e := newEnv(t)
	e.do("PROPFIND", "/dav/", "", "Auth", carol+":"+carolPW, "Depth", "0").expect(t, http.StatusForbidden)
	// The right password of a user without DAV is refused each time, not cached.
	e.do("GET", "/dav/calendars/x/default/a.ics", "", "Auth", carol+":"+carolPW).expect(t, http.StatusForbidden)
}

// TestAuthLimiter: repeated wrong passwords are refused with 429 and a
// Retry-After, and then even the right password is not checked for that
// client and login, while another login from the same client still works.
func TestAuthLimiter(t *testing.T) {
	e := newEnv(t)
	var refused resp
	for i := 0; i < 10; i++ {
		r := e.do("PROPFIND", "/dav/", "", "Auth", bob+":guess"+strconv.Itoa(i), "Depth", "0")
		if r.StatusCode == http.StatusTooManyRequests {
			refused = r
			break
		}
		r.expect(t, http.StatusUnauthorized)
	}
	if refused.Response == nil {
		t.Fatal("ten wrong passwords were never refused")
	}
	if s, err := strconv.Atoi(refused.Header.Get("Retry-After")); err != nil || s <= 0 {
		t.Fatalf("Retry-After = %q", refused.Header.Get("Retry-After"))
	}
	e.do("PROPFIND", "/dav/", "", "Auth", bob+":"+bobPW, "Depth", "0").expect(t, http.StatusTooManyRequests)
	e.do("PROPFIND", "/dav/", "", "Depth", "0").expect(t, http.StatusMultiStatus)
	if st := e.lim.Stats(); len(st.Refused) == 0 {
		t.Fatalf("limiter counted no refusal: %+v", st)
	}
}

func TestOptionsAndWellKnown(t *testing.T) {
	e := newEnv(t)
	r := e.do("OPTIONS", "/dav/", "", "Auth", "-:").expect(t, http.StatusOK)
	for _, c := range []string{"1", "3", "calendar-access", "addressbook", "extended-mkcol"} {
		if !strings.Contains(", "+r.Header.Get("DAV")+",", ", "+c+",") {
			t.Errorf("DAV header %q lacks %s", r.Header.Get("DAV"), c)
		}
	}
	if !strings.Contains(r.Header.Get("Allow"), "MKCALENDAR") || !strings.Contains(r.Header.Get("Allow"), "REPORT") {
		t.Errorf("Allow = %q", r.Header.Get("Allow"))
	}
	for _, p := range []string{"/.well-known/caldav", "/.well-known/carddav"} {
		r := e.do("GET", p, "", "Auth", "-:").expect(t, http.StatusMovedPermanently)
		if r.Header.Get("Location") != "/dav/" {
			t.Errorf("%s -> %q", p, r.Header.Get("Location"))
		}
		r = e.do("PROPFIND", p+"/", "", "Auth", "-:").expect(t, http.StatusPermanentRedirect)
		if r.Header.Get("Location") != "/dav/" {
			t.Errorf("%s -> %q", p, r.Header.Get("Location"))
		}
	}
	e.do("GET", "/elsewhere", "").expect(t, http.StatusNotFound)
	e.do("GET", "/davx/", "").expect(t, http.StatusNotFound)
}

// countingDir counts password checks and can fail like a broken
// directory.
type countingDir struct {
	Directory
	checks atomic.Int32
	fail   atomic.Bool
}

func (d *countingDir) Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error) {
	d.checks.Add(1)
	if d.fail.Load() {
		return directory.User{}, errors.New("directory unreachable")
	}
	return d.Directory.Authenticate(ctx, login, password, p)
}

// TestAuthCacheAndDirectoryFailure: verified credentials are not checked
// again within the TTL, a wrong password always is, and a failing
// directory answers 503 with Retry-After.
func TestAuthCacheAndDirectoryFailure(t *testing.T) {
	var cd *countingDir
	e := newEnv(t, func(o *Options) {
		cd = &countingDir{Directory: o.Directory}
		o.Directory = cd
	})
	for range 3 {
		e.do("PROPFIND", "/dav/", "", "Depth", "0").expect(t, http.StatusMultiStatus)
	}
	if n := cd.checks.Load(); n != 1 {
		t.Fatalf("%d password checks for three requests", n)
	}
	e.do("PROPFIND", "/dav/", "", "Auth", alice+":wrong", "Depth", "0").expect(t, http.StatusUnauthorized)
	if n := cd.checks.Load(); n != 2 {
		t.Fatalf("wrong password not checked: %d", n)
	}
	cd.fail.Store(true)
	r := e.do("PROPFIND", "/dav/", "", "Auth", bob+":"+bobPW, "Depth", "0").expect(t, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") != "30" {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
}

func TestAuthDisabled(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AuthCacheTTL = -1 })
	e.do("PROPFIND", "/dav/", "", "Auth", bob+":"+bobPW, "Depth", "0").expect(t, http.StatusMultiStatus)
	if err := e.dir.SetDisabled(context.Background(), e.bobID, true); err != nil {
		t.Fatal(err)
	}
	e.do("PROPFIND", "/dav/", "", "Auth", bob+":"+bobPW, "Depth", "0").expect(t, http.StatusForbidden)
}

// TestAuthCacheNoOracle: a client the limiter refuses gets 429 for the
// right password too, even while the real user's requests from another
// address keep it cached. Before the cache was keyed by client, the
// guesser got 207 for the right guess and 429 for the wrong ones: the
// limiter told it which guess was right and bounded nothing.
func TestAuthCacheNoOracle(t *testing.T) {
	e := newEnv(t)
	attacker := clientFrom(t, "127.0.0.2")
	// The real user, from 127.0.0.1: verified and cached.
	e.do("PROPFIND", "/dav/", "", "Auth", bob+":"+bobPW, "Depth", "0").expect(t, http.StatusMultiStatus)
	refused := false
	for i := 0; i < 10 && !refused; i++ {
		st := attackerDo(t, attacker, e.srv.URL, bob, "guess"+strconv.Itoa(i))
		refused = st == http.StatusTooManyRequests
		if !refused && st != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d", i, st)
		}
	}
	if !refused {
		t.Fatal("ten wrong passwords from one client were never refused")
	}
	if st := attackerDo(t, attacker, e.srv.URL, bob, bobPW); st != http.StatusTooManyRequests {
		t.Fatalf("refused client's right password: status %d, want 429 like its wrong ones", st)
	}
	// The real user is not locked out.
	e.do("PROPFIND", "/dav/", "", "Auth", bob+":"+bobPW, "Depth", "0").expect(t, http.StatusMultiStatus)
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address src (Linux answers on all of 127/8).
func clientFrom(t *testing.T, src string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", "127.0.0.1:1")
	if c != nil {
		c.Close()
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" && strings.Contains(err.Error(), "assign requested address") {
		t.Skipf("cannot connect from %s: %v", src, err)
	}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// attackerDo sends an authenticated PROPFIND with c and returns the status.
func attackerDo(t *testing.T, c *http.Client, base, user, pw string) int {
	t.Helper()
	req, err := http.NewRequest("PROPFIND", base+"/dav/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pw)
	req.Header.Set("Depth", "0")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}
