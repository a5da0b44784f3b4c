package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/migration"
)

// smtpOptions are the report command's mail flags.
type smtpOptions struct {
	to, from, addr, user string
	passwordFile         string
	password             migration.Secret
	tlsMode, caFile      string
	insecureSkipVerify   bool
}

// smtpTimeout bounds one report submission when the context has no
// deadline.
const smtpTimeout = 2 * time.Minute

// smtpMailer submits messages to the platform's own submission port
// (RFC 6409) with go-smtp's client: STARTTLS (RFC 3207) or implicit TLS
// (RFC 8314 §3), then AUTH PLAIN (RFC 4954, RFC 4616). It never sends
// credentials over a connection without TLS unless told to with
// --smtp-tls none.
type smtpMailer struct {
	addr     string
	user     string
	password migration.Secret
	tlsMode  string
	tls      *tls.Config
}

func newSMTPMailer(o smtpOptions) (*smtpMailer, error) {
	if o.addr == "" {
		return nil, errors.New("--mail-to needs --smtp HOST:PORT (or submission in the [migration] section)")
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return nil, fmt.Errorf("--smtp %q: %w", o.addr, err)
	}
	if o.from == "" {
		return nil, errors.New("--mail-to needs --mail-from ADDRESS (or report_from in the [migration] section)")
	}
	if o.user != "" && o.password == "" {
		return nil, errors.New("--smtp-user needs --smtp-password-file FILE or MIGRATE_SMTP_PASSWORD")
	}
	switch o.tlsMode {
	case "starttls", "implicit", "none":
	default:
		return nil, fmt.Errorf("--smtp-tls %q is not one of starttls, implicit, none", o.tlsMode)
	}
	tc := &tls.Config{ServerName: host, InsecureSkipVerify: o.insecureSkipVerify, MinVersion: tls.VersionTLS12}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("--smtp-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--smtp-ca %s: no PEM certificate", o.caFile)
		}
		tc.RootCAs = pool
	}
	return &smtpMailer{addr: o.addr, user: o.user, password: o.password, tlsMode: o.tlsMode, tls: tc}, nil
}

// SendMail implements report.Mailer.
func (s *smtpMailer) SendMail(ctx context.Context, from string, to []string, msg io.Reader) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(smtpTimeout)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return err
	}
	// The deadline bounds the whole exchange; ctx cancels it early.
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	var c *smtp.Client
	switch s.tlsMode {
	case "implicit":
		c = smtp.NewClient(tls.Client(conn, s.tls))
	case "starttls":
		// Fails if the server does not offer STARTTLS: a submission
		// server that does not is misconfigured or the offer was
		// stripped, and the password must not go out in clear.
		c, err = smtp.NewClientStartTLS(conn, s.tls)
		if err != nil {
			conn.Close()
			return fmt.Errorf("STARTTLS with %s: %w", s.addr, err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	if err := s.greet(c); err != nil {
		return err
	}
	if s.user != "" {
		if !c.SupportsAuth(sasl.Plain) {
			return fmt.Errorf("%s does not offer AUTH PLAIN", s.addr)
		}
		if err := c.Auth(sasl.NewPlainClient("", s.user, s.password.Reveal())); err != nil {
			return fmt.Errorf("AUTH as %s: %w", s.user, err)
		}
	}
	if err := c.SendMail(from, to, msg); err != nil {
		return err
	}
	return c.Quit()
}

// greet completes the greeting, EHLO and, over TLS, the handshake, and
// reports their failure as it is. go-smtp makes the TLS handshake on the
// first write after STARTTLS (or the first read over implicit TLS) and
// SupportsAuth drops the error of that exchange, so a certificate this
// client refuses would otherwise read as a server without AUTH PLAIN.
func (s *smtpMailer) greet(c *smtp.Client) error {
	err := c.Noop()
	if err == nil {
		return nil
	}
	if s.tlsMode != "none" {
		if state, ok := c.TLSConnectionState(); !ok || !state.HandshakeComplete {
			return fmt.Errorf("TLS with %s: %w", s.addr, err)
		}
	}
	return fmt.Errorf("greeting from %s: %w", s.addr, err)
}
