package smtp

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one server's Prometheus collectors. They exist (and count)
// even when no Registerer is given, so the code never checks for nil.
type metrics struct {
	conns    *prometheus.CounterVec // by result: accepted, client_limit, limit
	open     prometheus.Gauge
	accepted prometheus.Counter
	rejected *prometheus.CounterVec // by reason
	bytes    prometheus.Counter
	rcpts    *prometheus.CounterVec // by decision
	auth     *prometheus.CounterVec // by result

	milterActions  *prometheus.CounterVec // by milter, verdict
	milterFailures *prometheus.CounterVec // by milter, default action applied
}

// Label values of the rejected-messages counter.
const (
	reasonSize     = "size"
	reasonLine     = "line_length"
	reasonQuota    = "quota"
	reasonStore    = "store_error"
	reasonSender   = "sender"
	reasonHeader   = "header"
	reasonAborted  = "aborted"
	reasonShutdown = "shutdown"
	reasonPolicy   = "policy" // DMARC reject, or a header the checks refused
	reasonMilter   = "milter" // a milter rejected or tempfailed the message
	// reasonDiscarded counts messages a milter discarded: answered 250
	// but not delivered.
	reasonDiscarded = "milter_discard"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "smtp", Name: "connections_total",
			Help: "Connections by result: accepted, or refused by the per-client (client_limit) or total (limit) connection limit.",
		}, []string{"result"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "mailyard", Subsystem: "smtp", Name: "connections_open",
			Help: "Connections currently open.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "smtp", Name: "messages_accepted_total",
			Help: "Messages stored and acknowledged with 250.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "smtp", Name: "messages_rejected_total",
			Help: "Messages refused after DATA/BDAT began, by reason.",
		}, []string{"reason"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "smtp", Name: "message_bytes_total",
			Help: "Bytes of accepted messages as received from clients.",
		}),
		rcpts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "smtp", Name: "recipients_total",
			Help: "RCPT commands by outcome: deliver, relay, reject, relay_denied, no_outbound, quota, milter, syntax, error.",
		}, []string{"outcome"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "smtp", Name: "auth_total",
			Help: "Authentication attempts by result: success, failure, blocked, error.",
		}, []string{"result"}),
		milterActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "smtp", Name: "milter_actions_total",
			Help: "Milter answers by milter and action: continue, accept, reject, tempfail, discard, quarantine.",
		}, []string{"milter", "action"}),
		milterFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "smtp", Name: "milter_failures_total",
			Help: "Milters down, timed out or breaking the protocol, by milter and the default action applied: tempfail, accept, reject.",
		}, []string{"milter", "action"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.conns, m.open, m.accepted, m.rejected, m.bytes, m.rcpts, m.auth, m.milterActions, m.milterFailures} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("smtp: metrics already registered (wrap the Registerer with distinct labels per server): %w", err)
			}
			return nil, fmt.Errorf("smtp: register metrics: %w", err)
		}
	}
	return m, nil
}
