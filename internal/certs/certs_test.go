package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSelfSignedServesTLS(t *testing.T) {
	cert, err := SelfSigned([]string{"mx.example.test", "127.0.0.1", "localhost", "MX.example.test."})
	if err != nil {
		t.Fatal(err)
	}
	if got := cert.Leaf.DNSNames; len(got) != 2 || got[0] != "mx.example.test" || got[1] != "localhost" {
		t.Errorf("DNS SANs = %v, want [mx.example.test localhost] (duplicates dropped)", got)
	}
	if len(cert.Leaf.IPAddresses) != 1 || !cert.Leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IP SANs = %v", cert.Leaf.IPAddresses)
	}
	if time.Until(cert.Leaf.NotAfter) < 365*24*time.Hour {
		t.Errorf("expires too soon: %v", cert.Leaf.NotAfter)
	}

	// A client that trusts the certificate can complete a handshake for
	// each name.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	for _, name := range []string{"mx.example.test", "localhost", "127.0.0.1"} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Errorf("handshake as %s: %v", name, err)
			continue
		}
		c.Close()
	}
	if _, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "other.test"}); err == nil {
		t.Error("certificate accepted for a name it does not carry")
	}
}

func TestSelfSignedNeedsHost(t *testing.T) {
	if _, err := SelfSigned(nil); err == nil {
		t.Fatal("no error without hosts")
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	cert1, fp1, err := LoadOrCreate(dir, []string{"mx.example.test"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if fp1 != Fingerprint(cert1.Certificate[0]) || len(fp1) != 32*3-1 {
		t.Errorf("fingerprint %q", fp1)
	}
	if !strings.Contains(logs.String(), fp1) {
		t.Errorf("fingerprint not logged on creation: %s", logs.String())
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Error("key material in the log")
	}
	for _, name := range []string{CertFile, KeyFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want cert and key only", len(entries))
	}

	// Second start: the same certificate, not a new one.
	cert2, fp2, err := LoadOrCreate(dir, []string{"other.example.test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fp2 != fp1 || !bytes.Equal(cert2.Certificate[0], cert1.Certificate[0]) {
		t.Error("certificate regenerated on second start")
	}
}

func TestLoadOrCreateRefusesHalfPair(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(dir, []string{"x.test"}, nil); err == nil {
		t.Fatal("generated a certificate next to an existing key")
	}
	b, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	if string(b) != "precious" {
		t.Error("existing key overwritten")
	}
}

func TestLoadOrCreateCorrupt(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("junk"), 0o600)
	os.WriteFile(filepath.Join(dir, CertFile), []byte("junk"), 0o600)
	if _, _, err := LoadOrCreate(dir, []string{"x.test"}, nil); err == nil {
		t.Fatal("loaded a corrupt pair")
	}
}

// A generated server certificate verifies for the configured host name
// and for every loopback name a local client dials (the README's examples
// use 127.0.0.1), checked by real TLS handshakes.
func TestLoadOrCreateCoversLoopback(t *testing.T) {
	cert, _, err := LoadOrCreate(t.TempDir(), []string{"mx.example.test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Leaf.Subject.CommonName != "mx.example.test" {
		t.Errorf("common name %q, want the configured host name", cert.Leaf.Subject.CommonName)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	for _, name := range []string{"mx.example.test", "localhost", "127.0.0.1", "::1"} {
		if err := handshake(t, cert, &tls.Config{RootCAs: roots, ServerName: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := handshake(t, cert, &tls.Config{RootCAs: roots, ServerName: "other.example.test"}); err == nil {
		t.Error("verified for a name it does not cover")
	}
}

// handshake runs one TLS handshake over loopback between cert and a client
// configured by cc, and returns the client's error.
func handshake(t *testing.T, cert tls.Certificate, cc *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.(*tls.Conn).Handshake() // its error is the client's refusal
		c.Close()
	}()
	defer func() { <-done }()
	c, err := tls.Dial("tcp", ln.Addr().String(), cc)
	if err != nil {
		return err
	}
	return c.Close()
}

// A certificate from before (not covering 127.0.0.1 and ::1) is kept,
// since clients may have pinned it, with a warning naming what it lacks.
func TestLoadOrCreateWarnsOfUncoveredNames(t *testing.T) {
	dir := t.TempDir()
	old, err := SelfSigned([]string{"mx.example.test", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(old.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{KeyFile: {Type: "PRIVATE KEY", Bytes: keyDER}, CertFile: {Type: "CERTIFICATE", Bytes: old.Certificate[0]}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	got, _, err := LoadOrCreate(dir, []string{"mx.example.test"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Certificate[0], old.Certificate[0]) {
		t.Fatal("an existing certificate was replaced")
	}
	if l := logs.String(); !strings.Contains(l, "does not cover") || !strings.Contains(l, "127.0.0.1") || !strings.Contains(l, "::1") || strings.Contains(l, "missing=\"[mx.example.test") {
		t.Fatalf("log: %s", l)
	}
	// A certificate covering every name is loaded without a warning.
	logs.Reset()
	dir2 := t.TempDir()
	if _, _, err := LoadOrCreate(dir2, []string{"mx.example.test"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(dir2, []string{"mx.example.test"}, slog.New(slog.NewTextHandler(&logs, nil))); err != nil || logs.Len() != 0 {
		t.Fatalf("reload: %v, log %q", err, logs.String())
	}
}
