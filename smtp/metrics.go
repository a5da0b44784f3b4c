package smtp

import (
	"fmt"
	"time"

	"github.com/mailyard/mailyard/dkim"
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

	commands   metric.Family // histogram by command: auth, mail, rcpt, data
	authChecks metric.Family // by method (dkim, spf, dmarc) and result
}

// smtpCommands are the command label values of
// mailyard_smtp_command_duration_seconds.
var smtpCommands = []string{"auth", "mail", "rcpt", "data"}

// authCheckResults are the RFC 8601 §2.7 result values of
// mailyard_smtp_auth_checks_total, each present from the start.
var authCheckResults = []string{"none", "pass", "fail", "softfail", "neutral", "policy", "temperror", "permerror"}

// observe records the time since start of an SMTP command.
func (m *metrics) observe(command string, start time.Time) {
	m.commands.WithLabelValues(command).Observe(time.Since(start).Seconds())
}

// authCheckSeries are every method and result pair.
func authCheckSeries() [][]string {
	var out [][]string
	for _, method := range []string{"dkim", "spf", "dmarc"} {
		for _, r := range authCheckResults {
			out = append(out, []string{method, r})
		}
	}
	return out
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
			Labels: []string{"result"}, Series: metric.OneLabel("accepted", "client_limit", "limit")},
		metric.Decl{To: &m.open, Name: "mailyard_smtp_connections_open",
			Help: "Connections currently open.", Gauge: true},
		metric.Decl{To: &m.accepted, Name: "mailyard_smtp_messages_accepted_total",
			Help: "Messages stored and acknowledged with 250."},
		metric.Decl{To: &m.rejected, Name: "mailyard_smtp_messages_rejected_total",
			Help:   "Messages refused after DATA/BDAT began, by reason.",
			Labels: []string{"reason"}, Series: metric.OneLabel(reasonSize, reasonLine, reasonQuota, reasonStore, reasonSender,
				reasonHeader, reasonAborted, reasonShutdown, reasonPolicy, reasonMilter, reasonDiscarded)},
		metric.Decl{To: &m.bytes, Name: "mailyard_smtp_message_bytes_total",
			Help: "Bytes of accepted messages as received from clients."},
		metric.Decl{To: &m.rcpts, Name: "mailyard_smtp_recipients_total",
			Help:   "RCPT commands by outcome: deliver, relay, reject, relay_denied, no_outbound, quota, milter, syntax, error.",
			Labels: []string{"outcome"}, Series: metric.OneLabel("deliver", "relay", "reject", "relay_denied", "no_outbound", "quota", "milter", "syntax", "error")},
		metric.Decl{To: &m.auth, Name: "mailyard_smtp_auth_total",
			Help:   "Authentication attempts by result: success, failure, blocked, error.",
			Labels: []string{"result"}, Series: metric.OneLabel("success", "failure", "blocked", "error")},
		metric.Decl{To: &m.milterActions, Name: "mailyard_smtp_milter_actions_total",
			Help:   "Milter answers by milter and action: continue, accept, reject, tempfail, discard, quarantine.",
			Labels: []string{"milter", "action"}},
		metric.Decl{To: &m.milterFailures, Name: "mailyard_smtp_milter_failures_total",
			Help:   "Milters down, timed out or breaking the protocol, by milter and the default action applied: tempfail, accept, reject.",
			Labels: []string{"milter", "action"}},
		metric.Decl{To: &m.commands, Name: "mailyard_smtp_command_duration_seconds",
			Help:    "Time the server took to answer a command, by command: auth (the password check), mail, rcpt (the routing decision), data (DATA or BDAT: from the command to the final reply; the upload, checks, milters and the durable store included).",
			Labels:  []string{"command"},
			Buckets: metric.LatencyBuckets, Series: metric.OneLabel(smtpCommands...)},
		metric.Decl{To: &m.authChecks, Name: "mailyard_smtp_auth_checks_total",
			Help:   "Verification results of inbound mail on the MX, by method (dkim, spf, dmarc) and result (RFC 8601 §2.7); one DKIM result per signature, none when unsigned.",
			Labels: []string{"method", "result"}, Series: authCheckSeries()},
	); err != nil {
		return nil, fmt.Errorf("smtp: metrics: %w", err)
	}
	return m, nil
}

// countAuthChecks counts one message's verification results.
func (m *metrics) countAuthChecks(res *dkim.Result) {
	if len(res.DKIM) == 0 {
		m.authChecks.WithLabelValues("dkim", string(dkim.StatusNone)).Inc()
	}
	for _, d := range res.DKIM {
		m.authChecks.WithLabelValues("dkim", statusLabel(d.Status)).Inc()
	}
	m.authChecks.WithLabelValues("spf", statusLabel(res.SPF.Status)).Inc()
	m.authChecks.WithLabelValues("dmarc", statusLabel(res.DMARC.Status)).Inc()
}

// statusLabel is a result's label value: "none" for no result.
func statusLabel(s dkim.Status) string {
	if s == "" {
		return string(dkim.StatusNone)
	}
	return string(s)
}
