package queue

import (
	"fmt"

	"github.com/mailyard/mailyard/internal/metric"
)

// queueMetrics are the outbound queue's metric families. Like the
// server's, they exist (and count) without a Metrics.
type queueMetrics struct {
	// deliveries counts recipient outcomes by result: delivered,
	// deferred, bounced (permanent failure), expired.
	deliveries metric.Family
	// dsns counts DSN messages sent, by action: failed, delayed.
	dsns metric.Family
}

// Results of the deliveries counter.
const (
	resultDelivered = "delivered"
	resultDeferred  = "deferred"
	resultBounced   = "bounced"
	resultExpired   = "expired"
)

func newQueueMetrics(q *Queue, mm Metrics) (*queueMetrics, error) {
	if mm == nil {
		mm = metric.Discard{}
	}
	m := &queueMetrics{}
	if err := metric.Declare(mm,
		metric.Decl{To: &m.deliveries, Name: "mailyard_queue_deliveries_total",
			Help:   "Delivery attempts per recipient by result: delivered, deferred (temporary failure, retried), bounced (permanent failure), expired (retried until the expiry).",
			Labels: []string{"result"}},
		metric.Decl{To: &m.dsns, Name: "mailyard_queue_dsns_total",
			Help:   "DSNs (RFC 3464) sent to senders, by action: failed, delayed.",
			Labels: []string{"action"}},
	); err != nil {
		return nil, fmt.Errorf("queue: metrics: %w", err)
	}
	for _, r := range []string{resultDelivered, resultDeferred, resultBounced, resultExpired} {
		m.deliveries.WithLabelValues(r).Add(0) // every result shows, at zero
	}
	// The gauges are read from the scheduler's view when the metrics are
	// collected, so that no count can drift from it.
	for _, g := range []struct {
		name, help string
		labels     []string
		collect    func(s queueState, emit func(float64, ...string))
	}{
		{"mailyard_queue_recipients",
			"Queued recipients by state: ready (due now or being delivered), deferred (waiting for a retry), held (by an administrator).",
			[]string{"state"}, func(s queueState, emit func(float64, ...string)) {
				emit(float64(s.ready), "ready")
				emit(float64(s.deferred), "deferred")
				emit(float64(s.held), "held")
			}},
		{"mailyard_queue_oldest_message_age_seconds", "Age of the oldest queued message (0 when the queue is empty).",
			nil, func(s queueState, emit func(float64, ...string)) { emit(s.oldest.Seconds()) }},
		{"mailyard_queue_destination_connections",
			"Delivery workers (each with at most one connection) per destination: the next hop, or MX:domain for MX delivery.",
			[]string{"destination"}, func(s queueState, emit func(float64, ...string)) {
				for dest, n := range s.conns {
					emit(float64(n), dest)
				}
			}},
	} {
		collect := g.collect
		if err := mm.GaugeFunc(g.name, g.help, g.labels, func(emit func(float64, ...string)) { collect(q.snapshot(), emit) }); err != nil {
			return nil, fmt.Errorf("queue: metrics: %w", err)
		}
	}
	return m, nil
}
