package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/testpeer"
)

// The self-signed certificate the server generates verifies for the
// configured host name and for localhost, 127.0.0.1 and ::1, so that the
// README's 127.0.0.1 examples work with verification on (trusting
// cert.pem, as its fingerprint says).
func TestGeneratedCertificateVerifiesLocally(t *testing.T) {
	d := newDataDir(t)
	cfg := DefaultConfig()
	cfg.Hostname = "mx.example.test"
	cfg.DataDir = d
	cfg.DNS.Server = "127.0.0.1:1"
	port := func() string { return "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)) }
	cfg.SMTP.Listen, cfg.Submission.Listen, cfg.Submissions.Listen, cfg.HTTP.Listen = port(), port(), port(), port()
	cfg.IMAP.Listen, cfg.IMAPS.Listen = port(), port()
	startServe(t, cfg)
	if err := testpeer.WaitPort(cfg.Submissions.Listen, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(d, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("cert.pem holds no certificate")
	}
	for _, name := range []string{"mx.example.test", "localhost", "127.0.0.1", "::1"} {
		c, err := tls.Dial("tcp", cfg.Submissions.Listen, &tls.Config{RootCAs: roots, ServerName: name})
		if err != nil {
			t.Errorf("TLS to %s as %q: %v", cfg.Submissions.Listen, name, err)
			continue
		}
		c.Close()
	}
}
