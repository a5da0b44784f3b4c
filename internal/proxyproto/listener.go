package proxyproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mailyard/mailyard/internal/limits"
)

// DefaultHeaderTimeout is Options.HeaderTimeout's default.
const DefaultHeaderTimeout = 5 * time.Second

// DefaultMaxPending is Options.MaxPending's default.
const DefaultMaxPending = 256

// ErrUntrusted is the error of the first Read on a connection from an
// untrusted source that sent a PROXY header.
var ErrUntrusted = errors.New("proxyproto: PROXY header from an untrusted source")

// errClosedEarly: a trusted source closed the connection before sending
// anything.
var errClosedEarly = errors.New("closed before sending a PROXY header")

// Options configures a Listener.
type Options struct {
	// Trusted are the balancers' addresses. Only they may send a header,
	// and they must (unless Optional). Empty trusts no one: every
	// connection is a direct client.
	Trusted []netip.Prefix
	// Optional lets a trusted source send no header: its connection is
	// then served with the socket's address, after HeaderTimeout if it
	// sends nothing (a server-first protocol such as SMTP waits that long
	// for its greeting).
	Optional bool
	// RefuseDirect closes connections from untrusted sources at once;
	// by default they are served as direct clients with their own
	// address.
	RefuseDirect bool
	// HeaderTimeout bounds the wait for a trusted source's header.
	// Default DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// MaxPending bounds the connections whose header is being read at
	// once; Accept on the raw listener waits while that many are.
	// Default DefaultMaxPending.
	MaxPending int
	// Logger receives refusals (warn) and proxied connections (debug).
	// Default: discard.
	Logger *slog.Logger
}

// Listener is a net.Listener that reads the PROXY protocol header of
// connections from trusted sources (see the package documentation).
type Listener struct {
	inner net.Listener
	opts  Options
	log   *slog.Logger

	ready chan accepted
	done  chan struct{}
	sem   chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{}
	closed  bool
}

type accepted struct {
	c   net.Conn
	err error
}

// NewListener wraps ln and starts accepting on it; Close stops that.
func NewListener(ln net.Listener, opts Options) *Listener {
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = DefaultHeaderTimeout
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Listener{
		inner: ln, opts: opts, log: log,
		ready:   make(chan accepted),
		done:    make(chan struct{}),
		sem:     make(chan struct{}, opts.MaxPending),
		pending: make(map[net.Conn]struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next connection whose client address is settled.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case a := <-l.ready:
		return a.c, a.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Addr returns the raw listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close closes the raw listener and every connection whose header is
// still being read, and waits for the goroutines of l to end. Connections
// Accept returned are the caller's. Calling it again does nothing.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	for c := range l.pending {
		c.Close()
	}
	l.mu.Unlock()
	err := l.inner.Close()
	l.wg.Wait()
	return err
}

// trusted reports whether ip is a balancer's address.
func (l *Listener) trusted(ip netip.Addr) bool {
	for _, p := range l.opts.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		select { // a slot for a header read, before taking a connection
		case l.sem <- struct{}{}:
		case <-l.done:
			return
		}
		c, err := l.inner.Accept()
		if err != nil {
			<-l.sem
			select {
			case <-l.done:
				return
			default:
			}
			if !l.deliver(accepted{err: err}) {
				return
			}
			// Back off as net/http does, so a persistent error (EMFILE)
			// does not spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
			case <-l.done:
				return
			}
			continue
		}
		delay = 0
		ip := limits.AddrOf(c.RemoteAddr())
		if !l.trusted(ip) {
			<-l.sem
			if l.opts.RefuseDirect {
				l.log.Warn("proxy protocol: connection refused", "remote", ip.String(), "reason", "not a trusted balancer and direct connections are refused")
				c.Close()
				continue
			}
			if !l.deliver(accepted{c: &Conn{Conn: c, guard: true, log: l.log}}) {
				c.Close()
				return
			}
			continue
		}
		if !l.track(c) {
			<-l.sem
			c.Close()
			return
		}
		l.wg.Add(1)
		go l.handshake(c, ip)
	}
}

// deliver hands a to Accept; false if l closed first.
func (l *Listener) deliver(a accepted) bool {
	select {
	case l.ready <- a:
		return true
	case <-l.done:
		return false
	}
}

func (l *Listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *Listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
}

// handshake reads the header of a trusted source's connection c and hands
// the connection to Accept, or refuses it.
func (l *Listener) handshake(c net.Conn, ip netip.Addr) {
	defer l.wg.Done()
	pc, err := l.readHeader(c)
	l.untrack(c)
	<-l.sem
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, errClosedEarly) {
			level = slog.LevelDebug // a port probe: connected, closed, sent nothing
		}
		l.log.Log(context.Background(), level, "proxy protocol: connection refused", "remote", ip.String(), "reason", err.Error())
		c.Close()
		return
	}
	if pc.header.Proxied {
		l.log.Debug("proxy protocol: proxied connection", "client", pc.RemoteAddr().String(), "proxy", ip.String(), "version", pc.header.Version)
	}
	if !l.deliver(accepted{c: pc}) {
		c.Close()
	}
}

// readHeader reads the header of c within the header timeout.
func (l *Listener) readHeader(c net.Conn) (*Conn, error) {
	if err := c.SetReadDeadline(time.Now().Add(l.opts.HeaderTimeout)); err != nil {
		return nil, err
	}
	var buf []byte
	chunk := make([]byte, 512)
	for {
		h, n, err := Parse(buf)
		switch {
		case err == nil:
			return l.settled(c, h, buf[n:])
		case errors.Is(err, ErrNoHeader):
			if l.opts.Optional {
				return l.settled(c, Header{}, buf)
			}
			return nil, errors.New("a trusted source sent no PROXY header")
		case !errors.Is(err, ErrIncomplete):
			return nil, err
		}
		m, rerr := c.Read(chunk)
		buf = append(buf, chunk[:m]...)
		if rerr != nil && m == 0 {
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() && len(buf) == 0 {
				if l.opts.Optional {
					return l.settled(c, Header{}, nil)
				}
				return nil, fmt.Errorf("no PROXY header within %v", l.opts.HeaderTimeout)
			}
			if errors.Is(rerr, io.EOF) && len(buf) == 0 {
				return nil, errClosedEarly
			}
			return nil, fmt.Errorf("reading the PROXY header: %w", rerr)
		}
	}
}

func (l *Listener) settled(c net.Conn, h Header, rest []byte) (*Conn, error) {
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	pc := &Conn{Conn: c, header: h, pending: rest, log: l.log}
	if h.Proxied {
		pc.remote = &net.TCPAddr{IP: h.Source.Addr().AsSlice(), Port: int(h.Source.Port())}
	}
	return pc, nil
}

// Conn is a connection accepted by a Listener.
type Conn struct {
	net.Conn
	header Header
	remote net.Addr // the header's source; nil: the socket's
	log    *slog.Logger

	mu      sync.Mutex // guards guard and pending across Reads
	guard   bool       // an untrusted source: refuse a header on first Read
	pending []byte     // read past the header, not yet returned
}

// RemoteAddr returns the client's address: the header's source when a
// balancer relayed the connection, the socket's peer otherwise.
func (c *Conn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// Header returns the PROXY header the connection began with; its Version
// is 0 when there was none.
func (c *Conn) Header() Header { return c.header }

// Read implements net.Conn. The first Read on a connection from an
// untrusted source fails with ErrUntrusted, and closes it, if the
// connection begins with a PROXY header.
func (c *Conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.guard {
		c.guard = false
		if err := c.refuseHeader(); err != nil {
			return 0, err
		}
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// refuseHeader reads until the first bytes tell whether they are a
// signature, keeping them for Read; a signature closes the connection.
func (c *Conn) refuseHeader() error {
	chunk := make([]byte, 64)
	for {
		if hasSignature(c.pending, sigV1) || hasSignature(c.pending, sigV2) {
			c.log.Warn("proxy protocol: connection refused", "remote", limits.AddrOf(c.Conn.RemoteAddr()).String(), "reason", ErrUntrusted.Error())
			c.Conn.Close()
			return ErrUntrusted
		}
		if !isPrefix(c.pending, sigV1) && !isPrefix(c.pending, sigV2) {
			return nil
		}
		n, rerr := c.Conn.Read(chunk)
		c.pending = append(c.pending, chunk[:n]...)
		if rerr != nil && n == 0 {
			if len(c.pending) > 0 {
				return nil // what there is goes to the caller; the error follows
			}
			return rerr
		}
	}
}

// CloseWrite shuts down the writing side of the socket (a server that
// says goodbye before it closes uses it so its last reply is not lost to
// a reset), or returns errors.ErrUnsupported when the socket cannot.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
