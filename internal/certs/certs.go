// Package certs provides the TLS certificate a Mailyard server uses when the
// administrator has not configured one: a self-signed ECDSA P-256
// certificate, generated once into the data directory and reused on every
// later start, so that clients that pinned its fingerprint keep trusting it.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mailyard/mailyard/internal/durable"
)

// File names inside the directory given to [LoadOrCreate].
const (
	CertFile = "cert.pem"
	KeyFile  = "key.pem"
)

// Validity is how long a generated certificate is valid.
const Validity = 2 * 365 * 24 * time.Hour

// SelfSigned returns a new self-signed certificate for hosts: entries that
// parse as IP addresses go into the IP SANs, the others into the DNS SANs;
// the first entry is also the subject common name. The leaf is parsed
// (Certificate.Leaf is set). At least one host is required.
func SelfSigned(hosts []string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("certs: no host names")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"Mailyard self-signed"}},
		// Backdated an hour so that clients with a slightly slow clock
		// accept it right away.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	seen := make(map[string]bool)
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.TrimSpace(h), ".")
		if h == "" || seen[strings.ToLower(h)] {
			continue
		}
		seen[strings.ToLower(h)] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: parse certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Fingerprint returns the SHA-256 fingerprint of a DER certificate as
// colon-separated upper-case hex pairs ("AB:CD:..."), the form browsers and
// `openssl x509 -fingerprint -sha256` show.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// ServerHosts returns the names a server's certificate covers: hosts (the
// configured host name first, the subject common name) and the loopback
// names a client on the server's own machine dials, "localhost",
// "127.0.0.1" and "::1", so that a client verifying the certificate can
// reach the server by any of them.
func ServerHosts(hosts ...string) []string {
	return append(slices.Clone(hosts), "localhost", "127.0.0.1", "::1")
}

// LoadOrCreate returns the certificate kept in dir (cert.pem and key.pem)
// and its SHA-256 fingerprint. On first use, when neither file exists, it
// creates dir (0700) if needed, generates a certificate with [SelfSigned]
// for [ServerHosts](hosts...) and writes both files with mode 0600, each
// atomically (temporary file, fsync, rename), then logs the fingerprint.
// If only one of the files exists it fails rather than overwrite it. A
// loaded certificate is never replaced (clients may have pinned it): if it
// has expired or does not cover every one of those names it is still
// returned, with a warning in the log saying to delete it to get a new one.
func LoadOrCreate(dir string, hosts []string, logger *slog.Logger) (tls.Certificate, string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hosts = ServerHosts(hosts...)
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certOK, err := exists(certPath)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	switch {
	case certOK && keyOK:
		cert, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return tls.Certificate{}, "", fmt.Errorf("certs: load %s: %w", dir, err)
		}
		fp := Fingerprint(cert.Certificate[0])
		if cert.Leaf != nil && time.Now().After(cert.Leaf.NotAfter) {
			logger.Warn("TLS certificate has expired; delete it to generate a new one",
				"cert", certPath, "not_after", cert.Leaf.NotAfter, "sha256", fp)
		}
		if missing := uncovered(cert.Leaf, hosts); len(missing) > 0 {
			logger.Warn("TLS certificate does not cover every name of this server, so clients that verify it fail for those; delete it to generate a new one",
				"cert", certPath, "missing", missing, "sha256", fp)
		}
		return cert, fp, nil
	case certOK || keyOK:
		return tls.Certificate{}, "", fmt.Errorf("certs: only one of %s and %s exists in %s; remove it or provide both", CertFile, KeyFile, dir)
	}

	cert, err := SelfSigned(hosts)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("certs: encode key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("certs: %w", err)
	}
	// The key goes first: a crash between the two writes leaves a key
	// without a certificate, which the next start reports instead of
	// pairing a certificate with a missing key.
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return tls.Certificate{}, "", err
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})); err != nil {
		return tls.Certificate{}, "", err
	}
	fp := Fingerprint(cert.Certificate[0])
	logger.Info("generated self-signed TLS certificate", "cert", certPath, "hosts", hosts,
		"not_after", cert.Leaf.NotAfter, "sha256", fp)
	return cert, fp, nil
}

// uncovered returns the hosts leaf is not valid for.
func uncovered(leaf *x509.Certificate, hosts []string) []string {
	if leaf == nil {
		return nil
	}
	var missing []string
	for _, h := range hosts {
		if h = strings.TrimSuffix(strings.TrimSpace(h), "."); h != "" && leaf.VerifyHostname(h) != nil {
			missing = append(missing, h)
		}
	}
	return missing
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("certs: %w", err)
}

// writeFileAtomic writes data to path with mode 0600 so that path either
// does not exist or holds all of data, even after a crash.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("certs: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("certs: close %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	// Make the rename durable; not all file systems support syncing a
	// directory, so a failure here is not fatal.
	_ = durable.SyncDir(filepath.Dir(path))
	return nil
}

// LoadPool reads a PEM file of CA certificates into a pool, for a client
// that trusts exactly those CAs (a migration source's own CA). A file
// without a certificate is an error naming it.
func LoadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
