package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/dkim/dkimstore"
	"github.com/mailyard/mailyard/imap"
	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/smtp"
	"github.com/mailyard/mailyard/store/sqlite"
)

// shutdownTimeout bounds how long in-flight sessions may take to finish
// after SIGTERM.
const shutdownTimeout = 30 * time.Second

// serve runs every configured listener until ctx is done, then shuts down
// gracefully: listeners stop accepting, in-flight transactions finish, the
// store commits what is pending and closes.
func serve(ctx context.Context, cfg Config, logger *slog.Logger) error {
	st, err := sqlite.Open(ctx, cfg.DataDir, sqlite.Options{Logger: logger})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	dir := directory.NewBuiltin(st, directory.BuiltinOptions{Accounts: st, Logger: logger})
	if err := dir.EnsureGAL(ctx); err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	// A user or resource deletion that a crash interrupted left a store
	// account no directory entry reaches; finish it before serving.
	done, err := dir.CompleteDeletions(ctx)
	for _, p := range done {
		logger.Info("completed an interrupted deletion", "kind", p.Kind, "address", p.Address, "account", p.Account)
	}
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	// Users synced from [[directory.ldap]] bind there; others use the
	// local password hash.
	ldapSources, err := newLDAPSources(cfg, dir, st, logger)
	if err != nil {
		return err
	}
	auth := newAuthenticator(dir, ldapSources)
	rules, err := cfg.Routing.routingRules() // validated with the config
	if err != nil {
		return err
	}
	table := routing.NewTable(dir, routing.TableOptions{Logger: logger, Rules: rules})
	keys := newDKIMKeys(st, cfg, logger)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var queue *smtp.Queue
	if cfg.Queue.Enabled {
		if queue, err = newQueue(cfg, st, table, logger, promMetrics{reg}); err != nil {
			return err
		}
		// Recovery (records read, orphan files removed) before any
		// listener can enqueue.
		if err := queue.Start(ctx); err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		defer queue.Close()
	}
	quarantine, err := newQuarantine(cfg, st, queue, logger)
	if err != nil {
		return err
	}
	// Files of messages that were never acknowledged (a crash before
	// their record was committed) go before any listener accepts mail.
	if err := quarantine.Reclaim(ctx); err != nil {
		return err
	}
	spoolDir, err := prepareSpool(cfg.DataDir)
	if err != nil {
		return err
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

	tlsConfig, err := loadTLS(cfg, logger)
	if err != nil {
		return err
	}

	authLimiter := newAuthLimiter(cfg.Limits, reg)

	type listener struct {
		name string
		addr string
		mode smtp.Mode
	}
	var servers []*smtp.Server
	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	for _, l := range []listener{
		{"smtp", cfg.SMTP.Listen, smtp.ModeMX},
		{"submission", cfg.Submission.Listen, smtp.ModeSubmission},
		{"submissions", cfg.Submissions.Listen, smtp.ModeSubmissions},
	} {
		if l.addr == "" {
			continue
		}
		srv, err := smtp.New(smtp.Options{
			Hostname:        cfg.Hostname,
			Mode:            l.mode,
			TLSConfig:       tlsConfig,
			Router:          table,
			Deliverer:       st,
			Auth:            auth,
			Logger:          logger.With("listener", l.name),
			MaxMessageBytes: cfg.Limits.MaxMessageBytes,
			MaxRecipients:   cfg.Limits.MaxRecipients,
			MaxConnsPerIP:   cfg.Limits.MaxConnsPerIP,
			MaxConns:        cfg.Limits.MaxConns,
			AuthLimiter:     authLimiter,
			ReadTimeout:     cfg.Limits.ReadTimeout.Duration,
			WriteTimeout:    cfg.Limits.WriteTimeout.Duration,
			Metrics:         promMetrics{prometheus.WrapRegistererWith(prometheus.Labels{"listener": l.name}, reg)},
			VerifyResolver:  resolver,
			DMARC:           dkim.ActionPolicy{OnReject: onReject, OnQuarantine: onQuarantine},
			DKIMKeys:        signer,
			SpoolDir:        spoolDir,
			Queue:           queue,
			Milters:         miltersFor(cfg.Milters, l.name),
			Quarantine:      quarantine,
		})
		if err != nil {
			closeAll()
			return fmt.Errorf("%s listener: %w", l.name, err)
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s listener: %w", l.name, err)
		}
		servers = append(servers, srv)
		listeners = append(listeners, ln)
		logger.Info("listening", "listener", l.name, "addr", ln.Addr().String())
	}

	type imapListener struct {
		name     string
		cfg      IMAPConfig
		implicit bool
	}
	var imapServers []*imap.Server
	var imapListeners []net.Listener
	closeAll = func() {
		for _, l := range append(listeners, imapListeners...) {
			l.Close()
		}
	}
	for _, l := range []imapListener{{"imap", cfg.IMAP, false}, {"imaps", cfg.IMAPS, true}} {
		if l.cfg.Listen == "" {
			continue
		}
		srv, err := imap.New(imap.Options{
			Backend:           st,
			Auth:              auth,
			AuthLimiter:       authLimiter,
			TLSConfig:         tlsConfig,
			ImplicitTLS:       l.implicit,
			AllowInsecureAuth: l.cfg.AllowInsecureAuth,
			Logger:            logger.With("listener", l.name),
			AppendLimit:       min(cfg.Limits.MaxMessageBytes, 1<<32-1),
			MaxConnsPerIP:     cfg.Limits.MaxConnsPerIP,
			MaxConns:          cfg.Limits.MaxConns,
			Metrics:           promMetrics{prometheus.WrapRegistererWith(prometheus.Labels{"listener": l.name}, reg)},
		})
		if err != nil {
			closeAll()
			return fmt.Errorf("%s listener: %w", l.name, err)
		}
		ln, err := net.Listen("tcp", l.cfg.Listen)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s listener: %w", l.name, err)
		}
		imapServers = append(imapServers, srv)
		imapListeners = append(imapListeners, ln)
		logger.Info("listening", "listener", l.name, "addr", ln.Addr().String())
	}

	var httpSrv *http.Server
	var httpLn net.Listener
	if cfg.HTTP.Listen != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			if _, err := st.ListAccounts(r.Context(), "", 1); err != nil {
				http.Error(w, "store unavailable", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		httpLn, err = net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			closeAll()
			return fmt.Errorf("http listener: %w", err)
		}
		logger.Info("listening", "listener", "http", "addr", httpLn.Addr().String())
	}

	errc := make(chan error, len(servers)+len(imapServers)+1)
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Add(1)
		go func(srv *smtp.Server, ln net.Listener) {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				errc <- err
			}
		}(srv, listeners[i])
	}
	for i, srv := range imapServers {
		wg.Add(1)
		go func(srv *imap.Server, ln net.Listener) {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, imap.ErrServerClosed) {
				errc <- err
			}
		}(srv, imapListeners[i])
	}
	if httpSrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	jobsCtx, stopJobs := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		retireKeys(jobsCtx, keys, logger)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		runDirectorySync(jobsCtx, ldapSources, logger)
	}()
	logger.Info("mailserver started", "hostname", cfg.Hostname, "data_dir", cfg.DataDir)

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case runErr = <-errc:
		logger.Error("listener failed; shutting down", "err", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			logger.Warn("smtp shutdown", "err", err)
		}
	}
	for _, srv := range imapServers {
		if err := srv.Shutdown(sctx); err != nil {
			logger.Warn("imap shutdown", "err", err)
		}
	}
	if httpSrv != nil {
		_ = httpSrv.Shutdown(sctx)
	}
	stopJobs()
	wg.Wait()
	if queue != nil {
		queue.Close()
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	logger.Info("shutdown complete")
	return runErr
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
func newDKIMKeys(st *sqlite.Store, cfg Config, logger *slog.Logger) *dkim.Keys {
	return dkim.NewKeys(dkimstore.New(st), dkim.KeysOptions{Logger: logger, VerificationWindow: cfg.DKIM.VerificationWindow.Duration})
}

// newResolver returns the DNS resolver for DKIM, SPF and DMARC: the
// configured server (always over the pure-Go resolver, so that nothing
// else is asked), or the system's; either way each lookup is bounded by
// dns.timeout (net.Resolver's own retries follow resolv.conf, seconds per
// attempt, whatever the dial timeout).
func newResolver(c DNSConfig) dkim.Resolver {
	timeout := c.Timeout.Duration
	r := &net.Resolver{}
	if c.Server != "" {
		r = &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				d := net.Dialer{Timeout: timeout}
				return d.DialContext(ctx, network, c.Server)
			},
		}
	}
	return timeoutResolver{r: r, timeout: timeout}
}

// timeoutResolver bounds each lookup by its own timeout.
type timeoutResolver struct {
	r       *net.Resolver
	timeout time.Duration
}

func (t timeoutResolver) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if t.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, t.timeout)
}

func (t timeoutResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.r.LookupTXT(ctx, name)
}

func (t timeoutResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.r.LookupMX(ctx, name)
}

func (t timeoutResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.r.LookupIPAddr(ctx, host)
}

func (t timeoutResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.r.LookupAddr(ctx, addr)
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
