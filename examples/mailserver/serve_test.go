package main

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/internal/testpeer"
)

// TestServeEndToEnd starts the server in-process on loopback ports, submits
// a message with STARTTLS + AUTH, reads it back with the admin command,
// checks /healthz and /metrics, and shuts down on context cancellation.
func TestServeEndToEnd(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret")

	cfg := DefaultConfig()
	cfg.Hostname = "mx.example.test"
	cfg.DataDir = d
	cfg.DNS.Server = "127.0.0.1:1" // nothing answers; no lookup leaves loopback
	port := func() string { return "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)) }
	cfg.SMTP.Listen, cfg.Submission.Listen, cfg.Submissions.Listen, cfg.HTTP.Listen = port(), port(), port(), port()
	cfg.IMAP.Listen, cfg.IMAPS.Listen = port(), port()
	cfg.DAV.Listen = "" // dav_test.go

	startServe(t, cfg)
	for _, a := range []string{cfg.SMTP.Listen, cfg.Submission.Listen, cfg.Submissions.Listen, cfg.HTTP.Listen} {
		if err := testpeer.WaitPort(a, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The self-signed certificate was generated into the data directory.
	if _, err := tls.LoadX509KeyPair(filepath.Join(d, "cert.pem"), filepath.Join(d, "key.pem")); err != nil {
		t.Fatalf("generated certificate: %v", err)
	}

	c, err := gosmtp.DialStartTLS(cfg.Submission.Listen, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.test", "secret")); err != nil {
		t.Fatal(err)
	}
	msg := "From: <alice@example.test>\r\nTo: <alice@example.test>\r\nSubject: note to self\r\n\r\nhi\r\n"
	if err := c.SendMail("alice@example.test", []string{"alice@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, d, "mail", "cat", "alice@example.test", "INBOX", "1")
	if !strings.HasSuffix(out, msg) || !strings.Contains(out, "with ESMTPSA") {
		t.Fatalf("stored message: %q", out)
	}

	for path, want := range map[string]string{"/healthz": "ok", "/metrics": `mailyard_smtp_messages_accepted_total{listener="submission"} 1`} {
		resp, err := http.Get("http://" + cfg.HTTP.Listen + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
		if path == "/metrics" {
			// The outbound queue's gauges and counters are exposed too;
			// every labelled series exists from the start, at zero, so
			// alerts on absent series work (issue 19 item 10).
			for _, w := range []string{`mailyard_queue_recipients{state="ready"} 0`, `mailyard_queue_deliveries_total{result="delivered"} 0`,
				`mailyard_build_info{commit="`,
				`mailyard_smtp_command_duration_seconds_count{command="data",listener="submission"} 1`,
				`mailyard_smtp_command_duration_seconds_count{command="rcpt",listener="smtp"} 0`,
				`mailyard_smtp_auth_checks_total{listener="smtp",method="dmarc",result="fail"} 0`,
				`mailyard_smtp_messages_rejected_total{listener="smtp",reason="quota"} 0`,
				`mailyard_smtp_recipients_total{listener="submission",outcome="deliver"} 1`,
				`mailyard_imap_command_duration_seconds_count{command="fetch",listener="imaps"} 0`,
				`mailyard_imap_auth_total{listener="imap",result="failure"} 0`,
				`mailyard_store_operation_duration_seconds_bucket{op="write",le="30"}`,
				`mailyard_store_operation_duration_seconds_count{op="read"}`} {
				if !strings.Contains(string(body), w) {
					t.Fatalf("GET /metrics lacks %q", w)
				}
			}
		}
	}
}

// dns.timeout bounds each lookup, also against a server that never
// answers (net.Resolver alone would wait resolv.conf's timeout per
// attempt, seconds each, whatever the dial timeout).
func TestResolverTimeout(t *testing.T) {
	r := newResolver(DNSConfig{Server: testpeer.SilentDNS(t), Timeout: Duration{200 * time.Millisecond}})
	start := time.Now()
	_, err := r.LookupTXT(context.Background(), "example.test")
	if err == nil {
		t.Fatal("lookup answered by a silent server")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("lookup took %v with dns.timeout 200ms", d)
	}
}

// testConfig is the defaults with data directory d, hostname
// mx.example.test, DNS on a loopback port where nothing answers (no lookup
// leaves loopback), no DKIM/SPF/DMARC checks and every listener off; set
// the ones a test needs to freePort addresses.
func testConfig(d string) Config {
	cfg := DefaultConfig()
	cfg.Hostname = "mx.example.test"
	cfg.DataDir = d
	cfg.DNS.Server = "127.0.0.1:1"
	cfg.AuthChecks.Enabled = false
	cfg.SMTP.Listen, cfg.Submission.Listen, cfg.Submissions.Listen, cfg.HTTP.Listen = "", "", "", ""
	cfg.IMAP.Listen, cfg.IMAPS.Listen, cfg.DAV.Listen = "", "", ""
	return cfg
}

// freePort returns a free loopback address for a listener.
func freePort(t *testing.T) string { return "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)) }

// startServe runs serve with cfg until the test ends, then stops it and
// checks that it returned cleanly.
func startServe(t *testing.T, cfg Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, newLogger(LogConfig{Level: "warn", Format: "text"}, io.Discard)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not return after cancel")
		}
	})
}
