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
		{&m.conns, false, "mailyard_imap_connections_total",
			"Connections by result: accepted, or refused by the connection limits (limit).", []string{"result"}},
		{&m.open, true, "mailyard_imap_connections_open", "Connections currently open.", nil},
		{&m.auth, false, "mailyard_imap_auth_total",
			"Authentication attempts by result: success, failure, blocked, disabled, not_allowed, error.", []string{"result"}},
		{&m.appended, false, "mailyard_imap_messages_appended_total", "Messages stored by APPEND and acknowledged with OK.", nil},
	} {
		declare := mm.Counter
		if f.gauge {
			declare = mm.Gauge
		}
		add, err := declare(f.name, f.help, f.labels...)
		if err != nil {
			return nil, fmt.Errorf("imap: metrics: %w", err)
		}
		*f.to = add
	}
	return m, nil
}
