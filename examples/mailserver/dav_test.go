package main

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/internal/testpeer"
)

// davServer starts the whole server with only the DAV listener (and the
// MX, which serve always needs something for) on loopback ports.
func davServer(t *testing.T, insecure bool, mods ...func(*Config)) Config {
	t.Helper()
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret")
	cfg := DefaultConfig()
	cfg.Hostname = "mx.example.test"
	cfg.DataDir = d
	cfg.DNS.Server = "127.0.0.1:1"
	port := func() string { return "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)) }
	cfg.SMTP.Listen, cfg.DAV.Listen = port(), port()
	cfg.Submission.Listen, cfg.Submissions.Listen, cfg.IMAP.Listen, cfg.IMAPS.Listen, cfg.HTTP.Listen = "", "", "", "", ""
	cfg.DAV.InsecureHTTP = insecure
	for _, m := range mods {
		m(&cfg)
	}
	startServe(t, cfg)
	if err := testpeer.WaitPort(cfg.DAV.Listen, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func davRequest(t *testing.T, c *http.Client, method, url, user, pass, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("Depth", "0")
	req.Header.Set("Content-Type", "application/xml")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const propfindPrincipal = `<?xml version="1.0"?><propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>`

// TestDAVListener: the [dav] listener speaks HTTPS with the server's
// certificate, redirects the well-known URIs (RFC 6764 §5), answers a
// PROPFIND with the user's principal after Basic auth through the
// directory, refuses a wrong password with 401 and plain HTTP with 400.
func TestDAVListener(t *testing.T) {
	cfg := davServer(t, false)
	c := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		// The well-known redirect is checked, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	base := "https://" + cfg.DAV.Listen

	resp, _ := davRequest(t, c, "PROPFIND", base+"/.well-known/caldav", "", "", propfindPrincipal)
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/dav/" {
		t.Fatalf("PROPFIND /.well-known/caldav: %d Location %q, want a redirect to /dav/", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := davRequest(t, c, "PROPFIND", base+"/dav/", "alice@example.test", "secret", propfindPrincipal)
	if resp.StatusCode != http.StatusMultiStatus || !strings.Contains(body, "/dav/principals/") {
		t.Fatalf("PROPFIND /dav/: %d %s", resp.StatusCode, body)
	}
	if resp.TLS == nil {
		t.Fatal("answered without TLS")
	}
	resp, _ = davRequest(t, c, "PROPFIND", base+"/dav/", "alice@example.test", "wrong", propfindPrincipal)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("wrong password: %d %q, want 401 with a Basic challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// Plain HTTP: refused before any credentials are read. net/http
	// answers 400 to what looks like HTTP (GET, HEAD, POST, PUT,
	// OPTIONS) and drops other methods' connections.
	plain := &http.Client{Timeout: 30 * time.Second}
	for _, method := range []string{"GET", "PROPFIND"} {
		req, err := http.NewRequest(method, "http://"+cfg.DAV.Listen+"/dav/", strings.NewReader(propfindPrincipal))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("alice@example.test", "secret")
		resp, err := plain.Do(req)
		if err != nil {
			if method == "GET" {
				t.Fatalf("plain HTTP GET: %v, want a 400 answer", err)
			}
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP %s: %d, want 400 or a dropped connection", method, resp.StatusCode)
		}
	}
}

// TestDAVInsecureHTTP: with dav.insecure_http the lab listener speaks
// plain HTTP and authenticates.
func TestDAVInsecureHTTP(t *testing.T) {
	cfg := davServer(t, true)
	c := &http.Client{Timeout: 30 * time.Second}
	resp, body := davRequest(t, c, "PROPFIND", "http://"+cfg.DAV.Listen+"/dav/", "alice@example.test", "secret", propfindPrincipal)
	if resp.StatusCode != http.StatusMultiStatus || !strings.Contains(body, "/dav/principals/") {
		t.Fatalf("PROPFIND over plain HTTP with insecure_http: %d %s", resp.StatusCode, body)
	}
}

// TestDAVConfig: [dav] values the decoder accepts but that make no sense
// are refused with the key named.
func TestDAVConfig(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"[dav]\nlisten = \"\"\ninsecure_http = true\n", []string{":3:", `"dav.insecure_http"`}},
		{"[dav]\nmax_instances = -1\n", []string{`"dav"`, "negative"}},
		{"[dav]\nlisten = \"127.0.0.1:2525\"\n", []string{":2:", `"dav.listen"`, `"smtp.listen"`}},
		{"[dav]\nlisten = \"8443\"\n", []string{":2:", `"dav.listen"`}},
		{"[dav]\ntrusted_calendar_senders = [\"Cal <cal@x.test>\"]\n", []string{`"dav.trusted_calendar_senders"`, "bare"}},
	} {
		_, err := LoadConfig(writeConfig(t, tc.text))
		if err == nil {
			t.Errorf("%q: accepted", tc.text)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", tc.text, err, w)
			}
		}
	}
}

// TestDAVConfigLimits: every bound of package dav is in [dav] (issue 14
// item 9), reaches the handler, and refuses a negative value; a request
// body nested deeper than max_xml_depth gets 400 from the listener.
func TestDAVConfigLimits(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "[dav]\nmax_resource_size = 1000\nmax_collections = 2\nmax_objects_per_collection = 3\n"+
		"max_instances = 4\nmax_attendees = 5\nmax_recipients = 6\nmax_request_body = 7000\nmax_xml_depth = 8\n"+
		"max_xml_elements = 9000\nmax_sync_changes = 10\nmax_principal_search = 11\nmax_multiget_hrefs = 12\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := dav.Limits{MaxResourceSize: 1000, MaxCollections: 2, MaxObjectsPerCollection: 3, MaxInstances: 4, MaxAttendees: 5,
		MaxRecipients: 6, MaxRequestBody: 7000, MaxXMLDepth: 8, MaxXMLElements: 9000, MaxSyncChanges: 10,
		MaxPrincipalSearch: 11, MaxMultigetHrefs: 12}
	if got := cfg.DAV.limits(); got != want {
		t.Fatalf("limits %+v, want %+v", got, want)
	}
	for _, key := range []string{"max_recipients", "max_xml_depth", "max_xml_elements", "max_principal_search", "max_multiget_hrefs"} {
		if _, err := LoadConfig(writeConfig(t, "[dav]\n"+key+" = -1\n")); err == nil || !strings.Contains(err.Error(), "negative") {
			t.Errorf("%s = -1: %v", key, err)
		}
	}

	srv := davServer(t, false, func(c *Config) { c.DAV.MaxXMLDepth = 4 })
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 30 * time.Second}
	deep := `<?xml version="1.0"?><propfind xmlns="DAV:"><prop><current-user-principal><a><b/></a></current-user-principal></prop></propfind>`
	if resp, body := davRequest(t, c, "PROPFIND", "https://"+srv.DAV.Listen+"/dav/", "alice@example.test", "secret", deep); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("body 5 deep with max_xml_depth 4: %d %s", resp.StatusCode, body)
	}
	if resp, body := davRequest(t, c, "PROPFIND", "https://"+srv.DAV.Listen+"/dav/", "alice@example.test", "secret", propfindPrincipal); resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("body 3 deep with max_xml_depth 4: %d %s", resp.StatusCode, body)
	}
}

// TestDAVListenerInUse: a DAV address that is taken stops the start
// with an error naming the listener, and the other sockets are closed.
func TestDAVListenerInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	d := newDataDir(t)
	cfg := DefaultConfig()
	cfg.DataDir = d
	cfg.DNS.Server = "127.0.0.1:1"
	smtpAddr := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	cfg.SMTP.Listen, cfg.DAV.Listen = smtpAddr, taken.Addr().String()
	cfg.Submission.Listen, cfg.Submissions.Listen, cfg.IMAP.Listen, cfg.IMAPS.Listen, cfg.HTTP.Listen = "", "", "", "", ""
	err = serve(t.Context(), cfg, newLogger(LogConfig{Level: "error", Format: "text"}, io.Discard))
	var opErr *net.OpError
	if err == nil || !strings.Contains(err.Error(), "dav listener") || !errors.As(err, &opErr) {
		t.Fatalf("serve with the DAV port taken: %v", err)
	}
	// The MX socket opened before it was closed again.
	ln, err := net.Listen("tcp", smtpAddr)
	if err != nil {
		t.Fatalf("the SMTP socket was left open: %v", err)
	}
	ln.Close()
}
