package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/internal/metric"
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
	MaxRequestBody          int64 `toml:"max_request_body"`
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
		MaxRequestBody:          c.MaxRequestBody,
	}
}

// validate checks the [dav] values the decoder cannot (the address is
// checked with the other listeners).
func (c DAVConfig) validate() error {
	if c.MaxResourceSize < 0 || c.MaxCollections < 0 || c.MaxObjectsPerCollection < 0 ||
		c.MaxInstances < 0 || c.MaxAttendees < 0 || c.MaxRequestBody < 0 {
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
	srv := &http.Server{
		Handler:           timed,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ls.dav, ls.davLn = srv, ln
	if cfg.DAV.InsecureHTTP {
		log.Warn("DAV over plain HTTP (dav.insecure_http): passwords cross the network in the clear; only for a lab")
		ls.davServe = srv.Serve
		return nil
	}
	// ServeTLS answers a plain HTTP request with 400 before reading it.
	srv.TLSConfig = sh.tlsConfig.Clone()
	ls.davServe = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
	return nil
}

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
