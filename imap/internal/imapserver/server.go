// Package imapserver implements an IMAP server.
//
// It is Mailyard's fork of github.com/emersion/go-imap/v2/imapserver at
// v2.0.0-beta.8 (MIT, see ../LICENSE), together with the library's
// internal wire codec (../imapwire, ../proto, ../imapnum, ../utf7). It was
// copied because upstream's command dispatch is a closed switch and its
// codec is internal, so that a backend can add neither commands (ID,
// GETQUOTA, GETQUOTAROOT, SETQUOTA) nor command parameters and response
// items (CONDSTORE, QRESYNC), and because an idle upstream connection
// holds 8 KiB of buffers and two goroutines. Every change to upstream's
// code is marked with a "mailyard:" comment; files that are wholly ours
// say so at the top (buffers.go, id.go, quota.go, envelope*.go). What
// only a client or an unused part of upstream's API needed was left out
// (MailboxTracker, the client-side decoder helpers, the old BINARY
// extractors). The public types still come from
// github.com/emersion/go-imap/v2.
//
// ../UPSTREAM records the exact upstream version (and its go.sum hash)
// and which upstream directory each of ours comes from;
// ../upstream-diff.sh prints our diff against it, with a summary.
//
// No panic is reachable from a client: what a client sends and what a
// session returns (nil data, a body structure that cannot be written, a
// capability the server advertises that the session lacks) end in BAD,
// NO [SERVERBUG] or BYE [SERVERBUG], and a panic all the same ends only
// its connection, logged at Error with its stack (Conn.serve). The
// panics that remain are programming errors of the server's own code or
// configuration: New with neither IMAP4rev1 nor IMAP4rev2,
// responseEncoder.end called twice, and imapwire.Encoder.Literal with a
// continuation channel on the server side.
package imapserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
)

var errClosed = errors.New("imapserver: server closed")

// Options contains server options.
//
// The only required field is NewSession.
type Options struct {
	// NewSession is called when a client connects.
	NewSession func(*Conn) (Session, *GreetingData, error)
	// Supported capabilities. If nil, only IMAP4rev1 is advertised. This set
	// must contain at least IMAP4rev1 or IMAP4rev2.
	//
	// The following capabilities are part of IMAP4rev2 and need to be
	// explicitly enabled by IMAP4rev1-only servers:
	//
	//   - NAMESPACE
	//   - UIDPLUS
	//   - ESEARCH
	//   - LIST-EXTENDED
	//   - LIST-STATUS
	//   - MOVE
	//   - STATUS=SIZE
	Caps imap.CapSet
	// Logger receives the server's log records; if nil, they are
	// discarded (no package-level logger). Each call site chooses its
	// level: Error for a fault of the server (a failed session, a
	// handler's internal error, a recovered panic), Warn for what an
	// operator should see (a failed accept, plaintext injected after
	// STARTTLS), Info for a client refused or disconnected for what it
	// sent, Debug for a connection that ends because the client went
	// away. Records of a connection carry its remote address ("remote").
	//
	// mailyard: upstream took a printf-style Logger; the imap package
	// chose levels by searching the formatted text.
	Logger *slog.Logger
	// TLSConfig is a TLS configuration for STARTTLS. If nil, STARTTLS is
	// disabled.
	TLSConfig *tls.Config
	// InsecureAuth allows clients to authenticate without TLS. In this mode,
	// the server is susceptible to man-in-the-middle attacks.
	InsecureAuth bool
	// CommandDone, if set, is called after each command with its name
	// ("FETCH", "UID FETCH", ...) and the time from reading its name to
	// writing its tagged response (for APPEND this includes the upload).
	//
	// mailyard: added, for latency metrics.
	CommandDone func(name string, d time.Duration)
	// Raw ingress and egress data will be written to this writer, if any.
	// Note, this may include sensitive information such as credentials used
	// during authentication.
	DebugWriter io.Writer
}

func (options *Options) wrapReadWriter(rw io.ReadWriter) io.ReadWriter {
	if options.DebugWriter == nil {
		return rw
	}
	return struct {
		io.Reader
		io.Writer
	}{
		Reader: io.TeeReader(rw, options.DebugWriter),
		Writer: io.MultiWriter(rw, options.DebugWriter),
	}
}

func (options *Options) caps() imap.CapSet {
	if options.Caps != nil {
		return options.Caps
	}
	return imap.CapSet{imap.CapIMAP4rev1: {}}
}

// Server is an IMAP server.
type Server struct {
	options Options

	listenerWaitGroup sync.WaitGroup

	mutex     sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	closed    bool
}

// New creates a new server. It panics if options.Caps has neither
// IMAP4rev1 nor IMAP4rev2: a programming error, found when the server
// is built, before any client connects.
func New(options *Options) *Server {
	if caps := options.caps(); !caps.Has(imap.CapIMAP4rev2) && !caps.Has(imap.CapIMAP4rev1) {
		panic("imapserver: at least IMAP4rev1 must be supported")
	}
	return &Server{
		options:   *options,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*Conn]struct{}),
	}
}

func (s *Server) logger() *slog.Logger {
	if s.options.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.options.Logger
}

// Serve accepts incoming connections on the listener ln.
func (s *Server) Serve(ln net.Listener) error {
	// mailyard: the WaitGroup is added to under the mutex, in the same
	// step that registers the listener, so a Close that runs at once
	// either sees the listener (and waits for it) or refuses Serve;
	// upstream's Add after the unlock raced with Close's Wait.
	s.mutex.Lock()
	ok := !s.closed
	if ok {
		s.listeners[ln] = struct{}{}
		s.listenerWaitGroup.Add(1)
	}
	s.mutex.Unlock()
	if !ok {
		return errClosed
	}
	defer s.listenerWaitGroup.Done()

	defer func() {
		s.mutex.Lock()
		delete(s.listeners, ln)
		s.mutex.Unlock()
	}()

	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if acceptRetryable(err) {
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else {
				delay *= 2
			}
			if max := 1 * time.Second; delay > max {
				delay = max
			}
			s.logger().Warn("imapserver: accept failed, retrying", "delay", delay, "err", err)
			time.Sleep(delay)
			continue
		} else if errors.Is(err, net.ErrClosed) {
			return nil
		} else if err != nil {
			return fmt.Errorf("accept error: %w", err)
		}

		delay = 0
		go newConn(conn, s).serve()
	}
}

// ListenAndServe listens on the TCP network address addr and then calls Serve.
//
// If addr is empty, ":143" is used.
func (s *Server) ListenAndServe(addr string) error {
	if addr == "" {
		addr = ":143"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// ListenAndServeTLS listens on the TCP network address addr and then calls
// Serve to handle incoming TLS connections.
//
// The TLS configuration set in Options.TLSConfig is used. If addr is empty,
// ":993" is used.
func (s *Server) ListenAndServeTLS(addr string) error {
	if addr == "" {
		addr = ":993"
	}
	ln, err := tls.Listen("tcp", addr, s.options.TLSConfig)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Close immediately closes all active listeners and connections.
//
// Close returns any error returned from closing the server's underlying
// listeners.
//
// Once Close has been called on a server, it may not be reused; future calls
// to methods such as Serve will return an error.
func (s *Server) Close() error {
	var err error

	s.mutex.Lock()
	ok := !s.closed
	if ok {
		s.closed = true
		for l := range s.listeners {
			if closeErr := l.Close(); closeErr != nil && err == nil {
				err = closeErr
			}
		}
	}
	s.mutex.Unlock()
	if !ok {
		return errClosed
	}

	s.listenerWaitGroup.Wait()

	s.mutex.Lock()
	for c := range s.conns {
		c.mutex.Lock()
		c.conn.Close()
		c.mutex.Unlock()
	}
	s.mutex.Unlock()

	return err
}

// acceptRetryable reports whether an Accept error is a passing shortage
// (file descriptors, buffers, a connection aborted before it was taken, a
// timeout) after which the listener still works.
// mailyard: replaces the deprecated net.Error.Temporary.
func acceptRetryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ECONNRESET)
}
