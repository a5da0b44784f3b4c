package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailyard/mailyard/directory/authlimit"
)

// newAuthLimiter is the one limiter every listener shares, so that an
// attacker cannot multiply the attempts by switching between SMTP
// submission, IMAP and their TLS ports. Its decisions are exported on
// /metrics: checks by class, refusals by reason, and the stranger budget,
// so that "password checks caused by strangers" can be compared with the
// configured bound.
func newAuthLimiter(cfg LimitsConfig, reg prometheus.Registerer) *authlimit.Limiter {
	lim := authlimit.New(authlimit.Policy{
		StrangerChecks: cfg.AuthStrangerChecks,
		StrangerWindow: cfg.AuthStrangerWindow.Duration,
	})
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
	p := lim.Policy()
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
