package main

import (
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/migration"
)

// startSMTPFor serves a recorder on loopback with a certificate for hosts
// only, by STARTTLS or implicit TLS, and returns its address and the PEM
// file of the certificate.
func startSMTPFor(t *testing.T, be *smtpRecorder, implicit bool, hosts ...string) (addr, caFile string) {
	t.Helper()
	cert, err := certs.SelfSigned(hosts)
	require.NoError(t, err)
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	tc := &tls.Config{Certificates: []tls.Certificate{cert}}
	var l net.Listener
	if implicit {
		l, err = tls.Listen("tcp", "127.0.0.1:0", tc)
	} else {
		srv.TLSConfig = tc
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	require.NoError(t, err)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600))
	return l.Addr().String(), caFile
}

// A certificate the client refuses is reported as the TLS failure it is
// (for STARTTLS and for implicit TLS), not as a server without AUTH PLAIN;
// the password is never sent and nothing is recorded.
func TestReportMailTLSFailureReported(t *testing.T) {
	for _, mode := range []string{"starttls", "implicit"} {
		t.Run(mode, func(t *testing.T) {
			be := &smtpRecorder{user: "admin@example.com", password: "smtp-secret"}
			// Trusted (--smtp-ca) but for localhost only: dialled as
			// 127.0.0.1, it does not verify.
			addr, ca := startSMTPFor(t, be, mode == "implicit", "localhost")
			m, err := newSMTPMailer(smtpOptions{to: "admin@example.com", from: "admin@example.com", addr: addr,
				user: "admin@example.com", password: migration.Secret("smtp-secret"), tlsMode: mode, caFile: ca})
			require.NoError(t, err)
			err = m.SendMail(t.Context(), "admin@example.com", []string{"admin@example.com"}, strings.NewReader("Subject: r\r\n\r\nx\r\n"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "TLS with "+addr)
			assert.Contains(t, err.Error(), "x509: cannot validate certificate for 127.0.0.1")
			assert.NotContains(t, err.Error(), "AUTH PLAIN")
			assert.Empty(t, be.messages())
		})
	}
	// The same server name verifies once the certificate names it: the
	// failure above was the certificate's, nothing else.
	be := &smtpRecorder{user: "admin@example.com", password: "smtp-secret"}
	addr, ca := startSMTPFor(t, be, true, "localhost", "127.0.0.1")
	m, err := newSMTPMailer(smtpOptions{to: "admin@example.com", from: "admin@example.com", addr: addr,
		user: "admin@example.com", password: migration.Secret("smtp-secret"), tlsMode: "implicit", caFile: ca})
	require.NoError(t, err)
	require.NoError(t, m.SendMail(t.Context(), "admin@example.com", []string{"admin@example.com"}, strings.NewReader("Subject: r\r\n\r\nx\r\n")))
	assert.Len(t, be.messages(), 1)
}
