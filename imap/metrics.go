package imap

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one server's Prometheus collectors. They exist (and count)
// even when no Registerer is given, so the code never checks for nil.
type metrics struct {
	conns    *prometheus.CounterVec // by result: accepted, limit
	open     prometheus.Gauge
	auth     *prometheus.CounterVec // by result
	appended prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "imap", Name: "connections_total",
			Help: "Connections by result: accepted, or refused by the connection limits (limit).",
		}, []string{"result"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "mailyard", Subsystem: "imap", Name: "connections_open",
			Help: "Connections currently open.",
		}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "imap", Name: "auth_total",
			Help: "Authentication attempts by result: success, failure, blocked, disabled, not_allowed, error.",
		}, []string{"result"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "imap", Name: "messages_appended_total",
			Help: "Messages stored by APPEND and acknowledged with OK.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.conns, m.open, m.auth, m.appended} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("imap: metrics already registered (wrap the Registerer with distinct labels per server): %w", err)
			}
			return nil, fmt.Errorf("imap: register metrics: %w", err)
		}
	}
	return m, nil
}
