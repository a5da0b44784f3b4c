package imap

import (
	"fmt"

	"github.com/mailyard/mailyard/internal/metric"
)

// Metrics receives a [Server]'s measurements ([Options].Metrics); nil
// records nothing. The package imports no metrics library: an embedder
// implements Metrics over the one it uses, and the reference server does
// so over Prometheus' client_golang (examples/mailserver/metrics.go).
// Several servers reporting to one registry tell themselves apart by
// labels the implementation adds (the reference server adds
// listener="imap" or listener="imaps").
//
// New calls these methods once per family, with the family's full name
// (mailyard_imap_connections_total, ...), its help text and its label
// names; an error fails New. The functions returned are then called
// concurrently for as long as the server runs, with one value per label
// name. The methods hand out plain function types so that one
// implementation also serves smtp.Metrics.
type Metrics interface {
	// Counter declares a counter family; the function returned adds
	// delta (never negative) to one series.
	Counter(name, help string, labels ...string) (add func(delta float64, labelValues ...string), err error)
	// Gauge declares a gauge family; the function returned adds delta
	// (either sign) to one series.
	Gauge(name, help string, labels ...string) (add func(delta float64, labelValues ...string), err error)
}

// metrics are one server's metric families. They exist (and count, into
// metric.Discard) even when no Metrics is given, so the code never checks
// for nil.
type metrics struct {
	conns    metric.Family // by result: accepted, limit
	open     metric.Family // gauge
	auth     metric.Family // by result
	appended metric.Family
}

func newMetrics(mm Metrics) (*metrics, error) {
	m := &metrics{}
	if err := metric.Declare(mm,
		metric.Decl{To: &m.conns, Name: "mailyard_imap_connections_total",
			Help:   "Connections by result: accepted, or refused by the connection limits (limit).",
			Labels: []string{"result"}},
		metric.Decl{To: &m.open, Name: "mailyard_imap_connections_open",
			Help: "Connections currently open.", Gauge: true},
		metric.Decl{To: &m.auth, Name: "mailyard_imap_auth_total",
			Help:   "Authentication attempts by result: success, failure, blocked, disabled, not_allowed, error.",
			Labels: []string{"result"}},
		metric.Decl{To: &m.appended, Name: "mailyard_imap_messages_appended_total",
			Help: "Messages stored by APPEND and acknowledged with OK."},
	); err != nil {
		return nil, fmt.Errorf("imap: metrics: %w", err)
	}
	return m, nil
}
