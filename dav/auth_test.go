package dav

import (
	"context"
	"errors"
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
