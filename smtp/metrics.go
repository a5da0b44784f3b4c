package smtp

import (
	"fmt"

	"github.com/mailyard/mailyard/internal/metric"
)

// Metrics receives the measurements of a [Server] ([Options].Metrics) or
// a [Queue] ([QueueOptions].Metrics); nil records nothing. The package
// imports no metrics library: an embedder implements Metrics over the one
// it uses, and the reference server does so over Prometheus'
// client_golang (examples/mailserver/metrics.go, about a hundred lines to
// copy). Several servers reporting to one registry tell themselves apart
// by labels the implementation adds (the reference server adds
// listener="smtp", listener="submission", ...).
//
// New and NewQueue call these methods once per family, with the family's
// full name (mailyard_smtp_connections_total, ...), its help text and
// its label names; an error fails the constructor. The functions returned
// are then called concurrently for as long as the server or queue runs,
// with one value per label name. The methods hand out plain function
// types so that one implementation also serves imap.Metrics.
type Metrics interface {
	// Counter declares a counter family; the function returned adds
	// delta (never negative) to one series.
	Counter(name, help string, labels ...string) (add func(delta float64, labelValues ...string), err error)
	// Gauge declares a gauge family; the function returned adds delta
	// (either sign) to one series.
	Gauge(name, help string, labels ...string) (add func(delta float64, labelValues ...string), err error)
	// GaugeFunc declares a gauge family computed when the metrics are
	// read: collect calls emit once per series, with the series' value
	// and label values. The queue reports its state this way, so that no
	// count can drift from the scheduler's view.
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
	if mm == nil {
		mm = metric.Discard{}
	}
	m := &metrics{}
	for _, f := range []struct {
		to         *metric.Family
		gauge      bool
		name, help string
		labels     []string
	}{
		{&m.conns, false, "mailyard_smtp_connections_total",
			"Connections by result: accepted, or refused by the per-client (client_limit) or total (limit) connection limit.", []string{"result"}},
		{&m.open, true, "mailyard_smtp_connections_open", "Connections currently open.", nil},
		{&m.accepted, false, "mailyard_smtp_messages_accepted_total", "Messages stored and acknowledged with 250.", nil},
		{&m.rejected, false, "mailyard_smtp_messages_rejected_total", "Messages refused after DATA/BDAT began, by reason.", []string{"reason"}},
		{&m.bytes, false, "mailyard_smtp_message_bytes_total", "Bytes of accepted messages as received from clients.", nil},
		{&m.rcpts, false, "mailyard_smtp_recipients_total",
			"RCPT commands by outcome: deliver, relay, reject, relay_denied, no_outbound, quota, milter, syntax, error.", []string{"outcome"}},
		{&m.auth, false, "mailyard_smtp_auth_total", "Authentication attempts by result: success, failure, blocked, error.", []string{"result"}},
		{&m.milterActions, false, "mailyard_smtp_milter_actions_total",
			"Milter answers by milter and action: continue, accept, reject, tempfail, discard, quarantine.", []string{"milter", "action"}},
		{&m.milterFailures, false, "mailyard_smtp_milter_failures_total",
			"Milters down, timed out or breaking the protocol, by milter and the default action applied: tempfail, accept, reject.", []string{"milter", "action"}},
	} {
		declare := mm.Counter
		if f.gauge {
			declare = mm.Gauge
		}
		add, err := declare(f.name, f.help, f.labels...)
		if err != nil {
			return nil, fmt.Errorf("smtp: metrics: %w", err)
		}
		*f.to = add
	}
	return m, nil
}
