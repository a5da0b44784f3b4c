package main

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/internal/testpeer"
)

// ipLiteral matches an IPv4 address or an IPv6 address (two colons at
// least; a host:port has one).
var ipLiteral = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b|[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*`)

// With dns.server pointing at a server that never answers, a message on
// the MX waits about dns.timeout once at DATA (DKIM, SPF and DMARC look
// up at the same time under one deadline), not once per check, and the
// stored Authentication-Results names no address.
func TestMXDeadResolverOneDeadline(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret")

	const timeout = 1500 * time.Millisecond
	cfg := DefaultConfig()
	cfg.Hostname = "mx.example.test"
	cfg.DataDir = d
	cfg.DNS.Server = testpeer.SilentDNS(t)
	cfg.DNS.Timeout = Duration{timeout}
	port := func() string { return "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)) }
	cfg.SMTP.Listen, cfg.Submission.Listen, cfg.Submissions.Listen, cfg.HTTP.Listen = port(), port(), port(), port()
	cfg.IMAP.Listen, cfg.IMAPS.Listen = port(), port()
	startServe(t, cfg)
	if err := testpeer.WaitPort(cfg.SMTP.Listen, 20*time.Second); err != nil {
		t.Fatal(err)
	}

	c, err := gosmtp.Dial(cfg.SMTP.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "From: <x@remote.test>\r\nTo: <alice@example.test>\r\nSubject: dead dns\r\n" +
		"DKIM-Signature: v=1; a=rsa-sha256; d=remote.test; s=s1; h=from; bh=AAAA; b=AAAA\r\n\r\nhi\r\n"
	start := time.Now()
	if err := c.SendMail("x@remote.test", []string{"alice@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("message refused with a dead resolver: %v", err)
	}
	took := time.Since(start)
	t.Logf("DATA with a dead resolver and dns.timeout %v: %v", timeout, took)
	// One lookup after the other takes three timeouts at least (DKIM
	// key, SPF, DMARC); the margin above one is for a loaded machine.
	if took >= 5*timeout/2 {
		t.Errorf("DATA took %v with dns.timeout %v: the checks waited one after the other", took, timeout)
	}
	out := mustCLI(t, d, "mail", "cat", "alice@example.test", "INBOX", "1")
	i := strings.Index(out, "Authentication-Results:")
	j := strings.Index(out, "From:")
	if i < 0 || j < i {
		t.Fatalf("stored message: %q", out)
	}
	ar := out[i:j]
	for _, want := range []string{"dkim=temperror", "spf=temperror", "dmarc=temperror"} {
		if !strings.Contains(ar, want) {
			t.Errorf("Authentication-Results lacks %q: %s", want, ar)
		}
	}
	if ip := ipLiteral.FindString(ar); ip != "" {
		t.Errorf("Authentication-Results names %q: %s", ip, ar)
	}
}

// The resolver asks dns.server only, and its errors name that server
// (net.Resolver's own name the resolv.conf server it would have asked).
func TestResolverErrorsNameConfiguredServer(t *testing.T) {
	addr := testpeer.SilentDNS(t)
	r := newResolver(DNSConfig{Server: addr, Timeout: Duration{200 * time.Millisecond}})
	_, err := r.LookupTXT(context.Background(), "example.test")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsTimeout {
		t.Fatalf("lookup against a silent server: %v", err)
	}
	if dnsErr.Server != addr {
		t.Fatalf("error names server %q, want %q (%v)", dnsErr.Server, addr, err)
	}
}
