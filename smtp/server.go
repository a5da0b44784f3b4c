package smtp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/internal/limits"
)

// ErrServerClosed is returned by Serve after Shutdown or Close, and by
// Shutdown and Close when called a second time.
var ErrServerClosed = errors.New("smtp: server closed")

// Server is one SMTP listener's server. Create it with [New]; it is safe for
// concurrent use.
type Server struct {
	opts    Options
	gs      *gosmtp.Server
	conns   *limits.ConnLimiter
	metrics *metrics
	log     *slog.Logger
	milters []milterSpec

	// ctx is the parent of every session's context; cancelled by Close
	// so that a store call blocked on behalf of a client gives up.
	ctx    context.Context
	cancel context.CancelFunc

	closing atomic.Bool
	mu      sync.Mutex
	lns     []net.Listener
	live    map[*trackedConn]struct{}
	idle    chan struct{} // closed and replaced when live becomes empty
}

// New returns a server configured by opts (see [Options] for defaults).
func New(opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Metrics)
	if err != nil {
		return nil, err
	}
	perIP, total := o.MaxConnsPerIP, o.MaxConns
	var milters []milterSpec
	for _, m := range o.Milters {
		spec, _ := m.spec() // validated by withDefaults
		milters = append(milters, spec)
	}
	s := &Server{
		opts:    o,
		conns:   limits.NewConnLimiter(max(perIP, 0), max(total, 0)),
		metrics: m,
		milters: milters,
		log:     o.Logger.With("mode", o.Mode.String()),
		live:    make(map[*trackedConn]struct{}),
		idle:    make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	gs := gosmtp.NewServer(backend{s})
	gs.Domain = o.Hostname
	gs.TLSConfig = o.TLSConfig
	gs.MaxMessageBytes = o.MaxMessageBytes
	gs.MaxRecipients = o.MaxRecipients
	gs.MaxLineLength = o.MaxLineLength
	// AUTH only over TLS (RFC 8314 §3, TESTING.md): go-smtp then neither
	// announces nor accepts AUTH on a plaintext connection.
	gs.AllowInsecureAuth = false
	// Read deadlines are set by trackedConn before every read (an idle
	// timeout); go-smtp's would bound a whole DATA transfer instead.
	gs.ReadTimeout = 0
	gs.WriteTimeout = o.WriteTimeout
	gs.EnableSMTPUTF8 = true
	gs.ErrorLog = errorLog{s.log}
	s.gs = gs
	return s, nil
}

// Serve accepts connections on l until Shutdown or Close, then returns
// ErrServerClosed. In ModeSubmissions every connection is wrapped in TLS.
// Serve may be called for several listeners; the caller owns the goroutine
// that runs it. Any other error is from l.Accept.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns = append(s.lns, l)
	s.mu.Unlock()
	s.log.Info("smtp server listening", "addr", l.Addr().String(), "hostname", s.opts.Hostname)

	err := s.gs.Serve(&listener{Listener: l, srv: s})
	if s.closing.Load() {
		return ErrServerClosed
	}
	return fmt.Errorf("smtp: serve %s: %w", l.Addr(), err)
}

// Shutdown stops the server gracefully: listeners close at once, idle
// connections are closed (with 421), and a connection that is receiving a
// message (DATA or BDAT) finishes it, gets its reply, and is then closed.
// If ctx ends first, Shutdown closes everything as Close does and returns
// ctx's error. Either way every connection goroutine has ended when it
// returns.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.beginClose() {
		return ErrServerClosed
	}
	s.log.Info("smtp server shutting down")
	err := s.closeListeners()
	for _, c := range s.liveConns() {
		c.drain()
	}
	select {
	case <-s.allClosed():
		// Every connection go-smtp accepted has closed, so its
		// handler has started (and Add-ed to go-smtp's WaitGroup):
		// Shutdown only waits for the handlers to return.
		// go-smtp's Shutdown also closes our (already closed)
		// listeners and reports that; only a context error matters.
		if gerr := s.gs.Shutdown(ctx); gerr != nil && ctx.Err() != nil {
			s.forceClose()
			return ctx.Err()
		}
		s.cancel()
		return err
	case <-ctx.Done():
		s.forceClose()
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once; messages being
// received are lost (never acknowledged, so the sender retries). It waits
// for connection goroutines to end.
func (s *Server) Close() error {
	if !s.beginClose() {
		return ErrServerClosed
	}
	err := s.closeListeners()
	s.forceClose()
	return err
}

func (s *Server) beginClose() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closing.Swap(true)
}

func (s *Server) closeListeners() error {
	s.mu.Lock()
	lns := s.lns
	s.lns = nil
	s.mu.Unlock()
	var errs []error
	for _, l := range lns {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("smtp: close listener: %w", errors.Join(errs...))
	}
	return nil
}

// forceClose cancels session contexts, closes every connection and waits
// until every connection handler has closed its connection. A handler
// blocked in the store returns once its context is cancelled.
func (s *Server) forceClose() {
	s.cancel()
	_ = s.gs.Close() // closes go-smtp's listeners and connections
	for _, c := range s.liveConns() {
		// The raw connection only: the handler's own Close, which
		// always runs when it returns, removes it from the live set.
		_ = c.Conn.Close()
	}
	<-s.allClosed()
}

func (s *Server) liveConns() []*trackedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*trackedConn, 0, len(s.live))
	for c := range s.live {
		out = append(out, c)
	}
	return out
}

// allClosed returns a channel closed when no connection is open.
func (s *Server) allClosed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.live) == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return s.idle
}

// admit applies the connection limits to a new connection and returns it
// wrapped, or nil if it was refused (and closed).
func (s *Server) admit(nc net.Conn) net.Conn {
	ip := limits.AddrOf(nc.RemoteAddr())
	release, err := s.conns.Acquire(ip)
	if err != nil {
		s.refuse(nc, ip, err)
		return nil
	}
	id := rand.Text()[:12]
	tc := &trackedConn{Conn: nc, srv: s, ip: ip, id: id, release: release, readTimeout: s.opts.ReadTimeout}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		release()
		nc.Close()
		return nil
	}
	s.live[tc] = struct{}{}
	s.mu.Unlock()
	s.metrics.conns.WithLabelValues("accepted").Inc()
	s.metrics.open.Inc()
	if s.opts.Mode == ModeSubmissions {
		return tls.Server(tc, s.opts.TLSConfig)
	}
	return tc
}

// refuse answers a connection over a limit with 421 (RFC 5321 §3.8 allows
// it in place of the greeting) and closes it. It runs on the accept loop:
// the reply fits in a fresh socket's send buffer, and the write deadline
// bounds it anyway.
func (s *Server) refuse(nc net.Conn, ip netip.Addr, err error) {
	result, msg := "limit", "421 4.3.2 "+s.opts.Hostname+" too many connections, try again later\r\n"
	if errors.Is(err, limits.ErrClientConnLimit) {
		result, msg = "client_limit", "421 4.7.0 "+s.opts.Hostname+" too many connections from your address, try again later\r\n"
	}
	s.metrics.conns.WithLabelValues(result).Inc()
	s.log.Warn("connection refused", "remote", ip.String(), "reason", err.Error())
	if s.opts.Mode != ModeSubmissions {
		// An implicit-TLS client expects a handshake, not text.
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write([]byte(msg))
	}
	nc.Close()
}

func (s *Server) forget(c *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[c]; !ok {
		return
	}
	delete(s.live, c)
	s.metrics.open.Dec()
	if len(s.live) == 0 {
		close(s.idle)
		s.idle = make(chan struct{})
	}
}

// listener applies the server's admission rules to every accepted
// connection before go-smtp sees it.
type listener struct {
	net.Listener
	srv *Server
}

// Accept returns the next admitted connection.
func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.srv.closing.Load() {
			nc.Close()
			return nil, net.ErrClosed
		}
		if c := l.srv.admit(nc); c != nil {
			return c, nil
		}
	}
}

// trackedConn is a client connection as the server tracks it: its limiter
// slot, its idle timeout, and whether it is receiving a message, which
// Shutdown must not interrupt.
type trackedConn struct {
	net.Conn
	srv         *Server
	ip          netip.Addr
	id          string
	release     func()
	readTimeout time.Duration

	mu       sync.Mutex
	inData   bool
	draining atomic.Bool
	closed   sync.Once
}

// Read implements net.Conn with an idle timeout per read.
func (c *trackedConn) Read(p []byte) (int, error) {
	if c.readTimeout > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.readTimeout))
	}
	// Checked after setting the deadline: drain sets the flag before
	// it moves the deadline into the past, so one of the two wins.
	if c.draining.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	return c.Conn.Read(p)
}

// Close implements net.Conn; it frees the limiter slot once.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() {
		c.release()
		c.srv.forget(c)
	})
	return err
}

// drain makes the connection end at its next read, unless it is receiving
// a message; then endData drains it. go-smtp answers the timeout with 421
// and closes the connection.
func (c *trackedConn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inData {
		return
	}
	c.draining.Store(true)
	_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
}

// beginData marks the connection as receiving a message; false if it is
// already draining.
func (c *trackedConn) beginData() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining.Load() {
		return false
	}
	c.inData = true
	return true
}

func (c *trackedConn) endData() {
	c.mu.Lock()
	c.inData = false
	c.mu.Unlock()
	if c.srv.closing.Load() {
		c.drain()
	}
}

// backend adapts the server to go-smtp.
type backend struct{ s *Server }

// NewSession is called by go-smtp at EHLO/HELO (again after STARTTLS).
func (b backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	nc := c.Conn()
	tlsOn := false
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
		tlsOn = true
	}
	tc, ok := nc.(*trackedConn)
	if !ok {
		return nil, errors.New("smtp: connection not admitted by this server")
	}
	if b.s.closing.Load() {
		return nil, errShuttingDown
	}
	return newSession(b.s, c, tc, tlsOn), nil
}

// errorLog sends go-smtp's internal messages to slog.
type errorLog struct{ l *slog.Logger }

func (e errorLog) Printf(format string, v ...any) { e.log(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.log(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

func (e errorLog) log(msg string) {
	if strings.Contains(msg, "panic") {
		e.l.Error("go-smtp: "+msg, "component", "go-smtp")
		return
	}
	// Mostly clients that vanish mid-session or fail the TLS handshake.
	e.l.Debug("go-smtp: "+msg, "component", "go-smtp")
}
