package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/directory/authlimit/limitstore"
	"github.com/mailyard/mailyard/store"
)

// newAuthLimiter is the one limiter every listener shares, so that an
// attacker cannot multiply the attempts by switching between SMTP
// submission, IMAP and their TLS ports. Its decisions are exported on
// /metrics: checks by class, refusals by reason, and the stranger budget,
// so that "password checks caused by strangers" can be compared with the
// configured bound. On the PostgreSQL backend, which several nodes
// share, the limiter keeps its failures, blocks, trust and budgets in
// the store's records (limitstore), so that a brute force spread over
// the nodes is limited as one and a user trusted on one node is trusted
// on all; on SQLite (one process) it keeps them in memory.
func newAuthLimiter(cfg LimitsConfig, backend string, rs store.Records, reg prometheus.Registerer) *authlimit.Limiter {
	p := authlimit.Policy{
		StrangerChecks: cfg.AuthStrangerChecks,
		StrangerWindow: cfg.AuthStrangerWindow.Duration,
	}
	if backend == backendPostgres {
		p.Shared = limitstore.New(rs)
	}
	lim := authlimit.New(p)
	for _, c := range []authlimit.Class{authlimit.Trusted, authlimit.Fresh, authlimit.Stranger} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "auth", Name: "password_checks_total",
			Help:        "Password checks the auth limiter allowed, by class of client (see package authlimit).",
			ConstLabels: prometheus.Labels{"class": c.String()},
		}, func() float64 { return float64(lim.Stats().Checks[c]) }))
	}
	for _, r := range []authlimit.Reason{authlimit.ReasonClientBlocked, authlimit.ReasonPairBlocked,
		authlimit.ReasonTooSoon, authlimit.ReasonLoginThrottled} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "auth", Name: "refused_total",
			Help:        "Authentications the auth limiter refused without a password check, by reason.",
			ConstLabels: prometheus.Labels{"reason": r.String()},
		}, func() float64 { return float64(lim.Stats().Refused[r]) }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "mailyard", Subsystem: "auth", Name: "shared_errors_total",
		Help: "Calls to the auth limiter's shared state (PostgreSQL backend) that failed; the node then decided alone.",
	}, func() float64 { return float64(lim.Stats().SharedErrors) }))
	p = lim.Policy()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "mailyard", Subsystem: "auth", Name: "stranger_checks_limit",
		Help: "Password checks of one login that clients with failures may cause per window.",
	}, func() float64 { return float64(p.StrangerChecks) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "mailyard", Subsystem: "auth", Name: "stranger_window_seconds",
		Help: "The window of mailyard_auth_stranger_checks_limit.",
	}, func() float64 { return p.StrangerWindow.Seconds() }))
	return lim
}

// sweepAuthLimiter deletes the limiter's expired shared entries hourly
// until ctx ends (nothing without shared state).
func sweepAuthLimiter(ctx context.Context, lim *authlimit.Limiter, logger *slog.Logger) {
	if lim.Policy().Shared == nil {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := lim.SweepShared(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("auth limiter: sweeping expired shared entries failed", "err", err)
		} else if n > 0 {
			logger.Debug("auth limiter: expired shared entries deleted", "count", n)
		}
	}
}
