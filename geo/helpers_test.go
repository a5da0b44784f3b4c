package geo_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/geo"
	"github.com/mailyard/mailyard/internal/testpeer"
	"github.com/mailyard/mailyard/store/sqlite"
)

// testCA signs one certificate per site.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "geo test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

var serial = struct {
	sync.Mutex
	n int64
}{n: 1}

// site issues site's certificate: its ID as DNS name, loopback as IP.
func (ca *testCA) site(t testing.TB, site string) *geo.TLS {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial.Lock()
	serial.n++
	sn := serial.n
	serial.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(sn), Subject: pkix.Name{CommonName: site},
		DNSNames: []string{site}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &geo.TLS{Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, Roots: ca.pool}
}

// testSite is one site: its store (directory and geo records), its
// directory, its NATS port and, while running, its node.
type testSite struct {
	t      testing.TB
	id     string
	dir    string
	port   int
	tls    *geo.TLS
	links  []geo.Link
	st     *sqlite.Store
	d      *builtin.Directory
	node   *geo.Node
	fb     geo.FreeBusyResponder
	opts   func(*geo.Options)
	domain string
}

// newSites makes sites with IDs ids, linked all-to-all, each hosting
// domain ID.example in tenant "org"; none started.
func newSites(t testing.TB, ids ...string) map[string]*testSite {
	ca := newCA(t)
	sites := map[string]*testSite{}
	for _, id := range ids {
		s := &testSite{t: t, id: id, dir: t.TempDir(), port: testpeer.FreePort(t), tls: ca.site(t, id), domain: id + ".example"}
		st, err := sqlite.Open(context.Background(), s.dir+"/store", sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s.st = st
		s.d = builtin.New(st, builtin.Options{})
		ctx := context.Background()
		if _, err := s.d.CreateTenant(ctx, directory.Tenant{ID: "org", Name: "Org"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.d.CreateDomain(ctx, directory.Domain{Name: s.domain, Tenant: "org"}); err != nil {
			t.Fatal(err)
		}
		sites[id] = s
	}
	for _, s := range sites {
		for _, p := range sites {
			if p != s {
				s.links = append(s.links, p.link())
			}
		}
	}
	return sites
}

func (s *testSite) link() geo.Link {
	return geo.Link{Peer: s.id, Endpoints: []string{fmt.Sprintf("tls://127.0.0.1:%d", s.port)}, MX: fmt.Sprintf("127.0.0.1:%d", 2500+s.port%1000)}
}

func (s *testSite) start() {
	s.t.Helper()
	o := geo.Options{
		Site: s.id, Name: "Site " + s.id, MX: s.link().MX, Links: s.links, TLS: s.tls,
		DataDir: s.dir, Listen: fmt.Sprintf("127.0.0.1:%d", s.port),
		Source: geo.BuiltinSource{Dir: s.d}, Records: s.st, FreeBusy: s.fb,
		ReconcileInterval: time.Second,
	}
	if s.opts != nil {
		s.opts(&o)
	}
	n, err := geo.Start(context.Background(), o)
	if err != nil {
		s.t.Fatalf("start %s: %v", s.id, err)
	}
	s.node = n
	s.t.Cleanup(func() { s.stop() })
}

func (s *testSite) stop() {
	if s.node != nil {
		s.node.Close()
		s.node = nil
	}
}

func (s *testSite) createUser(local, name string) directory.User {
	s.t.Helper()
	u, err := s.d.CreateUser(context.Background(), directory.User{Address: local + "@" + s.domain, DisplayName: name}, "")
	if err != nil {
		s.t.Fatal(err)
	}
	if s.node != nil {
		s.node.Notify()
	}
	return u
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < d {
		if err = cond(); err == nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, d, err)
	return 0
}

// locatedAt checks that n locates address at site.
func locatedAt(n *geo.Node, address, site string) error {
	loc, err := n.LocateSite(context.Background(), address)
	if err != nil {
		return err
	}
	if loc.Site != site {
		return fmt.Errorf("%s located at %s, want %s", address, loc.Site, site)
	}
	return nil
}

func notLocated(n *geo.Node, address string) error {
	_, err := n.LocateSite(context.Background(), address)
	if errors.Is(err, directory.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("%s: %v, want not found", address, err)
}

// clientTLS is s's identity dialling peer.
func clientTLS(s *testSite, peer string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{s.tls.Certificate}, RootCAs: s.tls.Roots, ServerName: peer, MinVersion: tls.VersionTLS12}
}
