package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/testpeer"
)

// geoSection is a valid [geo] section with one link, for the error cases
// to change.
const geoSection = `[geo]
site = "paris"
mx = "127.0.0.1:25"
nats_listen = "127.0.0.1:4248"
cert_file = "c.pem"
key_file = "k.pem"
ca_file = "ca.pem"
[[geo.link]]
site = "berlin"
nats = ["tls://127.0.0.1:4249"]
mx = "127.0.0.1:2525"
allow = ["127.0.0.1", "10.0.0.0/8"]
calendar_senders = ["calendar@berlin.example"]
`

func TestGeoConfig(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, geoSection))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Geo == nil || cfg.Geo.Site != "paris" || len(cfg.Geo.Links) != 1 || cfg.Geo.Links[0].NATS[0] != "tls://127.0.0.1:4249" {
		t.Fatalf("[geo] read as %+v", cfg.Geo)
	}
	// The links' calendar senders are trusted with dav's own.
	cfg.DAV.TrustedCalendarSenders = []string{"system@linked.test"}
	if got := strings.Join(cfg.trustedCalendarSenders(), " "); got != "system@linked.test calendar@berlin.example" {
		t.Errorf("trusted calendar senders %q", got)
	}
	// Off by default.
	if def := DefaultConfig(); def.Geo != nil || def.trustedCalendarSenders() != nil {
		t.Errorf("default config has geo: %+v", def.Geo)
	}
}

// The documented [geo] example is a valid configuration.
func TestGeoExampleConfig(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, exampleSection(t, "[geo]")))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Geo
	if g == nil || g.Site != "paris" || g.ReconcileInterval.Duration != 30*time.Second || len(g.Links) != 1 ||
		g.Links[0].Site != "berlin" || g.Links[0].CalendarSenders[0] != "calendar@berlin.example" {
		t.Fatalf("example [geo] decoded as %+v", g)
	}
	opts, err := g.options(cfg.DataDir)
	if err == nil || !strings.Contains(err.Error(), "/etc/mailyard/geo/paris.pem") {
		t.Fatalf("options without the certificate files: %+v %v", opts, err)
	}
}

func TestGeoConfigErrors(t *testing.T) {
	cases := []struct {
		old, new string
		want     []string
	}{
		{`site = "paris"`, `site = "Paris"`, []string{":2:", `"geo.site"`}},
		{`mx = "127.0.0.1:25"`, `mx = "mx.paris"`, []string{":3:", `"geo.mx"`, "host:port"}},
		{`nats_listen = "127.0.0.1:4248"`, `nats_external = "nats://127.0.0.1:4222"` + "\nnats_listen = \"127.0.0.1:4248\"", []string{`"geo.nats_external"`, "not both"}},
		{`nats_listen = "127.0.0.1:4248"`, ``, []string{`"geo.nats_listen"`, "missing"}},
		{`nats_listen = "127.0.0.1:4248"`, `nats_external = "http://127.0.0.1:4222"`, []string{":4:", `"geo.nats_external"`, "nats:// or tls://"}},
		{`ca_file = "ca.pem"`, ``, []string{"geo.ca_file", "all three or none"}},
		{"cert_file = \"c.pem\"\nkey_file = \"k.pem\"\nca_file = \"ca.pem\"\n", ``, []string{`"geo.cert_file"`, "mutual TLS"}},
		{`site = "berlin"`, `site = "paris"`, []string{":9:", `"geo.link[0].site"`, "this site"}},
		{`nats = ["tls://127.0.0.1:4249"]`, `nats = []`, []string{":10:", `"geo.link[0].nats"`, "missing"}},
		{`nats = ["tls://127.0.0.1:4249"]`, `nats = ["127.0.0.1"]`, []string{":10:", `"geo.link[0].nats"`}},
		{`mx = "127.0.0.1:2525"`, `mx = ""`, []string{":11:", `"geo.link[0].mx"`}},
		{`allow = ["127.0.0.1", "10.0.0.0/8"]`, `allow = ["10.0.0.0/33"]`, []string{":12:", `"geo.link[0].allow"`}},
		{`calendar_senders = ["calendar@berlin.example"]`, `calendar_senders = ["Cal <c@x.test>"]`, []string{":13:", `"geo.link[0].calendar_senders"`, "bare"}},
		{"[[geo.link]]", "[[geo.link]]\nsite = \"berlin\"\nnats = [\"tls://127.0.0.1:1\"]\nmx = \"127.0.0.1:1\"\n[[geo.link]]", []string{`"geo.link[1].site"`, "linked twice"}},
		{"[[geo.link]]\nsite = \"berlin\"\nnats = [\"tls://127.0.0.1:4249\"]\nmx = \"127.0.0.1:2525\"\nallow = [\"127.0.0.1\", \"10.0.0.0/8\"]\ncalendar_senders = [\"calendar@berlin.example\"]\n", "", []string{"no [[geo.link]]"}},
		{`site = "paris"`, "site = \"paris\"\nsite_name = \"x\"", []string{":3:", "unknown key", "geo.site_name"}},
	}
	for _, c := range cases {
		text := strings.Replace(geoSection, c.old, c.new, 1)
		if text == geoSection {
			t.Fatalf("case %q does not change the section", c.old)
		}
		p := writeConfig(t, text)
		_, err := LoadConfig(p)
		if err == nil {
			t.Errorf("%q: no error", text)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q -> %q: error %q lacks %q", c.old, c.new, err, w)
			}
		}
	}
}

// geoCA issues the sites' certificates into dir: ca.pem and, per site,
// SITE.pem and SITE.key with the site ID as DNS name.
type geoCA struct {
	dir  string
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	n    int64
}

func newGeoCA(t *testing.T) *geoCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "geo test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &geoCA{dir: t.TempDir(), key: key, cert: cert, n: 1}
	writePEM(t, filepath.Join(ca.dir, "ca.pem"), "CERTIFICATE", der)
	return ca
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// site writes SITE.pem and SITE.key.
func (ca *geoCA) site(t *testing.T, site string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.n++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: site},
		DNSNames: []string{site}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(ca.dir, site+".pem"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(ca.dir, site+".key"), "PRIVATE KEY", kder)
}

// geoTestSite is one site of TestGeoTwoSites: its config file and ports.
type geoTestSite struct {
	id, cfgPath, dataDir         string
	smtp, http, nats, dav, other string
}

// geoCLI runs a command with the site's config file.
func geoCLI(t *testing.T, s *geoTestSite, args ...string) (int, string, string) {
	t.Helper()
	return cli(t, s.dataDir, "", append([]string{"-config", s.cfgPath}, args...)...)
}

// TestGeoTwoSites runs two linked sites in-process with embedded NATS:
// the links turn green, a user created by the admin command on one site
// is located on the other at once (the command announces the change over
// the control socket), the geo commands and /metrics report the links.
func TestGeoTwoSites(t *testing.T) {
	ca := newGeoCA(t)
	port := func() string { return "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)) }
	sites := map[string]*geoTestSite{}
	for _, id := range []string{"paris", "berlin"} {
		ca.site(t, id)
		sites[id] = &geoTestSite{id: id, smtp: port(), http: port(), nats: port(), dav: port()}
	}
	sites["paris"].other, sites["berlin"].other = "berlin", "paris"
	for _, s := range sites {
		peer := sites[s.other]
		s.dataDir = newDataDir(t)
		text := fmt.Sprintf(`hostname = "mx.%[1]s.test"
data_dir = %[2]q
[smtp]
listen = %[3]q
[submission]
listen = ""
[submissions]
listen = ""
[imap]
listen = ""
[imaps]
listen = ""
[dav]
listen = %[12]q
insecure_http = true
[http]
listen = %[4]q
[dns]
server = "127.0.0.1:1"
[geo]
site = %[1]q
mx = %[3]q
nats_listen = %[5]q
cert_file = %[6]q
key_file = %[7]q
ca_file = %[8]q
reconcile_interval = "1h"
[[geo.link]]
site = %[9]q
nats = ["tls://%[10]s"]
mx = %[11]q
allow = ["127.0.0.1"]
`, s.id, s.dataDir, s.smtp, s.http, s.nats, filepath.Join(ca.dir, s.id+".pem"), filepath.Join(ca.dir, s.id+".key"),
			filepath.Join(ca.dir, "ca.pem"), peer.id, peer.nats, peer.smtp, s.dav)
		s.cfgPath = writeConfig(t, text)
		if code, _, stderr := geoCLI(t, s, "domain", "add", s.id+".test"); code != 0 {
			t.Fatal(stderr)
		}
	}
	paris, berlin := sites["paris"], sites["berlin"]

	// Without a running server, the commands that ask it say so.
	if code, _, stderr := geoCLI(t, paris, "geo", "status"); code != exitFailed || !strings.Contains(stderr, "not running") {
		t.Fatalf("geo status without a server: %d %q", code, stderr)
	}
	// links needs only the config.
	if code, out, _ := geoCLI(t, paris, "geo", "links"); code != 0 || !strings.Contains(out, "berlin") || !strings.Contains(out, "tls://"+berlin.nats) {
		t.Fatalf("geo links: %d %q", code, out)
	}
	// Without [geo], the geo commands explain.
	if code, _, stderr := cli(t, newDataDir(t), "", "geo", "conflicts"); code != exitFailed || !strings.Contains(stderr, "no [geo] section") {
		t.Fatalf("geo conflicts without [geo]: %d %q", code, stderr)
	}

	for _, s := range sites {
		cfg, err := LoadConfig(s.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		startServe(t, cfg)
	}
	for _, s := range sites {
		if err := testpeer.WaitPort(s.http, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitGeo(t, 30*time.Second, "both links green", func() error {
		for _, s := range sites {
			var st geoStatus
			_, out, stderr := geoCLI(t, s, "geo", "status", "-json")
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				return fmt.Errorf("%s: %v %s", s.id, err, stderr)
			}
			if len(st.Links) != 1 || !st.Links[0].Green {
				return fmt.Errorf("%s: %+v", s.id, st.Links)
			}
		}
		return nil
	})
	if code, out, _ := geoCLI(t, berlin, "geo", "status"); code != 0 || !strings.Contains(out, "paris  green  yes") {
		t.Errorf("geo status on berlin: %q", out)
	}

	// A user made on paris: the command announces it, berlin locates it
	// (the reconcile interval is an hour, so only the notice can do it).
	if code, _, stderr := geoCLI(t, paris, "user", "add", "ann@paris.test", "-password", "pw"); code != 0 {
		t.Fatal(stderr)
	}
	waitGeo(t, 20*time.Second, "berlin routes ann@paris.test to paris", func() error {
		_, out, stderr := geoCLI(t, berlin, "route", "explain", "ann@paris.test")
		if !strings.Contains(out, "lives on site paris") {
			return fmt.Errorf("%s%s", out, stderr)
		}
		return nil
	})

	// Free/busy of paris's user, asked from berlin over NATS: paris
	// answers with dav.FreeBusy (no events: free). An address no site
	// holds is reported.
	if code, out, stderr := geoCLI(t, berlin, "geo", "freebusy", "ann@paris.test", "-json"); code != 0 || !strings.Contains(out, `"ann@paris.test"`) {
		t.Errorf("geo freebusy of a paris user from berlin: %d %q %q", code, out, stderr)
	}
	if code, _, stderr := geoCLI(t, berlin, "geo", "freebusy", "nobody@nowhere.test"); code != exitFailed || !strings.Contains(stderr, "nobody@nowhere.test") {
		t.Errorf("geo freebusy of an unknown address: %d %q", code, stderr)
	}

	// The same through CalDAV: a berlin user's outbox POST (RFC 6638 §5)
	// for ann answers with paris's busy time (dav.Options.RemoteFreeBusy).
	geoOutboxFreeBusy(t, paris, berlin)

	// Deleted on paris: the command's notice publishes the tombstone, and
	// berlin no longer sends the address to paris.
	if code, _, stderr := geoCLI(t, paris, "user", "delete", "ann@paris.test", "--yes"); code != 0 {
		t.Fatal(stderr)
	}
	waitGeo(t, 20*time.Second, "berlin forgets ann@paris.test", func() error {
		_, out, stderr := geoCLI(t, berlin, "route", "explain", "ann@paris.test")
		if strings.Contains(out, "site paris") {
			return fmt.Errorf("%s%s", out, stderr)
		}
		return nil
	})

	// No such conflict: clear says so.
	if code, _, stderr := geoCLI(t, paris, "geo", "clear", "berlin", "duplicate_address", "x@paris.test"); code != exitFailed || !strings.Contains(stderr, "no such conflict") {
		t.Errorf("geo clear of nothing: %d %q", code, stderr)
	}
	if code, _, _ := geoCLI(t, paris, "geo", "clear", "berlin", "bogus"); code != exitUsage {
		t.Errorf("geo clear with an unknown kind: exit %d", code)
	}
	if code, out, _ := geoCLI(t, paris, "geo", "conflicts", "-json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("geo conflicts: %d %q", code, out)
	}

	resp, err := http.Get("http://" + paris.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{`mailyard_geo_link_up{peer="berlin"} 1`, `mailyard_geo_link_connected{peer="berlin"} 1`, `mailyard_geo_conflicts{kind="duplicate_address"} 0`} {
		if !strings.Contains(string(body), w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
}

// waitGeo retries cond until it succeeds or d passes.
func waitGeo(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A second server on the same data directory does not take the running
// one's control socket; a stale socket file is replaced.
func TestGeoControlSocketInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "geo.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("no unix sockets here: %v", err)
	}
	g := &geoSite{}
	if err := g.listenControl(path); !errors.Is(err, errGeoSocketInUse) {
		t.Fatalf("listenControl on a live socket: %v", err)
	}
	ln.Close()
	// Closing the listener removed the file; leave a stale one.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.listenControl(path); err != nil {
		t.Fatalf("listenControl over a stale file: %v", err)
	}
	g.ctl.Close()
}

func TestChangedAddresses(t *testing.T) {
	got := changedAddresses([]string{"Ann@Paris.test", "-name", "x@y", "-password", "pw", "alias@paris.test", "paris.test", "-json"})
	want := []string{"ann@paris.test", "x@y", "alias@paris.test"}
	if !slices.Equal(got, want) {
		t.Fatalf("changedAddresses = %q, want %q", got, want)
	}
	if got := changedAddresses([]string{"paris.test", "alt.paris.test"}); len(got) != 0 {
		t.Fatalf("a domain command names no address: %q", got)
	}
}

// geoOutboxFreeBusy: ann@paris.test (made by the caller) books an hour
// on paris; bea, made on berlin, asks her outbox there for ann's and an
// unknown address's free/busy and gets ann's hour from paris (2.0) and
// 3.7 for the unknown one.
func geoOutboxFreeBusy(t *testing.T, paris, berlin *geoTestSite) {
	t.Helper()
	if code, _, stderr := geoCLI(t, berlin, "user", "add", "bea@berlin.test", "-password", "pw"); code != 0 {
		t.Fatal(stderr)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	home := func(s *geoTestSite, user string) string {
		resp, body := davRequest(t, c, "PROPFIND", "http://"+s.dav+"/dav/", user, "pw", propfindPrincipal)
		i := strings.Index(body, "/dav/principals/")
		if resp.StatusCode != http.StatusMultiStatus || i < 0 {
			t.Fatalf("PROPFIND as %s: %d %s", user, resp.StatusCode, body)
		}
		return "http://" + s.dav + "/dav/calendars/" + strings.TrimPrefix(body[i:i+strings.Index(body[i:], "<")], "/dav/principals/")
	}
	send := func(method, url, user, body string) (int, string) {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(user, "pw")
		req.Header.Set("Content-Type", "text/calendar; charset=utf-8")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	event := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:ann-1\r\nDTSTAMP:20261201T000000Z\r\n" +
		"DTSTART:20261208T090000Z\r\nDTEND:20261208T100000Z\r\nSUMMARY:secret\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	if code, body := send(http.MethodPut, home(paris, "ann@paris.test")+"calendar/ann-1.ics", "ann@paris.test", event); code != http.StatusCreated {
		t.Fatalf("PUT of ann's event on paris: %d %s", code, body)
	}
	request := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VFREEBUSY\r\nUID:fb-geo\r\n" +
		"DTSTAMP:20261201T000000Z\r\nDTSTART:20261207T000000Z\r\nDTEND:20261214T000000Z\r\nORGANIZER:mailto:bea@berlin.test\r\n" +
		"ATTENDEE:mailto:ann@paris.test\r\nATTENDEE:mailto:nobody@nowhere.test\r\nEND:VFREEBUSY\r\nEND:VCALENDAR\r\n"
	code, body := send(http.MethodPost, home(berlin, "bea@berlin.test")+"outbox/", "bea@berlin.test", request)
	if code != http.StatusOK {
		t.Fatalf("outbox POST on berlin: %d %s", code, body)
	}
	// One response per recipient, in the request's order.
	ann, nobody, _ := strings.Cut(body, "nobody@nowhere.test")
	for _, want := range []string{"mailto:ann@paris.test", "2.0;", "METHOD:REPLY", "FREEBUSY:20261208T090000Z/20261208T100000Z"} {
		if !strings.Contains(ann, want) {
			t.Errorf("ann's part of the schedule-response lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "secret") {
		t.Errorf("the schedule-response shows the event's summary:\n%s", body)
	}
	if !strings.Contains(nobody, "3.7;") {
		t.Errorf("the unknown recipient is not 3.7:\n%s", body)
	}
}
