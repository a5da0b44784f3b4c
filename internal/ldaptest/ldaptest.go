// Package ldaptest starts a private OpenLDAP server (slapd from Debian's
// slapd package) for tests and benchmarks: a slapd.conf and an mdb
// database in a temporary directory, fixtures loaded offline with
// slapadd, and slapd run as the current user on a free loopback port,
// stopped when the test ends.
//
// The server loads core, cosine and inetOrgPerson plus [ADSchema], a
// small schema with the Active Directory attributes the AD preset of
// directory/ldap reads (sAMAccountName, userPrincipalName,
// proxyAddresses, userAccountControl, objectGUID, uSNChanged, memberOf,
// ...), so that the preset is exercised against a real server. slapd
// does not maintain uSNChanged as a domain controller would; fixtures
// and tests set it.
//
// Without slapd installed, Start skips the test (fails under
// MAILYARD_REQUIRE_PEERS=1), as testpeer.Require does.
package ldaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/testpeer"
)

// Defaults of a started server.
const (
	Suffix        = "dc=example,dc=com"
	AdminDN       = "cn=admin,dc=example,dc=com"
	AdminPassword = "admin-secret"
)

// ADSchema defines the Active Directory attributes and two auxiliary
// classes, "user" and "group", that carry them next to inetOrgPerson and
// groupOfNames. OIDs are under a private test arc.
const ADSchema = `
attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.3 NAME 'proxyAddresses'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.55555.1.4 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.5 NAME 'objectGUID'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.6 NAME 'uSNChanged'
  EQUALITY integerMatch ORDERING integerOrderingMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.7 NAME 'memberOf'
  EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
attributetype ( 1.3.6.1.4.1.55555.1.8 NAME 'objectCategory'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.9 NAME 'department'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.10 NAME 'company'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.11 NAME 'thumbnailPhoto'
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'user' SUP top AUXILIARY
  MAY ( sAMAccountName $ userPrincipalName $ proxyAddresses $ userAccountControl $
        objectGUID $ uSNChanged $ memberOf $ objectCategory $ department $ company $
        thumbnailPhoto $ mail ) )
objectclass ( 1.3.6.1.4.1.55555.2.2 NAME 'group' SUP top AUXILIARY
  MAY ( sAMAccountName $ proxyAddresses $ objectGUID $ uSNChanged $ mail $
        displayName $ objectCategory ) )
`

// Server is a running slapd.
type Server struct {
	// URL is "ldap://127.0.0.1:PORT".
	URL  string
	Port int
	// With Options.TLS: LDAPSURL is "ldaps://127.0.0.1:PORT2", the
	// ldap:// listener offers StartTLS, and CAPEM is the PEM certificate
	// of the private CA that signed the server's certificate (for
	// 127.0.0.1 and localhost).
	LDAPSURL string
	CAPEM    []byte
	dir      string
	conf     string
	listen   string
	cmd      *exec.Cmd
	done     chan struct{}
}

// Options configure [StartWithOptions].
type Options struct {
	// LDIF holds entries below Suffix to load (may be empty).
	LDIF string
	// TLS adds an ldaps:// listener and StartTLS, with a certificate
	// from a private CA.
	TLS bool
}

// slapdPath finds slapd, which Debian installs in /usr/sbin (often not on
// an unprivileged user's PATH).
func slapdPath(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	return testpeer.Require(t, name, "slapd")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Start writes a configuration with the base entry of Suffix, loads ldif
// (LDIF entries below Suffix; may be empty) with slapadd, and starts
// slapd on a free loopback port. The server stops when the test ends.
func Start(t testing.TB, ldif string) *Server {
	t.Helper()
	return StartWithOptions(t, Options{LDIF: ldif})
}

// StartWithOptions is Start with TLS as an option.
func StartWithOptions(t testing.TB, opts Options) *Server {
	t.Helper()
	ldif := opts.LDIF
	slapd := slapdPath(t, "slapd")
	slapadd := slapdPath(t, "slapadd")
	dir := t.TempDir()
	s := &Server{dir: dir, conf: filepath.Join(dir, "slapd.conf")}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ad.schema"), []byte(ADSchema), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsConf := ""
	if opts.TLS {
		ca, cert, key, err := makeCerts()
		if err != nil {
			t.Fatalf("certificates: %v", err)
		}
		for name, data := range map[string][]byte{"ca.pem": ca, "cert.pem": cert, "key.pem": key} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s.CAPEM = ca
		tlsConf = fmt.Sprintf("TLSCACertificateFile %[1]s/ca.pem\nTLSCertificateFile %[1]s/cert.pem\nTLSCertificateKeyFile %[1]s/key.pem\n", dir)
	}
	conf := tlsConf + fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include %[1]s/ad.schema
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
sizelimit 1000
database mdb
maxsize 4294967296
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
index objectClass,mail,uid,sAMAccountName,userPrincipalName,member,entryUUID,proxyAddresses eq
index uSNChanged eq
limits dn.exact="%[3]s" size=unlimited time=unlimited
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
`, dir, Suffix, AdminDN, AdminPassword)
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "dn: " + Suffix + "\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n" +
		"dn: ou=people," + Suffix + "\nobjectClass: organizationalUnit\nou: people\n\n" +
		"dn: ou=groups," + Suffix + "\nobjectClass: organizationalUnit\nou: groups\n\n" + ldif
	ldifPath := filepath.Join(dir, "fixtures.ldif")
	if err := os.WriteFile(ldifPath, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(slapadd, "-q", "-f", s.conf, "-l", ldifPath).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	s.Port = testpeer.FreePort(t)
	s.URL = "ldap://127.0.0.1:" + strconv.Itoa(s.Port)
	s.listen = s.URL + "/"
	if opts.TLS {
		s.LDAPSURL = "ldaps://127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
		s.listen += " " + s.LDAPSURL + "/"
	}
	s.start(t, slapd)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start(t testing.TB, slapd string) {
	t.Helper()
	var stderr bytes.Buffer
	// -d 0 keeps slapd in the foreground, so it is our child and dies
	// with the test.
	cmd := exec.Command(slapd, "-d", "0", "-h", s.listen, "-f", s.conf)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	for _, u := range strings.Fields(s.listen) {
		hostport := strings.TrimSuffix(u[strings.Index(u, "//")+2:], "/")
		if err := testpeer.WaitPort(hostport, 15*time.Second); err != nil {
			s.Stop()
			t.Fatalf("slapd did not start: %v\n%s", err, stderr.String())
		}
	}
}

// Stop stops slapd (SIGTERM, then SIGKILL after 10s). It is idempotent.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Restart starts a stopped server again on the same port and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t, slapdPath(t, "slapd"))
}

// makeCerts returns a private CA's certificate and a server certificate
// and key it signed, for 127.0.0.1 and localhost, all PEM.
func makeCerts() (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ldaptest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
