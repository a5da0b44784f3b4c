// Package testhop is a loopback SMTP next hop for tests of the outbound
// queue and of the server that hands mail to it: it records what it
// accepts and answers recipients by their local part ("perm..." 550,
// "temp..." 451, anything else 250).
package testhop

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/routing"
)

// Server is a loopback next hop: recipients starting with "perm" get
// 550 5.1.1, with "temp" 451 4.2.0; everything else is accepted.
type Server struct {
	// Addr is the listening address, Port its port.
	Addr string
	Port string
	srv  *gosmtp.Server

	mu       sync.Mutex
	msgs     []Msg
	rcptSeen int
	conns    int
}

// Msg is one message the next hop accepted.
type Msg struct {
	From string
	To   []string
	Data string
	TLS  bool   // received over TLS
	Auth string // the authenticated user, "" without AUTH
}

// Options configure a [Server].
type Options struct {
	TLS  *tls.Config // offer STARTTLS
	Auth bool        // offer AUTH PLAIN (relay/secret), required before MAIL
}

// Start runs a next hop on a loopback port until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return Serve(t, ln, o)
}

// Serve runs a next hop on ln until the test ends.
func Serve(t testing.TB, ln net.Listener, o Options) *Server {
	t.Helper()
	h := &Server{}
	s := NewSMTPServer(h, o)
	h.srv, h.Addr = s, ln.Addr().String()
	_, h.Port, _ = net.SplitHostPort(h.Addr)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return h
}

// NewSMTPServer returns the go-smtp server of h, not yet serving.
func NewSMTPServer(h *Server, o Options) *gosmtp.Server {
	s := gosmtp.NewServer(backend{h: h, auth: o.Auth})
	s.Domain = "hop.test"
	s.TLSConfig = o.TLS
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	return s
}

// Received returns the messages accepted so far.
func (h *Server) Received() []Msg {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Msg(nil), h.msgs...)
}

// RcptAttempts counts the RCPT commands seen.
func (h *Server) RcptAttempts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rcptSeen
}

type backend struct {
	h    *Server
	auth bool
}

func (b backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	b.h.mu.Lock()
	b.h.conns++
	b.h.mu.Unlock()
	_, isTLS := c.TLSConnectionState()
	return &session{h: b.h, c: c, tls: isTLS, needAuth: b.auth}, nil
}

type session struct {
	h        *Server
	c        *gosmtp.Conn
	tls      bool
	needAuth bool
	user     string
	msg      Msg
}

func (s *session) AuthMechanisms() []string {
	if !s.needAuth {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "relay" || pass != "secret" {
			return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.user = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.needAuth && s.user == "" {
		return &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	_, s.tls = s.c.TLSConnectionState()
	s.msg = Msg{From: from, TLS: s.tls, Auth: s.user}
	return nil
}

func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.h.mu.Lock()
	s.h.rcptSeen++
	s.h.mu.Unlock()
	switch {
	case strings.HasPrefix(to, "perm"):
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
	case strings.HasPrefix(to, "temp"):
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 2, 0}, Message: "try again later"}
	}
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.Data = string(b)
	s.h.mu.Lock()
	s.h.msgs = append(s.h.msgs, s.msg)
	s.h.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.msg = Msg{} }
func (s *session) Logout() error { return nil }

// Conns counts the connections accepted.
func (h *Server) Conns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns
}

// Route routes domain to h.
func (h *Server) Route(domain string, tlsPolicy routing.TLSPolicy, auth *routing.Credentials) routing.Route {
	return routing.Route{Match: domain, Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + h.Port, TLS: tlsPolicy, Auth: auth}}
}
