package ews

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mailyard/mailyard/migration"
)

// Stage is the step of a connection test ([Test]) that failed.
type Stage string

// Stages of a connection test, in the order they run.
const (
	StageConfig        Stage = "config"        // the options are invalid
	StageDNS           Stage = "dns"           // the endpoint's host name does not resolve
	StageAllowlist     Stage = "allowlist"     // the allowlist refuses the host
	StageTCP           Stage = "tcp"           // no TCP connection to any address
	StageTLS           Stage = "tls"           // TLS handshake: no version in the range, untrusted certificate, ...
	StageAuth          Stage = "auth"          // the server refused the login (Basic or NTLM)
	StageRequest       Stage = "request"       // the first call failed other than by a refused login (a wrong path, ErrorInvalidServerVersion, ...)
	StageImpersonation Stage = "impersonation" // the mailbox could not be reached as Options.Access says
	StageOK            Stage = "ok"            // every step passed
)

// ServerVersion is the ServerVersionInfo header of an EWS answer
// ([MS-OXWSCDATA] §2.2.3.6): the Exchange build and the schema version
// the server answered with.
type ServerVersion struct {
	Major      int    `xml:"MajorVersion,attr"`
	Minor      int    `xml:"MinorVersion,attr"`
	MajorBuild int    `xml:"MajorBuildNumber,attr"`
	MinorBuild int    `xml:"MinorBuildNumber,attr"`
	Version    string `xml:"Version,attr"`
}

// String is "15.1.2507.6 (Exchange2016)".
func (v ServerVersion) String() string {
	s := fmt.Sprintf("%d.%d.%d.%d", v.Major, v.Minor, v.MajorBuild, v.MinorBuild)
	if v.Version != "" {
		s += " (" + v.Version + ")"
	}
	return s
}

// TestReport is the outcome of [Test].
type TestReport struct {
	// Stage is the step that failed, or StageOK.
	Stage Stage
	// Err is the failure (nil for StageOK), a *migration.Error with the
	// collectors' class where the client classified it.
	Err error
	// Addr is the address the TCP connection reached; TLSVersion the
	// negotiated version ("TLS 1.2"), empty for http.
	Addr, TLSVersion string
	// Server is the version the server reported once logged in.
	Server ServerVersion
}

// Test checks that the source opts describes can be used, one step at a
// time so that the report names what failed: the options, DNS, the
// allowlist, TCP, the TLS handshake (with the configured version range
// and trust), the login (a GetFolder of the account's own root folder)
// and, when mailbox is not empty and opts.Access is not AccessOwn, the
// right to reach mailbox (a GetFolder of its inbox, with the
// ExchangeImpersonation header or as a delegate). It changes nothing on
// the server. With opts.Transport set, the DNS, allowlist, TCP and TLS
// steps are skipped: the transport does its own dialling.
func Test(ctx context.Context, opts Options, mailbox string) TestReport {
	var rep TestReport
	fail := func(s Stage, err error) TestReport {
		rep.Stage, rep.Err = s, err
		return rep
	}
	c, err := NewClient(opts)
	if err != nil {
		return fail(StageConfig, err)
	}
	defer c.Close()
	if opts.Transport == nil {
		if s, err := c.testDial(ctx, &rep); err != nil {
			return fail(s, err)
		}
	}
	self := c.Mailbox("")
	own := &versionProbe{}
	err = self.call(ctx, getFolderRequest(self, FolderRef{Distinguished: "msgfolderroot"}), own)
	if err == nil {
		err = firstMessageErr(ctx, self, own)
	}
	if err != nil {
		var me *migration.Error
		if errors.As(err, &me) && me.Class == migration.ErrClassAuth {
			return fail(StageAuth, err)
		}
		return fail(StageRequest, err)
	}
	rep.Server = own.version
	if mailbox != "" && c.opts.Access != AccessOwn {
		mb := c.Mailbox(mailbox)
		if _, err := mb.GetFolder(ctx, FolderRef{Distinguished: "inbox"}); err != nil {
			return fail(StageImpersonation, fmt.Errorf("ews: %s access to %s: %w", c.opts.Access, mailbox, err))
		}
	}
	rep.Stage = StageOK
	return rep
}

// testDial runs the DNS, allowlist, TCP and TLS steps of Test.
func (c *Client) testDial(ctx context.Context, rep *TestReport) (Stage, error) {
	host := c.url.Hostname()
	port := c.url.Port()
	if port == "" {
		port = "443"
		if c.url.Scheme == "http" {
			port = "80"
		}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return StageConfig, configErr(fmt.Errorf("ews: invalid port %q", port))
	}
	r := c.opts.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	var resolved []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		resolved = []netip.Addr{a}
	} else if resolved, err = r.LookupNetIP(dctx, "ip", host); err != nil {
		return StageDNS, &migration.Error{Class: migration.ErrClassConnection, Err: fmt.Errorf("ews: resolving %s: %w", host, err)}
	}
	if c.opts.Allowlist == nil {
		return StageAllowlist, configErr(fmt.Errorf("%w: no allowlist configured for %s", errNotAllowed, host))
	}
	approved, err := c.opts.Allowlist.Check(dctx, r, host)
	if err != nil {
		return StageAllowlist, configErr(fmt.Errorf("%w: %v", errNotAllowed, err))
	}
	if approved != nil {
		resolved = approved
	}
	d := net.Dialer{Timeout: c.opts.DialTimeout}
	var conn net.Conn
	for _, a := range resolved {
		if conn, err = d.DialContext(dctx, "tcp", netip.AddrPortFrom(a, uint16(p)).String()); err == nil {
			break
		}
	}
	if conn == nil {
		return StageTCP, &migration.Error{Class: migration.ErrClassConnection, Err: fmt.Errorf("ews: connecting to %s port %d: %w", host, p, err)}
	}
	defer conn.Close()
	rep.Addr = conn.RemoteAddr().String()
	if c.url.Scheme != "https" {
		return "", nil
	}
	tc := c.bases[0].TLSClientConfig.Clone()
	tconn := tls.Client(conn, tc)
	if err := tconn.HandshakeContext(dctx); err != nil {
		return StageTLS, &migration.Error{Class: migration.ErrClassConnection, Err: fmt.Errorf("ews: TLS with %s (versions %s to %s): %w",
			host, tls.VersionName(tc.MinVersion), maxVersionName(tc.MaxVersion), tlsHint(err))}
	}
	rep.TLSVersion = tls.VersionName(tconn.ConnectionState().Version)
	return "", nil
}

func maxVersionName(v uint16) string {
	if v == 0 {
		return tls.VersionName(tls.VersionTLS13)
	}
	return tls.VersionName(v)
}

// errTLSVersion and errUntrusted name the two usual handshake failures.
var (
	errTLSVersion = errors.New("no TLS version in common with the server")
	errUntrusted  = errors.New("the server's certificate is not trusted")
)

// tlsHint adds which of the usual handshake failures err is: an alert
// protocol_version (70, RFC 8446 §6.2) or Go's own version refusal means
// no version in common; a failed verification means an untrusted
// certificate (give a CA file).
func tlsHint(err error) error {
	var ve *tls.CertificateVerificationError
	var ae tls.AlertError
	switch {
	case errors.As(err, &ve):
		return fmt.Errorf("%w (give --ca-file): %w", errUntrusted, err)
	case errors.As(err, &ae) && ae == 70:
		return fmt.Errorf("%w: %w", errTLSVersion, err)
	}
	if s := err.Error(); strings.Contains(s, "protocol version") || strings.Contains(s, "no supported versions") {
		return fmt.Errorf("%w: %w", errTLSVersion, err)
	}
	return err
}

// getFolderRequest is the body of a GetFolder of ref.
func getFolderRequest(m *Mailbox, ref FolderRef) any {
	return struct {
		XMLName xml.Name      `xml:"m:GetFolder"`
		Shape   folderShape   `xml:"m:FolderShape"`
		IDs     folderIDsList `xml:"m:FolderIds"`
	}{Shape: defaultFolderShape(), IDs: folderIDsList{m.folderIDs(ref)}}
}

// versionProbe is a GetFolder answer that keeps the ServerVersionInfo
// header decodeEnvelope hands it.
type versionProbe struct {
	getFolderResponse
	version ServerVersion
}

func (p *versionProbe) setServerVersion(v ServerVersion) { p.version = v }

// firstMessageErr is the classified error of the probe's first failed
// response message.
func firstMessageErr(ctx context.Context, m *Mailbox, p *versionProbe) error {
	for _, msg := range p.Messages.List {
		if err := msg.err(); err != nil {
			return m.classify(ctx, err)
		}
	}
	return nil
}
