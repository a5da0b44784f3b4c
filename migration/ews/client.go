package ews

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/migration"
)

// Version is the Exchange version a request asks for
// (RequestServerVersion, [MS-OXWSCDATA] §2.2.5.6).
type Version string

// Supported versions.
const (
	Exchange2013SP1 Version = "Exchange2013_SP1"
	Exchange2016    Version = "Exchange2016"
	Exchange2019    Version = "Exchange2019"
)

// Auth is how the client authenticates over HTTP.
type Auth string

// Authentication schemes.
const (
	AuthBasic Auth = "basic" // RFC 7617, only over TLS
	AuthNTLM  Auth = "ntlm"  // NTLM over HTTP ([MS-NTHT]), by go-ntlmssp
)

// Access is how the service account reaches a mailbox other than its own.
type Access string

// Access modes.
const (
	// AccessOwn reads the account's own mailbox.
	AccessOwn Access = "own"
	// AccessImpersonation sends the ExchangeImpersonation header with the
	// mailbox's address ([MS-OXWSCORE] §2.2.4.5); the service account
	// needs the ApplicationImpersonation role.
	AccessImpersonation Access = "impersonation"
	// AccessDelegate names the mailbox in each distinguished folder id
	// (delegate access; the account needs folder permissions).
	AccessDelegate Access = "delegate"
)

// Options configure a [Client] for one source (one EWS endpoint).
type Options struct {
	// URL is the EWS endpoint, e.g. https://mail.example.com/EWS/Exchange.asmx.
	URL string
	// Version is sent as RequestServerVersion; empty means Exchange2013SP1.
	Version Version
	Auth    Auth
	// Username ("DOMAIN\user" or "user@domain" for NTLM) and Password of
	// the account the client logs in as.
	Username string
	Password migration.Secret
	// Access says how other mailboxes are reached; empty means AccessOwn.
	Access Access
	// TLS version range, e.g. tls.VersionTLS10..tls.VersionTLS12 for
	// Exchange 2013 (TLS 1.0 to 1.3 are allowed when configured); zero
	// means TLS 1.2 minimum and Go's maximum.
	MinTLSVersion, MaxTLSVersion uint16
	// CAFile is a PEM file of CAs trusted for the source instead of the
	// system pool; InsecureSkipVerify accepts any certificate (labs).
	CAFile             string
	InsecureSkipVerify bool
	// Allowlist is checked before every dial (see migration.NewAllowlist);
	// nil refuses every host.
	Allowlist *migration.Allowlist
	// Resolver resolves the host for the allowlist; nil means the default.
	Resolver *net.Resolver
	// CallTimeout bounds each call including retries after throttling,
	// from the moment it has one of the MaxConcurrent slots (default 2
	// minutes); DialTimeout bounds a TCP and TLS set-up
	// (default 30 s).
	CallTimeout, DialTimeout time.Duration
	// MaxConcurrent bounds the calls in flight on this source (default 4).
	MaxConcurrent int
	// MaxResponseBytes bounds one response body (default 64 MiB); a larger
	// one fails as too large.
	MaxResponseBytes int64
	// MaxRetries bounds the retries of a throttled call (default 5);
	// MaxBackoff caps one wait a server asks for (default 5 minutes).
	MaxRetries int
	MaxBackoff time.Duration
	// Transport, if set, replaces the HTTP transport the client builds
	// (tests); the allowlist and TLS options then do not apply.
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// Client calls one EWS endpoint. It is safe for concurrent use; at most
// Options.MaxConcurrent calls are in flight at once. Close releases its
// idle connections.
type Client struct {
	opts Options
	url  *url.URL
	// slots holds one HTTP client per call that may be in flight; a call
	// takes one for its duration. With NTLM each has its own transport
	// of at most two connections: NTLM authenticates a connection, and
	// go-ntlmssp keeps the first, unauthenticated answer open while it
	// runs the handshake, so the handshake's legs need a second
	// connection to themselves. On a transport shared by all calls,
	// MaxConcurrent such answers held every connection and the
	// handshakes waited for one forever.
	slots  chan *http.Client
	bases  []*http.Transport
	logger *slog.Logger
}

// NewClient checks opts and returns a client. It makes no connection.
func NewClient(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, configErr(fmt.Errorf("ews: invalid endpoint URL %q", opts.URL))
	}
	if opts.Version == "" {
		opts.Version = Exchange2013SP1
	}
	switch opts.Version {
	case Exchange2013SP1, Exchange2016, Exchange2019:
	default:
		return nil, configErr(fmt.Errorf("ews: unsupported server version %q", opts.Version))
	}
	switch opts.Access {
	case "":
		opts.Access = AccessOwn
	case AccessOwn, AccessImpersonation, AccessDelegate:
	default:
		return nil, configErr(fmt.Errorf("ews: unknown access mode %q", opts.Access))
	}
	if opts.Auth != AuthBasic && opts.Auth != AuthNTLM {
		return nil, configErr(fmt.Errorf("ews: unknown authentication %q", opts.Auth))
	}
	setDefault(&opts.CallTimeout, 2*time.Minute)
	setDefault(&opts.DialTimeout, 30*time.Second)
	setDefault(&opts.MaxBackoff, 5*time.Minute)
	setDefault(&opts.MaxConcurrent, 4)
	setDefault(&opts.MaxResponseBytes, 64<<20)
	setDefault(&opts.MaxRetries, 5)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{opts: opts, url: u, slots: make(chan *http.Client, opts.MaxConcurrent), logger: opts.Logger}
	var shared http.RoundTripper
	for range opts.MaxConcurrent {
		rt := opts.Transport
		if rt == nil {
			rt = shared
		}
		if rt == nil {
			base, err := c.transport()
			if err != nil {
				return nil, err
			}
			c.bases = append(c.bases, base)
			rt = base
			if opts.Auth == AuthNTLM {
				base.MaxConnsPerHost, base.MaxIdleConnsPerHost = 2, 2
			} else {
				shared = base
			}
		}
		if opts.Auth == AuthNTLM {
			rt = ntlmssp.Negotiator{RoundTripper: rt}
		}
		c.slots <- &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error {
			// A redirect would carry the credentials to a host the
			// allowlist has not seen with this request's meaning; EWS
			// never needs one.
			return http.ErrUseLastResponse
		}}
	}
	return c, nil
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// transport is the HTTP transport: every dial checks the allowlist first
// and goes to exactly the addresses it approved; TLS as configured.
func (c *Client) transport() (*http.Transport, error) {
	tc := &tls.Config{
		ServerName:         c.url.Hostname(),
		MinVersion:         c.opts.MinTLSVersion,
		MaxVersion:         c.opts.MaxTLSVersion,
		InsecureSkipVerify: c.opts.InsecureSkipVerify,
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	if tc.MinVersion < tls.VersionTLS10 || (tc.MaxVersion != 0 && tc.MaxVersion < tc.MinVersion) {
		return nil, configErr(fmt.Errorf("ews: invalid TLS version range %#x-%#x", tc.MinVersion, tc.MaxVersion))
	}
	if c.opts.CAFile != "" {
		pool, err := certs.LoadPool(c.opts.CAFile)
		if err != nil {
			return nil, configErr(fmt.Errorf("ews: source %w", err))
		}
		tc.RootCAs = pool
	}
	return &http.Transport{
		DialContext:           c.dial,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   c.opts.DialTimeout,
		ResponseHeaderTimeout: c.opts.CallTimeout,
		MaxConnsPerHost:       c.opts.MaxConcurrent,
		MaxIdleConnsPerHost:   c.opts.MaxConcurrent,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     false, // NTLM authenticates a connection, not a stream
	}, nil
}

// errNotAllowed marks a dial the allowlist refused.
var errNotAllowed = errors.New("ews: refused by the allowlist")

func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if c.opts.Allowlist == nil {
		return nil, fmt.Errorf("%w: no allowlist configured for %s", errNotAllowed, host)
	}
	addrs, err := c.opts.Allowlist.Check(ctx, c.opts.Resolver, host)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotAllowed, err)
	}
	d := net.Dialer{Timeout: c.opts.DialTimeout}
	if addrs == nil {
		return d.DialContext(ctx, network, addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		var conn net.Conn
		if conn, err = d.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(p)).String()); err == nil {
			return conn, nil
		}
	}
	return nil, err
}

// Close closes the client's idle connections.
func (c *Client) Close() {
	for _, b := range c.bases {
		b.CloseIdleConnections()
	}
}

// Mailbox returns a handle for the mailbox with the given SMTP address,
// reached as Options.Access says ("" for the account's own mailbox).
func (c *Client) Mailbox(address string) *Mailbox {
	return &Mailbox{c: c, address: address}
}

// Mailbox is one mailbox on a [Client]'s source; its methods are the EWS
// operations.
type Mailbox struct {
	c       *Client
	address string
}

// call sends one SOAP request whose body element is req and decodes the
// body element of the answer into resp. It holds one of the client's
// slots, retries a throttled call after the wait the server asks for,
// and classifies every failure. Options.CallTimeout runs from the
// moment the call first has a slot: the time it queued behind the
// source's other calls (MaxConcurrent) is not the call's.
func (m *Mailbox) call(ctx context.Context, req, resp any) error {
	c := m.c
	payload, err := m.envelope(req)
	if err != nil {
		return configErr(err)
	}
	hc, err := c.slot(ctx)
	if err != nil {
		return m.classify(ctx, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.CallTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		if hc == nil {
			if hc, err = c.slot(ctx); err != nil {
				return m.classify(ctx, err)
			}
		}
		err := m.attempt(ctx, hc, payload, resp)
		hc = nil // attempt gave the slot back
		var busy *busyError
		if !errors.As(err, &busy) || attempt >= c.opts.MaxRetries {
			if busy != nil {
				err = busy.err
			}
			return m.classify(ctx, err)
		}
		wait := min(busy.wait, c.opts.MaxBackoff)
		c.logger.Info("ews: throttled, waiting", "mailbox", m.address, "wait", wait, "attempt", attempt+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return m.classify(ctx, ctx.Err())
		case <-t.C:
		}
	}
}

// slot waits for one of the client's MaxConcurrent slots, an HTTP
// client; attempt gives it back.
func (c *Client) slot(ctx context.Context) (*http.Client, error) {
	select {
	case hc := <-c.slots:
		return hc, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// busyError is a throttled attempt: the server asked to wait.
type busyError struct {
	wait time.Duration
	err  error
}

func (e *busyError) Error() string { return e.err.Error() }

// attempt is one HTTP exchange of call, over hc, the slot it holds and
// gives back when it returns.
func (m *Mailbox) attempt(ctx context.Context, hc *http.Client, payload []byte, resp any) error {
	c := m.c
	defer func() { c.slots <- hc }()
	r, err := m.post(ctx, hc, payload)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	body := &limitedBody{r: r.Body, left: c.opts.MaxResponseBytes}
	switch {
	case r.StatusCode == http.StatusUnauthorized || r.StatusCode == http.StatusForbidden:
		return &httpError{status: r.StatusCode}
	case r.StatusCode == http.StatusServiceUnavailable || r.StatusCode == http.StatusTooManyRequests:
		return &busyError{wait: retryAfter(r.Header.Get("Retry-After")), err: &httpError{status: r.StatusCode}}
	case r.StatusCode != http.StatusOK && r.StatusCode != http.StatusInternalServerError:
		// EWS sends SOAP faults with 500; anything else is not EWS.
		return &httpError{status: r.StatusCode}
	}
	err = decodeEnvelope(body, resp)
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10)) // lets the connection be reused
	return err
}

// post sends payload over hc and returns the response. With NTLM, a
// handshake the transport split over two connections (ntlmLegs) is
// started over, at most maxNTLMHandshakes times in all.
func (m *Mailbox) post(ctx context.Context, hc *http.Client, payload []byte) (*http.Response, error) {
	c := m.c
	for handshake := 1; ; handshake++ {
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url.String(), bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		hr.Header.Set("Content-Type", "text/xml; charset=utf-8")
		hr.Header.Set("Accept", "text/xml")
		hr.SetBasicAuth(c.opts.Username, c.opts.Password.Reveal())
		var legs ntlmLegs
		if c.opts.Auth == AuthNTLM {
			hr = legs.trace(hr)
		}
		r, err := hc.Do(hr)
		if err != nil || r.StatusCode != http.StatusUnauthorized || !legs.split() || handshake == maxNTLMHandshakes {
			return r, err
		}
		// The AUTHENTICATE message answered a challenge sent on another
		// connection, so the server could not check it: not a refusal
		// of the credentials. The handshake starts over.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
		r.Body.Close()
		c.logger.Debug("ews: NTLM handshake split over two connections, starting over", "mailbox", m.address, "handshake", handshake)
	}
}

// maxNTLMHandshakes bounds the NTLM handshakes one exchange starts when
// the transport splits them over two connections (see ntlmLegs).
const maxNTLMHandshakes = 3

// ntlmLegs records the connection each request of one exchange went
// over. With NTLM, go-ntlmssp sends up to three: anonymous, NEGOTIATE
// and AUTHENTICATE. NTLM authenticates the connection that carried the
// challenge ([MS-NTHT]), so the AUTHENTICATE must follow the
// NEGOTIATE on its connection, and net/http does not promise that: it
// closes a connection instead of reusing it when, for one, the
// goroutine writing the request has not reported the write done
// within 50 ms of the response being read (a busy machine), and then
// dials a new one for the next request.
type ntlmLegs struct {
	conns []net.Conn
}

// trace returns r recording its connections in l. The Negotiator sends
// the legs one after another, each reporting its connection before it
// is sent (httptrace.ClientTrace.GotConn).
func (l *ntlmLegs) trace(r *http.Request) *http.Request {
	return r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { l.conns = append(l.conns, i.Conn) },
	}))
}

// split reports whether the last leg, the AUTHENTICATE of a handshake,
// went over another connection than the NEGOTIATE before it.
func (l *ntlmLegs) split() bool {
	n := len(l.conns)
	return n >= 3 && l.conns[n-1] != l.conns[n-2]
}

// retryAfter reads an HTTP Retry-After value in seconds or as a date
// (RFC 9110 §10.2.3); missing or unreadable means 30 s.
func retryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 30 * time.Second
}

// limitedBody fails with errTooLarge once more than left bytes are read.
type limitedBody struct {
	r    io.Reader
	left int64
}

var errTooLarge = errors.New("ews: response exceeds the size limit")

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// envelope renders the SOAP envelope of req: RequestServerVersion and,
// for impersonation, the ExchangeImpersonation header.
func (m *Mailbox) envelope(req any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<soap:Envelope xmlns:soap="` + nsSOAP + `" xmlns:t="` + nsTypes + `" xmlns:m="` + nsMessages + `"><soap:Header>`)
	b.WriteString(`<t:RequestServerVersion Version="` + string(m.c.opts.Version) + `"/>`)
	if m.c.opts.Access == AccessImpersonation && m.address != "" {
		b.WriteString(`<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>`)
		if err := xml.EscapeText(&b, []byte(m.address)); err != nil {
			return nil, err
		}
		b.WriteString(`</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`)
	}
	b.WriteString(`</soap:Header><soap:Body>`)
	if err := xml.NewEncoder(&b).Encode(req); err != nil {
		return nil, err
	}
	b.WriteString(`</soap:Body></soap:Envelope>`)
	return b.Bytes(), nil
}

// distinguished renders a distinguished folder id for this mailbox: with
// delegate access the mailbox is named in it.
func (m *Mailbox) distinguished(name string) *distinguishedFolderID {
	d := &distinguishedFolderID{ID: name}
	if m.c.opts.Access == AccessDelegate && m.address != "" {
		d.Mailbox = &folderMailbox{EmailAddress: m.address}
	}
	return d
}
