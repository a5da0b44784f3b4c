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
			Help: "RCPT commands by outcome: deliver, reject, relay_denied, no_outbound, syntax, error.",
		}, []string{"outcome"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "smtp", Name: "auth_total",
			Help: "Authentication attempts by result: success, failure, blocked, error.",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.conns, m.open, m.accepted, m.rejected, m.bytes, m.rcpts, m.auth} {
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
