package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/dkim/dkimstore"
	"github.com/mailyard/mailyard/imap"
	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/smtp"
)

// shutdownTimeout bounds how long in-flight sessions may take to finish
// after SIGTERM.
const shutdownTimeout = 30 * time.Second

// serve runs every configured listener until ctx is done, then shuts down
// gracefully: listeners stop accepting, in-flight transactions finish, the
// store commits what is pending and closes.
func serve(ctx context.Context, cfg Config, logger *slog.Logger) error {
	reg := newRegistry()
	st, err := openStore(ctx, cfg, logger, promMetrics{reg}, openCreate)
	if err != nil {
		return err
	}
	defer st.Close()
	dir, auth, ldapSources, err := openDirectory(ctx, cfg, st, logger)
	if err != nil {
		return err
	}
	rules, err := cfg.Routing.routingRules() // validated with the config
	if err != nil {
		return err
	}
	geoSite, err := startGeo(ctx, cfg, st, dir, reg, logger)
	if err != nil {
		return err
	}
	defer geoSite.Close()
	table := routing.NewTable(dir, routing.TableOptions{Logger: logger, Rules: rules, Sites: geoSite.sites()})
	keys := newDKIMKeys(st, cfg, logger)
	queue, err := startQueue(ctx, cfg, st, table, logger, reg)
	if err != nil {
		return err
	}
	if queue != nil {
		defer queue.Close()
	}
	smtpOpts, err := smtpOptions(ctx, cfg, st, table, queue, keys, logger)
	if err != nil {
		return err
	}
	tlsConfig, err := loadTLS(cfg, logger)
	if err != nil {
		return err
	}
	authLimiter := newAuthLimiter(cfg.Limits, cfg.Store.Backend, st, reg)
	ls, err := listen(cfg, logger, shared{
		st: st, dir: dir, gal: geoSite.gal(dir), remoteFreeBusy: geoSite.remoteFreeBusy(), auth: auth, authLimiter: authLimiter,
		tlsConfig: tlsConfig, reg: reg, smtp: smtpOpts,
		mxDeliverer: &imipDeliverer{mailStore: st, dir: dir, trusted: cfg.trustedCalendarSenders(), logger: logger.With("listener", "smtp")},
	})
	if err != nil {
		return err
	}
	runErr := ls.run(ctx, cfg, logger, jobs{keys: keys, ldapSources: ldapSources, authLimiter: authLimiter})
	if queue != nil {
		queue.Close()
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	logger.Info("shutdown complete")
	return runErr
}

// openDirectory opens the directory over the store, finishes what a crash
// interrupted, and returns it with the authenticator and the LDAP sources
// its users are synced from.
func openDirectory(ctx context.Context, cfg Config, st mailStore, logger *slog.Logger) (*builtin.Directory, *directory.SourcedAuth, []ldapSource, error) {
	dir := builtin.New(st, builtin.Options{Accounts: davAccounts{st, st}, Logger: logger})
	if err := dir.EnsureGAL(ctx); err != nil {
		return nil, nil, nil, fmt.Errorf("directory: %w", err)
	}
	// A user or resource deletion that a crash interrupted left a store
	// account no directory entry reaches; finish it before serving.
	done, err := dir.CompleteDeletions(ctx)
	for _, p := range done {
		logger.Info("completed an interrupted deletion", "kind", p.Kind, "address", p.Address, "account", p.Account)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("directory: %w", err)
	}
	// Users synced from [[directory.ldap]] bind there; others use the
	// local password hash.
	ldapSources, err := newLDAPSources(cfg, dir, st, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	return dir, newAuthenticator(dir, ldapSources), ldapSources, nil
}

// newRegistry returns the Prometheus registry /metrics serves, with the Go
// runtime and process collectors and mailyard_build_info.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	return reg
}

// startQueue opens the outbound queue when it is enabled (nil when not)
// and recovers it: records read, orphan files removed, before any listener
// can enqueue.
func startQueue(ctx context.Context, cfg Config, st mailStore, router queue.Router, logger *slog.Logger, reg prometheus.Registerer) (*queue.Queue, error) {
	if !cfg.Queue.Enabled {
		return nil, nil
	}
	q, err := newQueue(cfg, st, router, logger, promMetrics{reg})
	if err != nil {
		return nil, err
	}
	if err := q.Start(ctx); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return q, nil
}

// smtpOptions returns the options every SMTP listener shares, but for TLS
// and authentication (see [listeners.listenSMTP]). It reclaims the
// quarantine and prepares the spool, both due before any listener accepts
// mail.
func smtpOptions(ctx context.Context, cfg Config, st mailStore, router smtp.Router, q *queue.Queue, keys *dkim.Keys, logger *slog.Logger) (smtp.Options, error) {
	var outbound smtp.Outbound
	if q != nil {
		outbound = q // not a nil *queue.Queue in an interface
	}
	quarantine, err := newQuarantine(cfg, st, outbound, logger)
	if err != nil {
		return smtp.Options{}, err
	}
	// Files of messages that were never acknowledged (a crash before
	// their record was committed) go before any listener accepts mail.
	if err := quarantine.Reclaim(ctx); err != nil {
		return smtp.Options{}, err
	}
	spoolDir, err := prepareSpool(cfg.DataDir)
	if err != nil {
		return smtp.Options{}, err
	}
	var resolver dkim.Resolver
	if cfg.AuthChecks.Enabled {
		resolver = &dkim.CachingResolver{Resolver: newResolver(cfg.DNS)}
	}
	onReject, _ := disposition(cfg.AuthChecks.DMARCReject) // validated with the config
	onQuarantine, _ := disposition(cfg.AuthChecks.DMARCQuarantine)
	var signer smtp.KeySource
	if cfg.DKIM.Sign {
		signer = keys
	}
	return smtp.Options{
		Hostname:        cfg.Hostname,
		Router:          router,
		Deliverer:       st,
		MaxMessageBytes: cfg.Limits.MaxMessageBytes,
		MaxRecipients:   cfg.Limits.MaxRecipients,
		MaxConnsPerIP:   cfg.Limits.MaxConnsPerIP,
		MaxConns:        cfg.Limits.MaxConns,
		ReadTimeout:     cfg.Limits.ReadTimeout.Duration,
		WriteTimeout:    cfg.Limits.WriteTimeout.Duration,
		VerifyResolver:  resolver,
		VerifyTimeout:   cfg.DNS.Timeout.Duration,
		DMARC:           dkim.ActionPolicy{OnReject: onReject, OnQuarantine: onQuarantine},
		DKIMKeys:        signer,
		SpoolDir:        spoolDir,
		Queue:           outbound,
		Quarantine:      quarantine,
	}, nil
}

// shared is what every listener is built on.
type shared struct {
	st  mailStore
	dir *builtin.Directory
	gal dav.GAL // the GAL of the DAV listener: dir's, with every site's under [geo]
	// remoteFreeBusy answers the DAV outbox's free/busy for other
	// sites' users; nil without [geo].
	remoteFreeBusy func(ctx context.Context, addresses []string, from, to time.Time) (map[string][]dav.BusyPeriod, error)
	auth           *directory.SourcedAuth
	authLimiter    *authlimit.Limiter
	tlsConfig      *tls.Config
	reg            *prometheus.Registry
	smtp           smtp.Options // the SMTP listeners' options, from smtpOptions
	// mxDeliverer is the MX's Deliverer: the store, then inbound iMIP
	// to the DAV handler (imip_inbound.go); nil keeps smtp.Deliverer.
	mxDeliverer *imipDeliverer
}

// listeners are the servers serve runs, each with its listening socket.
type listeners struct {
	smtp    []*smtp.Server
	smtpLns []net.Listener
	imap    []*imap.Server
	imapLns []net.Listener
	http    *http.Server // nil without an HTTP listener
	httpLn  net.Listener
	dav     *http.Server // nil without a DAV listener (dav.go)
	davLn   net.Listener
	// davServe serves dav on its listener: ServeTLS, or Serve for
	// dav.insecure_http.
	davServe func(net.Listener) error
}

// listen opens every configured listener: SMTP, IMAP, HTTP, then DAV. On
// an error it closes the listeners it opened.
func listen(cfg Config, logger *slog.Logger, sh shared) (*listeners, error) {
	ls := &listeners{}
	err := ls.listenSMTP(cfg, logger, sh)
	if err == nil {
		err = ls.listenIMAP(cfg, logger, sh)
	}
	if err == nil {
		err = ls.listenHTTP(cfg, logger, sh)
	}
	if err == nil {
		err = ls.listenDAV(cfg, logger, sh)
	}
	if err != nil {
		ls.closeAll()
		return nil, err
	}
	return ls, nil
}

// closeAll closes the sockets opened so far, for a start that failed.
func (ls *listeners) closeAll() {
	for _, l := range ls.smtpLns {
		l.Close()
	}
	for _, l := range ls.imapLns {
		l.Close()
	}
	if ls.httpLn != nil {
		ls.httpLn.Close()
	}
}

// listenSMTP opens the MX, submission and submissions listeners that are
// configured.
func (ls *listeners) listenSMTP(cfg Config, logger *slog.Logger, sh shared) error {
	type listener struct {
		name string
		cfg  ListenerConfig
		mode smtp.Mode
	}
	for _, l := range []listener{
		{"smtp", cfg.SMTP, smtp.ModeMX},
		{"submission", cfg.Submission, smtp.ModeSubmission},
		{"submissions", cfg.Submissions, smtp.ModeSubmissions},
	} {
		if l.cfg.Listen == "" {
			continue
		}
		o := sh.smtp
		o.Mode = l.mode
		o.TLSConfig = sh.tlsConfig
		o.Auth = sh.auth
		o.AuthLimiter = sh.authLimiter
		o.Logger = logger.With("listener", l.name)
		o.Metrics = listenerMetrics(sh.reg, l.name)
		o.Milters = miltersFor(cfg.Milters, l.name)
		if l.mode == smtp.ModeMX && sh.mxDeliverer != nil {
			o.Deliverer = sh.mxDeliverer
		}
		srv, err := smtp.New(o)
		if err != nil {
			return fmt.Errorf("%s listener: %w", l.name, err)
		}
		ln, err := listenTCP(logger, l.name, l.cfg.Listen)
		if err != nil {
			return err
		}
		// Below submissions' TLS, which smtp.Server adds per connection.
		ln = proxyListener(ln, l.cfg.ProxyProtocol, cfg.Proxy, logger, l.name)
		ls.smtp = append(ls.smtp, srv)
		ls.smtpLns = append(ls.smtpLns, ln)
	}
	return nil
}

// listenIMAP opens the IMAP and IMAPS listeners that are configured.
func (ls *listeners) listenIMAP(cfg Config, logger *slog.Logger, sh shared) error {
	type imapListener struct {
		name     string
		cfg      IMAPConfig
		implicit bool
	}
	for _, l := range []imapListener{{"imap", cfg.IMAP, false}, {"imaps", cfg.IMAPS, true}} {
		if l.cfg.Listen == "" {
			continue
		}
		srv, err := imap.New(imap.Options{
			Backend:           sh.st,
			Auth:              sh.auth,
			AuthLimiter:       sh.authLimiter,
			TLSConfig:         sh.tlsConfig,
			ImplicitTLS:       l.implicit,
			AllowInsecureAuth: l.cfg.AllowInsecureAuth,
			Logger:            logger.With("listener", l.name),
			AppendLimit:       min(cfg.Limits.MaxMessageBytes, 1<<32-1),
			MaxConnsPerIP:     cfg.Limits.MaxConnsPerIP,
			MaxConns:          cfg.Limits.MaxConns,
			Metrics:           listenerMetrics(sh.reg, l.name),
		})
		if err != nil {
			return fmt.Errorf("%s listener: %w", l.name, err)
		}
		ln, err := listenTCP(logger, l.name, l.cfg.Listen)
		if err != nil {
			return err
		}
		// Below imaps' TLS, which imap.Server puts over this listener.
		ln = proxyListener(ln, l.cfg.ProxyProtocol, cfg.Proxy, logger, l.name)
		ls.imap = append(ls.imap, srv)
		ls.imapLns = append(ls.imapLns, ln)
	}
	return nil
}

// listenHTTP opens the HTTP listener for /metrics and /healthz, if one is
// configured.
func (ls *listeners) listenHTTP(cfg Config, logger *slog.Logger, sh shared) error {
	if cfg.HTTP.Listen == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(sh.reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /healthz", healthHandler(sh.st))
	if cfg.HTTP.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	ln, err := listenTCP(logger, "http", cfg.HTTP.Listen)
	if err != nil {
		return err
	}
	ls.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ls.httpLn = ln
	return nil
}

// listenerMetrics is the registerer for one listener's metrics: reg, with
// the listener label on every metric.
func listenerMetrics(reg prometheus.Registerer, name string) promMetrics {
	return promMetrics{prometheus.WrapRegistererWith(prometheus.Labels{"listener": name}, reg)}
}

// listenTCP opens the socket of the listener name on addr.
func listenTCP(logger *slog.Logger, name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener: %w", name, err)
	}
	logger.Info("listening", "listener", name, "addr", ln.Addr().String())
	return ln, nil
}

// run serves on every listener and runs the background jobs until ctx is
// done or a listener fails, then shuts them all down. It returns the
// listener's failure, if that was what stopped it.
func (ls *listeners) run(ctx context.Context, cfg Config, logger *slog.Logger, j jobs) error {
	errc := make(chan error, len(ls.smtp)+len(ls.imap)+2)
	var wg sync.WaitGroup
	for i, srv := range ls.smtp {
		serveOn(&wg, errc, srv.Serve, ls.smtpLns[i], smtp.ErrServerClosed)
	}
	for i, srv := range ls.imap {
		serveOn(&wg, errc, srv.Serve, ls.imapLns[i], imap.ErrServerClosed)
	}
	if ls.http != nil {
		serveOn(&wg, errc, ls.http.Serve, ls.httpLn, http.ErrServerClosed)
	}
	if ls.dav != nil {
		serveOn(&wg, errc, ls.davServe, ls.davLn, http.ErrServerClosed)
	}
	jobsCtx, stopJobs := context.WithCancel(context.Background())
	startJobs(jobsCtx, &wg, j, logger)
	logger.Info("mailserver started", "hostname", cfg.Hostname, "data_dir", cfg.DataDir)

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case runErr = <-errc:
		logger.Error("listener failed; shutting down", "err", runErr)
	}
	ls.shutdown(logger)
	stopJobs()
	wg.Wait()
	return runErr
}

// serveOn runs serve(ln) on a goroutine of wg and reports its failure on
// errc, unless it is closed (the server shut down).
func serveOn(wg *sync.WaitGroup, errc chan<- error, serve func(net.Listener) error, ln net.Listener, closed error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := serve(ln); err != nil && !errors.Is(err, closed) {
			errc <- err
		}
	}()
}

// jobs is what the background jobs work on.
type jobs struct {
	keys        *dkim.Keys
	ldapSources []ldapSource
	authLimiter *authlimit.Limiter
}

// startJobs runs the background jobs, DKIM key retirement, directory
// sync and the auth limiter's sweep, on goroutines of wg until ctx ends.
func startJobs(ctx context.Context, wg *sync.WaitGroup, j jobs, logger *slog.Logger) {
	wg.Go(func() { retireKeys(ctx, j.keys, logger) })
	wg.Go(func() { runDirectorySync(ctx, j.ldapSources, logger) })
	wg.Go(func() { sweepAuthLimiter(ctx, j.authLimiter, logger) })
}

// shutdown stops every server, letting in-flight sessions finish within
// shutdownTimeout.
func (ls *listeners) shutdown(logger *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, srv := range ls.smtp {
		if err := srv.Shutdown(sctx); err != nil {
			logger.Warn("smtp shutdown", "err", err)
		}
	}
	for _, srv := range ls.imap {
		if err := srv.Shutdown(sctx); err != nil {
			logger.Warn("imap shutdown", "err", err)
		}
	}
	if ls.http != nil {
		_ = ls.http.Shutdown(sctx)
	}
	if ls.dav != nil {
		if err := ls.dav.Shutdown(sctx); err != nil {
			logger.Warn("dav shutdown", "err", err)
		}
	}
}

// loadTLS returns the configured certificate, or a self-signed one kept in
// the data directory (generated on first start; its fingerprint is logged).
func loadTLS(cfg Config, logger *slog.Logger) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	if cfg.TLS.CertFile != "" {
		cert, err = tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	} else {
		var fp string
		cert, fp, err = certs.LoadOrCreate(cfg.DataDir, []string{cfg.Hostname, "localhost"}, logger)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		logger.Info("using self-signed certificate", "sha256", fp)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// newDKIMKeys opens the DKIM key store kept in the store's records.
func newDKIMKeys(st mailStore, cfg Config, logger *slog.Logger) *dkim.Keys {
	return dkim.NewKeys(dkimstore.New(st), dkim.KeysOptions{Logger: logger, VerificationWindow: cfg.DKIM.VerificationWindow.Duration})
}

// prepareSpool creates the spool directory for messages being checked or
// signed and removes what a crash left there (never acknowledged mail:
// a message is in the store before its 250).
func prepareSpool(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "spool")
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	return dir, nil
}

// retireKeys removes DKIM keys whose verification window has passed, at
// start and then hourly, until ctx ends.
func retireKeys(ctx context.Context, keys *dkim.Keys, logger *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		retired, err := keys.RetireExpired(ctx)
		if err != nil && ctx.Err() == nil {
			logger.Warn("dkim: retiring expired keys failed", "err", err)
		}
		for _, k := range retired {
			logger.Info("dkim: key retired; remove its DNS record", "domain", k.Domain, "selector", k.Selector, "record", k.RecordName())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
