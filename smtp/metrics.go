package smtp

import (
	"fmt"

	"github.com/mailyard/mailyard/internal/metric"
)

// Metrics receives the measurements of a [Server] ([Options].Metrics);
// nil records nothing. The package
// imports no metrics library: an embedder implements Metrics over the one
// it uses, and the reference server does so over Prometheus'
// client_golang (examples/mailserver/metrics.go, some seventy lines to
// copy). Several servers reporting to one registry tell themselves apart
// by labels the implementation adds (the reference server adds
// listener="smtp", listener="submission", ...).
//
// New calls these methods once per family, with the family's
// full name (mailyard_smtp_connections_total, ...), its help text and
// its label names; an error fails the constructor. The functions returned
// are then called concurrently for as long as the server runs,
// with one value per label name. The methods hand out plain function
// types so that one implementation also serves imap.Metrics and
// queue.Metrics.
type Metrics interface {
	// Counter declares a counter family; the function returned adds
	// delta (never negative) to one series.
	Counter(name, help string, labels ...string) (add func(delta float64, labelValues ...string), err error)
	// Gauge declares a gauge family; the function returned adds delta
	// (either sign) to one series.
	Gauge(name, help string, labels ...string) (add func(delta float64, labelValues ...string), err error)
	// GaugeFunc declares a gauge family computed when the metrics are
	// read: collect calls emit once per series, with the series' value
	// and label values.
	GaugeFunc(name, help string, labels []string, collect func(emit func(value float64, labelValues ...string))) error
}

// metrics are one server's metric families. They exist (and count, into
// metric.Discard) even when no Metrics is given, so the code never checks
// for nil.
type metrics struct {
	conns    metric.Family // by result: accepted, client_limit, limit
	open     metric.Family // gauge
	accepted metric.Family
	rejected metric.Family // by reason
	bytes    metric.Family
	rcpts    metric.Family // by decision
	auth     metric.Family // by result

	milterActions  metric.Family // by milter, verdict
	milterFailures metric.Family // by milter, default action applied
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

func newMetrics(mm Metrics) (*metrics, error) {
	m := &metrics{}
	if err := metric.Declare(mm,
		metric.Decl{To: &m.conns, Name: "mailyard_smtp_connections_total",
			Help:   "Connections by result: accepted, or refused by the per-client (client_limit) or total (limit) connection limit.",
			Labels: []string{"result"}},
		metric.Decl{To: &m.open, Name: "mailyard_smtp_connections_open",
			Help: "Connections currently open.", Gauge: true},
		metric.Decl{To: &m.accepted, Name: "mailyard_smtp_messages_accepted_total",
			Help: "Messages stored and acknowledged with 250."},
		metric.Decl{To: &m.rejected, Name: "mailyard_smtp_messages_rejected_total",
			Help:   "Messages refused after DATA/BDAT began, by reason.",
			Labels: []string{"reason"}},
		metric.Decl{To: &m.bytes, Name: "mailyard_smtp_message_bytes_total",
			Help: "Bytes of accepted messages as received from clients."},
		metric.Decl{To: &m.rcpts, Name: "mailyard_smtp_recipients_total",
			Help:   "RCPT commands by outcome: deliver, relay, reject, relay_denied, no_outbound, quota, milter, syntax, error.",
			Labels: []string{"outcome"}},
		metric.Decl{To: &m.auth, Name: "mailyard_smtp_auth_total",
			Help:   "Authentication attempts by result: success, failure, blocked, error.",
			Labels: []string{"result"}},
		metric.Decl{To: &m.milterActions, Name: "mailyard_smtp_milter_actions_total",
			Help:   "Milter answers by milter and action: continue, accept, reject, tempfail, discard, quarantine.",
			Labels: []string{"milter", "action"}},
		metric.Decl{To: &m.milterFailures, Name: "mailyard_smtp_milter_failures_total",
			Help:   "Milters down, timed out or breaking the protocol, by milter and the default action applied: tempfail, accept, reject.",
			Labels: []string{"milter", "action"}},
	); err != nil {
		return nil, fmt.Errorf("smtp: metrics: %w", err)
	}
	return m, nil
}
