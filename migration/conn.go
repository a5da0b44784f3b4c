package migration

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/store"
)

// sourceConn is one logged-in connection to a source.
type sourceConn struct {
	c       *imapclient.Client
	conn    *limitedConn
	release func()
	stop    func() bool // detaches the ctx watcher
	// dead is set when the connection was dropped on purpose (a FETCH
	// abandoned midway); it is not reused.
	dead bool
}

// Close logs out politely (bounded by the command timeout) and releases
// the host slot.
func (s *sourceConn) Close() {
	s.stop()
	done := make(chan struct{})
	go func() {
		_ = s.c.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	_ = s.c.Close()
	s.release()
}

// dial connects to job's source, secures and authenticates the
// connection. The allowlist is checked first: a refused host is
// ErrClassConfig and nothing is dialled. The connection is closed when ctx
// is done, which fails whatever command is in progress.
func (m *Migrator) dial(ctx context.Context, job Job) (*sourceConn, error) {
	return m.dialWith(ctx, job, dialOptions{})
}

// dialOptions are what an IDLE connection (idle.go) needs beyond dial's.
type dialOptions struct {
	// noSlot: the connection takes no slot of MaxConnsPerHost. A
	// collector's one IDLE connection lives as long as the collector;
	// holding a slot, a few of them would starve every pass on the host.
	noSlot bool
	// unilateral handles the source's unilateral data (nil: ignored).
	unilateral *imapclient.UnilateralDataHandler
}

// dialWith is dial with o.
func (m *Migrator) dialWith(ctx context.Context, job Job, o dialOptions) (*sourceConn, error) {
	src := job.Source
	cfgErr := func(err error) error { return &Error{Class: ErrClassConfig, Target: job.Target, Err: err} }
	addrs, err := m.allow.check(ctx, m.opts.Resolver, src.Host)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &Error{Class: ErrClassCanceled, Target: job.Target, Err: ctx.Err()}
		}
		return nil, cfgErr(err)
	}
	tlsConf, err := sourceTLSConfig(src)
	if err != nil {
		return nil, cfgErr(err)
	}

	release := func() {}
	if !o.noSlot {
		if release, err = m.hosts.acquire(ctx, src.Host); err != nil {
			return nil, &Error{Class: ErrClassCanceled, Target: job.Target, Err: err}
		}
	}
	connErr := func(err error) error {
		release()
		if ctx.Err() != nil {
			return &Error{Class: ErrClassCanceled, Target: job.Target, Err: ctx.Err()}
		}
		return &Error{Class: classifySource(err), Target: job.Target, Err: err}
	}
	dctx, cancel := context.WithTimeout(ctx, m.opts.DialTimeout)
	defer cancel()
	raw, err := dialSource(dctx, src, addrs)
	if err != nil {
		return nil, connErr(err)
	}
	lc := &limitedConn{Conn: raw, ctx: ctx, bw: m.bw}
	lc.timeout.Store(int64(m.opts.DialTimeout))
	c, err := newSourceClient(dctx, lc, src, tlsConf, o.unilateral)
	if err != nil {
		raw.Close()
		return nil, connErr(err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		stop()
		c.Close()
		return nil, connErr(fmt.Errorf("greeting from %s: %w", src.Host, err))
	}
	if err := m.authenticate(c, job.Credentials); err != nil {
		stop()
		c.Close()
		release()
		if ctx.Err() != nil {
			return nil, &Error{Class: ErrClassCanceled, Target: job.Target, Err: ctx.Err()}
		}
		return nil, &Error{Class: classifyAuth(err), Target: job.Target, Err: err}
	}
	lc.timeout.Store(int64(m.opts.CommandTimeout))
	return &sourceConn{c: c, conn: lc, release: release, stop: stop}, nil
}

// sourcePort is src.Port, or the IMAP port of its TLS mode: 993 for
// implicit TLS (RFC 8314 §3.3), 143 otherwise.
func sourcePort(src Source) int {
	switch {
	case src.Port != 0:
		return src.Port
	case src.TLS == TLSImplicit:
		return 993
	}
	return 143
}

// sourceTLSConfig is the TLS configuration for src: its host name, TLS
// 1.2 or later, and the certificates of src.CAFile as the only roots if it
// names one.
func sourceTLSConfig(src Source) (*tls.Config, error) {
	tlsConf := &tls.Config{ServerName: src.Host, InsecureSkipVerify: src.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if src.CAFile == "" {
		return tlsConf, nil
	}
	pool, err := certs.LoadPool(src.CAFile)
	if err != nil {
		return nil, fmt.Errorf("source %w", err)
	}
	tlsConf.RootCAs = pool
	return tlsConf, nil
}

// dialSource opens the TCP connection to src: to exactly the addresses
// the allowlist approved, in order, or (addrs nil: no allowlist) to the
// host name.
func dialSource(ctx context.Context, src Source, addrs []netip.Addr) (net.Conn, error) {
	port := sourcePort(src)
	var d net.Dialer
	var raw net.Conn
	var err error
	if addrs == nil {
		raw, err = d.DialContext(ctx, "tcp", net.JoinHostPort(src.Host, strconv.Itoa(port)))
	} else {
		for _, a := range addrs {
			raw, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
			if err == nil {
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s:%d: %w", src.Host, port, err)
	}
	return raw, nil
}

// newSourceClient starts the IMAP client on lc, secured as src.TLS says:
// a TLS handshake first (implicit TLS, RFC 8314 §3.3), STARTTLS (RFC 9051
// §6.2.1), or none.
func newSourceClient(ctx context.Context, lc *limitedConn, src Source, tlsConf *tls.Config, unilateral *imapclient.UnilateralDataHandler) (*imapclient.Client, error) {
	opts := &imapclient.Options{TLSConfig: tlsConf, UnilateralDataHandler: unilateral}
	switch src.TLS {
	case TLSImplicit:
		tc := tls.Client(lc, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS with %s: %w", src.Host, err)
		}
		return imapclient.New(tc, opts), nil
	case TLSStartTLS:
		c, err := imapclient.NewStartTLS(lc, opts)
		if err != nil {
			return nil, fmt.Errorf("STARTTLS with %s: %w", src.Host, err)
		}
		return c, nil
	default:
		return imapclient.New(lc, opts), nil
	}
}

// authenticate logs in as the credentials say. The password goes only to
// the source.
func (m *Migrator) authenticate(c *imapclient.Client, cr Credentials) error {
	switch cr.Mode {
	case AuthServicePlain:
		// RFC 4616 §2: message = [authzid] NUL authcid NUL passwd; the
		// service account authenticates, the mailbox is the authzid.
		if err := c.Authenticate(sasl.NewPlainClient(cr.Login, cr.Service, cr.Password.Reveal())); err != nil {
			resp := base64.StdEncoding.EncodeToString([]byte(cr.Login + "\x00" + cr.Service + "\x00" + cr.Password.Reveal()))
			return fmt.Errorf("AUTHENTICATE PLAIN as %s for %s: %w", cr.Service, cr.Login, redactSecret(err, cr.Password.Reveal(), resp))
		}
	case AuthServiceExchange:
		login := cr.Service + `\` + cr.Login
		if err := c.Login(login, cr.Password.Reveal()).Wait(); err != nil {
			return fmt.Errorf("LOGIN %s: %w", login, redactSecret(err, cr.Password.Reveal()))
		}
	default:
		if err := c.Login(cr.Login, cr.Password.Reveal()).Wait(); err != nil {
			return fmt.Errorf("LOGIN %s: %w", cr.Login, redactSecret(err, cr.Password.Reveal()))
		}
	}
	return nil
}

// redactSecret returns err with every occurrence of the secrets (and of
// the password as an IMAP quoted string) masked: some servers repeat the
// command they refuse in their NO or BAD text, and that text ends up in
// statuses and logs. The result still unwraps to an *imap.Error (with
// the masked text) when err held one, so classification is unchanged.
func redactSecret(err error, secrets ...string) error {
	var all []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		all = append(all, s)
		if q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s); q != s {
			all = append(all, q)
		}
	}
	clean := func(t string) string {
		for _, s := range all {
			t = strings.ReplaceAll(t, s, Mask)
		}
		return t
	}
	msg := err.Error()
	if clean(msg) == msg {
		return err
	}
	r := &redactedError{msg: clean(msg)}
	var ie *imap.Error
	if errors.As(err, &ie) {
		c := *ie
		c.Text = clean(c.Text)
		r.cause = &c
	}
	return r
}

// redactedError is an error whose text had a secret masked.
type redactedError struct {
	msg   string
	cause error // the masked *imap.Error, or nil
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// classifyAuth: a NO (or BAD, which some servers send for a refused
// mechanism) to LOGIN/AUTHENTICATE is an authentication failure; anything
// else is what classifySource says.
func classifyAuth(err error) ErrorClass {
	var ie *imap.Error
	if errors.As(err, &ie) && (ie.Type == imap.StatusResponseTypeNo || ie.Type == imap.StatusResponseTypeBad) {
		return ErrClassAuth
	}
	return classifySource(err)
}

// classifySource sorts an error from the source connection: network
// failures, timeouts, TLS and dropped connections are connection errors;
// NO/BAD answers and unparsable responses are source errors.
func classifySource(err error) ErrorClass {
	var me *Error
	if errors.As(err, &me) {
		return me.Class
	}
	var ne net.Error
	var te *tls.CertificateVerificationError
	var re tls.RecordHeaderError
	var ae tls.AlertError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne), errors.As(err, &te), errors.As(err, &re), errors.As(err, &ae):
		return ErrClassConnection
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ErrClassSource
	}
	// go-imap's reader reports a failed read with %v, which drops the
	// error's type; its text still says what happened.
	msg := err.Error()
	for _, s := range []string{"i/o timeout", "connection reset", "broken pipe", "use of closed network connection", "unexpected EOF", ": EOF", "connection refused"} {
		if strings.Contains(msg, s) {
			return ErrClassConnection
		}
	}
	return ErrClassSource
}

// classifyLocal sorts an error from the target store.
func classifyLocal(ctx context.Context, err error) ErrorClass {
	var qe *store.QuotaError
	switch {
	case ctx.Err() != nil:
		return ErrClassCanceled
	case errors.As(err, &qe), errors.Is(err, store.ErrQuotaExceeded):
		return ErrClassQuota
	}
	return ErrClassTarget
}

// limitedConn wraps a source connection: reads pay the shared bandwidth
// bucket, and every read and write gets a fresh deadline of timeout
// (DialTimeout until logged in, then CommandTimeout): no response may
// stall longer. imapclient.Options has no per-command timeout, and the
// deadlines the client sets itself are replaced here by these.
type limitedConn struct {
	net.Conn
	ctx     context.Context
	bw      *bandwidth
	timeout atomic.Int64 // time.Duration
	// readErr is the first read error. Reads are never concurrent: the
	// client's reader goroutine reads, or the goroutine it handed a FETCH
	// literal to while it waits (see literalGuard for the one way this
	// could break, and how it is kept from happening).
	readErr error
}

// Read never returns data together with an error, and once it has failed
// it fails every later call the same way. go-imap's client cannot take
// either: a literal whose last bytes come with an error (the bandwidth
// wait canceled, say) releases the client's reader goroutine at the error
// and then, on the next read, finds the literal's end and marks the
// decoder, which that goroutine is using by then (a data race in
// imapwire.LiteralReader), and after a failed read the stream is out of
// step anyway.
func (c *limitedConn) Read(p []byte) (int, error) {
	if c.readErr != nil {
		return 0, c.readErr
	}
	if t := time.Duration(c.timeout.Load()); t > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(t))
	}
	n, err := c.Conn.Read(p)
	if c.bw != nil && n > 0 {
		if werr := c.bw.take(c.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		c.readErr = err
		if n > 0 {
			return n, nil
		}
	}
	return n, err
}

func (c *limitedConn) Write(p []byte) (int, error) {
	if t := time.Duration(c.timeout.Load()); t > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(t))
	}
	return c.Conn.Write(p)
}

// SetReadDeadline and SetWriteDeadline ignore the client's own deadlines
// (30s per response in go-imap v2): Read and Write set ours.
func (c *limitedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *limitedConn) SetWriteDeadline(time.Time) error { return nil }
func (c *limitedConn) SetDeadline(time.Time) error      { return nil }
