package geo

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"time"
)

// ErrConfig reports an invalid site or link configuration.
var ErrConfig = errors.New("geo: invalid configuration")

var siteIDRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// MaxSiteIDLength bounds a site ID, so that it fits in NATS stream,
// consumer and subject names.
const MaxSiteIDLength = 64

// CheckSiteID reports whether id is a valid site ID: lower-case letters,
// digits, "_" and "-" (the reference platform's connection-name rule).
func CheckSiteID(id string) error {
	if len(id) == 0 || len(id) > MaxSiteIDLength || !siteIDRE.MatchString(id) {
		return fmt.Errorf("%w: site ID %q must match ^[a-z0-9_-]+$ (at most %d characters)", ErrConfig, id, MaxSiteIDLength)
	}
	return nil
}

// Link is this site's side of a link to one peer site. Links are
// symmetric: the peer must have a Link naming this site too, or the link
// is reported as a conflict of kind [ConflictOneEndedLink] and not used.
type Link struct {
	// Peer is the peer's site ID.
	Peer string
	// Endpoints are the peer's NATS URLs ("tls://10.0.0.2:4222"); several
	// for a clustered peer.
	Endpoints []string
	// MX is where mail for the peer's users goes (host:port).
	MX string
	// Allow lists the network prefixes the peer connects from; an empty
	// list allows any address (the certificate still has to match).
	Allow []netip.Prefix
}

// TLS is a site's identity between sites: its certificate (whose DNS
// names include the site ID; it serves as both server and client
// certificate) and the roots that sign the peers' certificates.
type TLS struct {
	Certificate tls.Certificate
	Roots       *x509.CertPool
}

// check validates the link itself (not whether the peer agrees).
func (l Link) check(self string) error {
	if err := CheckSiteID(l.Peer); err != nil {
		return err
	}
	if l.Peer == self {
		return fmt.Errorf("%w: a site cannot link to itself (%q)", ErrConfig, self)
	}
	if len(l.Endpoints) == 0 {
		return fmt.Errorf("%w: link to %q has no NATS endpoint", ErrConfig, l.Peer)
	}
	if _, _, err := net.SplitHostPort(l.MX); err != nil {
		return fmt.Errorf("%w: link to %q: MX %q is not host:port", ErrConfig, l.Peer, l.MX)
	}
	return nil
}

// serverTLS is the embedded server's side: its certificate, and client
// certificates required and verified against the roots.
func (t *TLS) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{t.Certificate},
		ClientCAs:    t.Roots,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
}

// clientTLS is this site dialling peer: it presents its certificate and
// checks that the server's certificate names the peer's site ID,
// whatever address it was reached at.
func (t *TLS) clientTLS(peer string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{t.Certificate},
		RootCAs:      t.Roots,
		ServerName:   peer,
	}
}

// certSite returns the site a verified client certificate names: the
// first of its DNS names that is a configured peer.
func certSite(cs *tls.ConnectionState, known func(string) bool) (string, bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return "", false
	}
	for _, n := range cs.PeerCertificates[0].DNSNames {
		if known(n) {
			return n, true
		}
	}
	return "", false
}

// firstDNSName is the first DNS name of a verified client certificate,
// for reporting an unconfigured site that knocked.
func firstDNSName(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return ""
	}
	for _, n := range cs.PeerCertificates[0].DNSNames {
		if CheckSiteID(n) == nil {
			return n
		}
	}
	return ""
}

// Timeouts of NATS calls; every call has one.
const (
	connectTimeout = 5 * time.Second
	callTimeout    = 10 * time.Second
)
