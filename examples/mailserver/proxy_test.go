package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/internal/proxyproto"
	"github.com/mailyard/mailyard/internal/testpeer"
)

// proxyServer starts the server with the PROXY protocol on the listeners
// named (smtp, imaps, dav), trusting the loopback address the tests dial
// from. Only those listeners are opened, and each test uses all of them:
// a listener still starting when the test ends would race with shutdown.
func proxyServer(t *testing.T, routing *RoutingConfig, listeners ...string) (Config, string) {
	t.Helper()
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret")
	mustCLI(t, d, "user", "add", "bob@example.test", "-password", "secret")

	cfg := testConfig(d)
	var addrs []string
	for _, l := range listeners {
		a := freePort(t)
		switch l {
		case "smtp":
			cfg.SMTP = ListenerConfig{Listen: a, ProxyProtocol: true}
		case "imaps":
			cfg.IMAPS = IMAPConfig{Listen: a, ProxyProtocol: true}
		case "dav":
			cfg.DAV.Listen, cfg.DAV.ProxyProtocol = a, true
		default:
			t.Fatalf("listener %q", l)
		}
		addrs = append(addrs, a)
	}
	cfg.Proxy.Trusted = []string{"127.0.0.1"}
	cfg.Limits.AuthStrangerChecks = 1
	cfg.Routing = routing
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	startServe(t, cfg)
	for _, a := range addrs {
		if err := testpeer.WaitPort(a, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return cfg, d
}

// dialProxied connects to addr as a balancer relaying client would: a
// PROXY header of version v naming client comes first.
func dialProxied(t *testing.T, addr string, v int, client string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := proxyproto.Header{Version: v, Proxied: true,
		Source:      netip.MustParseAddrPort(client),
		Destination: netip.MustParseAddrPort(addr)}
	if _, err := c.Write(h.Append(nil)); err != nil {
		t.Fatal(err)
	}
	return c
}

// The client address of the header is the one relaynets judge and the
// Received field records.
func TestProxyProtocolSMTP(t *testing.T) {
	cfg, d := proxyServer(t, &RoutingConfig{Relaynets: []string{"198.51.100.0/24"}}, "smtp")

	// From a relaynet: relaying to a remote domain is allowed, and a
	// local delivery records the client's address.
	c := gosmtp.NewClient(dialProxied(t, cfg.SMTP.Listen, 2, "198.51.100.7:40000"))
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("sender@elsewhere.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("someone@remote.test", nil); err != nil {
		t.Fatalf("relay from a relaynet client: %v", err)
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	msg := "From: <sender@elsewhere.test>\r\nTo: <alice@example.test>\r\nSubject: via balancer\r\n\r\nhi\r\n"
	if err := c.SendMail("sender@elsewhere.test", []string{"alice@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	out := mustCLI(t, d, "mail", "cat", "alice@example.test", "INBOX", "1")
	if !strings.Contains(out, "Received: from client.example (unknown [198.51.100.7])") {
		t.Fatalf("Received field does not name the proxied client:\n%s", out)
	}

	// From elsewhere (v1 this time): the same relay is refused, though
	// the socket's address is the same loopback one.
	c = gosmtp.NewClient(dialProxied(t, cfg.SMTP.Listen, 1, "203.0.113.9:40000"))
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("sender@elsewhere.test", nil); err != nil {
		t.Fatal(err)
	}
	var se *gosmtp.SMTPError
	if err := c.Rcpt("someone@remote.test", nil); !errors.As(err, &se) || se.Code != 554 {
		t.Fatalf("relay from outside the relaynets: %v, want 554", err)
	}
}

// The auth limiter keys on the header's client: failures from one proxied
// client spend its budget, not that of another client behind the same
// balancer.
func TestProxyProtocolIMAPLimiter(t *testing.T) {
	cfg, _ := proxyServer(t, nil, "imaps")
	login := func(client, password string) error {
		conn := tls.Client(dialProxied(t, cfg.IMAPS.Listen, 2, client), &tls.Config{InsecureSkipVerify: true})
		c := imapclient.New(conn, nil)
		defer c.Close()
		return c.Login("alice@example.test", password).Wait()
	}
	// 203.0.113.1 fails once (a Fresh check), then once more as a
	// Stranger, which spends alice's stranger budget of one check.
	for i := range 2 {
		if err := login("203.0.113.1:1000", "wrong"); err == nil {
			t.Fatalf("attempt %d: wrong password accepted", i)
		}
	}
	// Now even its right password is not checked.
	err := login("203.0.113.1:1001", "secret")
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeUnavailable {
		t.Fatalf("third attempt from the failing client: %v, want NO [UNAVAILABLE]", err)
	}
	// Another client behind the same balancer has no failures: Fresh,
	// checked, logged in. Were the limiter keyed on the balancer's
	// address it would be the failing client's Stranger.
	if err := login("203.0.113.2:1000", "secret"); err != nil {
		t.Fatalf("another proxied client: %v", err)
	}
}

// The same for DAV: the header precedes TLS and the request's client is
// the header's.
func TestProxyProtocolDAVLimiter(t *testing.T) {
	cfg, _ := proxyServer(t, nil, "dav")
	login := func(client, password string) int {
		hc := &http.Client{Transport: &http.Transport{
			DisableKeepAlives: true,
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return tls.Client(dialProxied(t, addr, 1, client), &tls.Config{InsecureSkipVerify: true}), nil
			},
		}}
		req, err := http.NewRequest("PROPFIND", "https://"+cfg.DAV.Listen+davPrefix+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Depth", "0")
		req.SetBasicAuth("alice@example.test", password)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 2 {
		if code := login("203.0.113.1:1000", "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d with a wrong password: %d", i, code)
		}
	}
	if code := login("203.0.113.1:1001", "secret"); code != http.StatusTooManyRequests {
		t.Fatalf("third attempt from the failing client: %d, want 429", code)
	}
	if code := login("203.0.113.2:1000", "secret"); code != http.StatusMultiStatus {
		t.Fatalf("another proxied client: %d, want 207", code)
	}
}
