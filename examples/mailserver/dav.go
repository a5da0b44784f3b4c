package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/internal/limits"
	"github.com/mailyard/mailyard/internal/metric"
	"github.com/mailyard/mailyard/store"
)

// davPrefix is the context path of CalDAV and CardDAV (RFC 6764 §4: the
// TXT path= of `mailserver dns`; the well-known URIs redirect to it).
const davPrefix = "/dav"

// DAVConfig is the CalDAV/CardDAV listener ([dav]): HTTPS with the IMAPS
// certificate, serving package dav under /dav/ and the /.well-known/caldav
// and /.well-known/carddav redirects. An empty Listen disables it.
type DAVConfig struct {
	Listen string `toml:"listen"`
	// InsecureHTTP serves plain HTTP instead of HTTPS: Basic credentials
	// then cross the network in the clear (RFC 7617 §4). Only for a lab
	// on loopback. Without it a plain HTTP request to the listener is
	// refused (400) before any credentials are read.
	InsecureHTTP bool `toml:"insecure_http"`
	// ProxyProtocol reads a PROXY protocol header from [proxy] trusted
	// balancers before TLS (proxy.go).
	ProxyProtocol bool `toml:"proxy_protocol"`
	// Limits of package dav (see dav.Limits); zero takes dav's default.
	MaxResourceSize         int64 `toml:"max_resource_size"`
	MaxCollections          int   `toml:"max_collections"`
	MaxObjectsPerCollection int   `toml:"max_objects_per_collection"`
	MaxInstances            int   `toml:"max_instances"`
	MaxAttendees            int   `toml:"max_attendees"`
	MaxRecipients           int   `toml:"max_recipients"`
	MaxRequestBody          int64 `toml:"max_request_body"`
	MaxXMLDepth             int   `toml:"max_xml_depth"`
	MaxXMLElements          int   `toml:"max_xml_elements"`
	MaxSyncChanges          int   `toml:"max_sync_changes"`
	MaxPrincipalSearch      int   `toml:"max_principal_search"`
	MaxMultigetHrefs        int   `toml:"max_multiget_hrefs"`
	// HeaderTimeout bounds the time a client takes to send a request's
	// line and headers (a slowloris client is dropped after it), and is
	// the grace before MinBodyRate applies to the body. Default 10s.
	HeaderTimeout Duration `toml:"header_timeout"`
	// MinBodyRate is the slowest average rate, in bytes per second, at
	// which a request body may arrive after HeaderTimeout's grace; a
	// slower body gets 408. Default 8192 (a 4 MiB body may take 8.5
	// minutes). [limits] read_timeout bounds any single stall.
	MinBodyRate int64 `toml:"min_body_rate"`
	// TrustedCalendarSenders are addresses whose iMIP messages arriving
	// at the MX are applied to calendars even when they are not the
	// ORGANIZER or ATTENDEE they speak for (a linked installation's
	// system sender; dav.Handler.ReceiveIMIP's trusted).
	TrustedCalendarSenders []string `toml:"trusted_calendar_senders"`
}

func (c DAVConfig) limits() dav.Limits {
	return dav.Limits{
		MaxResourceSize:         c.MaxResourceSize,
		MaxCollections:          c.MaxCollections,
		MaxObjectsPerCollection: c.MaxObjectsPerCollection,
		MaxInstances:            c.MaxInstances,
		MaxAttendees:            c.MaxAttendees,
		MaxRecipients:           c.MaxRecipients,
		MaxRequestBody:          c.MaxRequestBody,
		MaxXMLDepth:             c.MaxXMLDepth,
		MaxXMLElements:          c.MaxXMLElements,
		MaxSyncChanges:          c.MaxSyncChanges,
		MaxPrincipalSearch:      c.MaxPrincipalSearch,
		MaxMultigetHrefs:        c.MaxMultigetHrefs,
	}
}

// validate checks the [dav] values the decoder cannot (the address is
// checked with the other listeners).
func (c DAVConfig) validate() error {
	if c.MaxResourceSize < 0 || c.MaxCollections < 0 || c.MaxObjectsPerCollection < 0 ||
		c.MaxInstances < 0 || c.MaxAttendees < 0 || c.MaxRecipients < 0 || c.MaxRequestBody < 0 ||
		c.MaxXMLDepth < 0 || c.MaxXMLElements < 0 || c.MaxSyncChanges < 0 || c.MaxPrincipalSearch < 0 || c.MaxMultigetHrefs < 0 ||
		c.HeaderTimeout.Duration < 0 || c.MinBodyRate < 0 {
		return errors.New(`section "dav": limits must not be negative`)
	}
	for _, a := range c.TrustedCalendarSenders {
		if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "<> ") {
			return &keyError{"dav.trusted_calendar_senders", fmt.Errorf("%q is not a bare email address", a)}
		}
	}
	if c.InsecureHTTP && c.Listen == "" {
		return &keyError{"dav.insecure_http", errors.New("set without a dav.listen address")}
	}
	return nil
}

// listenDAV opens the DAV listener, if one is configured. Authentication
// goes through the directory (directory.ProtoDAV) and the limiter the
// IMAP and SMTP listeners share, so failures count across all of them.
func (ls *listeners) listenDAV(cfg Config, logger *slog.Logger, sh shared) error {
	if cfg.DAV.Listen == "" {
		return nil
	}
	log := logger.With("listener", "dav")
	opts := dav.Options{
		Store:       sh.st,
		Directory:   sh.auth,
		GAL:         sh.gal,
		AuthLimiter: sh.authLimiter,
		Prefix:      davPrefix,
		Logger:      log,
		Limits:      cfg.DAV.limits(),
		// Other sites' users get their free/busy from their site.
		RemoteFreeBusy: sh.remoteFreeBusy,
	}
	// Invitations to remote attendees leave as iMIP mail through the
	// outbound queue; without the queue they get SCHEDULE-STATUS 5.3.
	if sh.smtp.Queue != nil {
		opts.IMIP = &imipSender{hostname: cfg.Hostname, router: sh.smtp.Router, queue: sh.smtp.Queue, keys: sh.smtp.DKIMKeys, now: time.Now}
	}
	h, err := dav.NewHandler(opts)
	if err != nil {
		return fmt.Errorf("dav listener: %w", err)
	}
	if sh.mxDeliverer != nil {
		sh.mxDeliverer.handler.Store(h) // before any listener serves
	}
	ln, err := listenTCP(logger, "dav", cfg.DAV.Listen)
	if err != nil {
		return err
	}
	ln = proxyListener(ln, cfg.DAV.ProxyProtocol, cfg.Proxy, logger, "dav")
	timed, err := davLatency(sh.reg, h)
	if err != nil {
		return fmt.Errorf("dav listener: %w", err)
	}
	b := davBounds(cfg)
	srv := &http.Server{
		Handler:           b.handler(timed),
		ReadHeaderTimeout: b.header,
		IdleTimeout:       davIdleTimeout,
		MaxHeaderBytes:    davMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// The same per-address and total connection caps as the SMTP and
	// IMAP listeners ([limits]), counted for this listener alone.
	limited := &limits.Listener{Listener: ln, Limiter: limits.NewConnLimiter(cfg.Limits.MaxConnsPerIP, cfg.Limits.MaxConns)}
	ls.dav, ls.davLn = srv, limited
	if cfg.DAV.InsecureHTTP {
		log.Warn("DAV over plain HTTP (dav.insecure_http): passwords cross the network in the clear; only for a lab")
		limited.Refuse = func(c net.Conn, err error) { refuseDAV(log, c, err) }
		ls.davServe = srv.Serve
		return nil
	}
	// ServeTLS answers a plain HTTP request with 400 before reading it.
	srv.TLSConfig = sh.tlsConfig.Clone()
	refusal := srv.TLSConfig.Clone()
	refusal.NextProtos = nil // the refusal is HTTP/1.1
	limited.Refuse = func(c net.Conn, err error) { refuseDAV(log, tls.Server(c, refusal), err) }
	ls.davServe = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
	return nil
}

// Bounds of the DAV listener's connections beyond package dav's own
// (request body size, XML depth and elements, no DOCTYPE).
const (
	// Defaults of [dav] header_timeout and min_body_rate.
	davHeaderTimeout = 10 * time.Second
	davMinBodyRate   = 8192
	// davIdleTimeout closes a keep-alive connection without a request.
	davIdleTimeout = 2 * time.Minute
	// davMaxHeaderBytes bounds a request's line and headers (net/http
	// answers 431 beyond it); DAV clients send a few hundred bytes.
	davMaxHeaderBytes = 64 << 10
	// davRefuseTimeout bounds the refusal of a connection over a limit.
	davRefuseTimeout = 5 * time.Second
	// davRefuseDrain bounds how much of a refused request's body is read
	// (and dropped) after the 503.
	davRefuseDrain = 64 << 10
)

// refuseDAV answers a connection over the [limits] connection caps
// with 503 and Retry-After (RFC 9110 §15.6.4), and closes it. The
// request's line and headers are read first: an HTTP client takes an
// answer that comes before its request for a broken connection (Go's
// "unsolicited response on idle HTTP channel"), not for a 503 it can
// wait on and retry. Its body is not read beyond davRefuseDrain, which
// keeps the close from resetting the connection under a small answer
// before the client has read it. Over TLS the handshake comes first;
// all of it within davRefuseTimeout, and limits.Listener bounds how
// many refusals run at once.
func refuseDAV(log *slog.Logger, c net.Conn, err error) {
	defer c.Close()
	log.Warn("connection refused", "rule", "conn-limit", "client", limits.AddrOf(c.RemoteAddr()).String(), "reason", err.Error())
	_ = c.SetDeadline(time.Now().Add(davRefuseTimeout))
	br := bufio.NewReader(io.LimitReader(c, davMaxHeaderBytes))
	req, rerr := http.ReadRequest(br)
	if rerr != nil {
		return // no request (or not HTTP): nothing a client waits on
	}
	msg := "too many connections, try again later\n"
	if errors.Is(err, limits.ErrClientConnLimit) {
		msg = "too many connections from your address, try again later\n"
	}
	if _, werr := fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10\r\nConnection: close\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg); werr != nil {
		return
	}
	if !strings.EqualFold(req.Header.Get("Expect"), "100-continue") { // else the body is not coming
		_, _ = io.CopyN(io.Discard, req.Body, davRefuseDrain)
	}
}

// davLimits are the time bounds of one DAV request.
type davLimits struct {
	header time.Duration // request line and headers; grace of the body
	rate   int64         // slowest average body rate after the grace, bytes/s
	stall  time.Duration // longest wait for any one read of the body
	write  time.Duration // longest wait for any one write of the answer
}

func davBounds(cfg Config) davLimits {
	b := davLimits{header: cfg.DAV.HeaderTimeout.Duration, rate: cfg.DAV.MinBodyRate,
		stall: cfg.Limits.ReadTimeout.Duration, write: cfg.Limits.WriteTimeout.Duration}
	if b.header <= 0 {
		b.header = davHeaderTimeout
	}
	if b.rate <= 0 {
		b.rate = davMinBodyRate
	}
	if b.stall <= 0 {
		b.stall = 5 * time.Minute
	}
	if b.write <= 0 {
		b.write = 5 * time.Minute
	}
	return b
}

// handler wraps h with the request's read and write deadlines, set
// through http.ResponseController on the connection:
//
//   - the body must arrive by start + header + received/rate (the rule
//     of Apache's mod_reqtimeout: a body of any allowed size that keeps
//     up the rate is accepted, a trickle is not), and no read may wait
//     longer than stall; a body read past the deadline fails with a
//     timeout, which package dav answers with 408;
//   - each write of the answer may wait at most write for the client
//     to read (a client that stops reading is dropped), while time
//     spent computing the answer is not counted.
func (b davLimits) handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		start := time.Now()
		// Errors are ErrNotSupported only, for writers without a
		// connection (tests' recorders); the bounds then do not apply.
		_ = rc.SetWriteDeadline(time.Time{})
		if r.Body != nil && r.Body != http.NoBody {
			// Also bounds net/http's discarding of a body the handler
			// did not read.
			_ = rc.SetReadDeadline(start.Add(b.header))
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, b: b, start: start}
		}
		h.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: rc, timeout: b.write}, r)
		// net/http flushes what is buffered after the handler returns.
		_ = rc.SetWriteDeadline(time.Now().Add(b.write))
	})
}

// deadlineBody moves the connection's read deadline as the body
// arrives (see davLimits.handler).
type deadlineBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	b        davLimits
	start    time.Time
	received int64
}

func (d *deadlineBody) Read(p []byte) (int, error) {
	earned := d.start.Add(d.b.header + time.Duration(float64(d.received)/float64(d.b.rate)*float64(time.Second)))
	deadline := time.Now().Add(d.b.stall)
	if earned.Before(deadline) {
		deadline = earned
	}
	_ = d.rc.SetReadDeadline(deadline)
	n, err := d.ReadCloser.Read(p)
	d.received += int64(n)
	if err == io.EOF {
		// net/http now reads in the background to notice a client
		// hanging up, and cancels the request's context when that read
		// fails: a deadline left behind would cancel a long answer.
		_ = d.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// deadlineWriter bounds each write of the answer (see
// davLimits.handler).
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// davMethods are the method label values of
// mailyard_dav_request_duration_seconds; any other method counts as
// "other", so a client cannot create series at will.
var davMethods = []string{"OPTIONS", "PROPFIND", "PROPPATCH", "REPORT", "GET", "HEAD", "PUT", "DELETE", "MKCOL", "MKCALENDAR", "POST", "MOVE", "COPY", "other"}

// davLatency wraps h to observe each request's time to its response,
// by method, in mailyard_dav_request_duration_seconds.
func davLatency(reg prometheus.Registerer, h http.Handler) (http.Handler, error) {
	observe, err := promMetrics{prometheus.WrapRegistererWith(prometheus.Labels{"listener": "dav"}, reg)}.Histogram(
		"mailyard_dav_request_duration_seconds",
		"Time from a CalDAV/CardDAV request to the end of its response, by method ("+strings.Join(davMethods, ", ")+").",
		metric.LatencyBuckets, []string{"method"}, metric.OneLabel(davMethods...))
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		method := "other"
		if slices.Contains(davMethods, r.Method) {
			method = r.Method
		}
		observe(time.Since(start).Seconds(), method)
	}), nil
}

// davAccounts are the store accounts the directory keeps in step with
// its users and resources (builtin.Options.Accounts): deleting one also
// deletes what package dav keeps about it in the store's records (its
// sharing grants, grants to it, its collections' properties), which the
// store's DeleteAccount does not know. A retry after a failure (the
// directory's CompleteDeletions) does both again; each is idempotent.
type davAccounts struct {
	store.Accounts
	records store.Records
}

// DeleteAccount deletes the account, then its DAV records.
func (a davAccounts) DeleteAccount(ctx context.Context, id string) error {
	err := a.Accounts.DeleteAccount(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if rerr := dav.DeleteAccountRecords(ctx, a.records, id); rerr != nil {
		return fmt.Errorf("account %s deleted, but not its DAV records: %w", id, rerr)
	}
	return err
}
