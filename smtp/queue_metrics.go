package smtp

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// queueMetrics are the outbound queue's Prometheus collectors. Like the
// server's, they exist (and count) without a Registerer.
type queueMetrics struct {
	// deliveries counts recipient outcomes by result: delivered,
	// deferred, bounced (permanent failure), expired.
	deliveries *prometheus.CounterVec
	// dsns counts DSN messages sent, by action: failed, delayed.
	dsns *prometheus.CounterVec
}

// Results of the deliveries counter.
const (
	resultDelivered = "delivered"
	resultDeferred  = "deferred"
	resultBounced   = "bounced"
	resultExpired   = "expired"
)

func newQueueMetrics(q *Queue, reg prometheus.Registerer) (*queueMetrics, error) {
	m := &queueMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "queue", Name: "deliveries_total",
			Help: "Delivery attempts per recipient by result: delivered, deferred (temporary failure, retried), bounced (permanent failure), expired (retried until the expiry).",
		}, []string{"result"}),
		dsns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailyard", Subsystem: "queue", Name: "dsns_total",
			Help: "DSNs (RFC 3464) sent to senders, by action: failed, delayed.",
		}, []string{"action"}),
	}
	for _, r := range []string{resultDelivered, resultDeferred, resultBounced, resultExpired} {
		m.deliveries.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.dsns, &queueCollector{q: q}} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("smtp: queue metrics already registered (one queue per Registerer): %w", err)
			}
			return nil, fmt.Errorf("smtp: register queue metrics: %w", err)
		}
	}
	return m, nil
}

// queueCollector reports the queue's state when scraped: gauges computed
// from the scheduler's view, so that no count can drift from it.
type queueCollector struct{ q *Queue }

var (
	queueSizeDesc = prometheus.NewDesc("mailyard_queue_recipients",
		"Queued recipients by state: ready (due now or being delivered), deferred (waiting for a retry), held (by an administrator).",
		[]string{"state"}, nil)
	queueOldestDesc = prometheus.NewDesc("mailyard_queue_oldest_message_age_seconds",
		"Age of the oldest queued message (0 when the queue is empty).", nil, nil)
	queueConnsDesc = prometheus.NewDesc("mailyard_queue_destination_connections",
		"Delivery workers (each with at most one connection) per destination: the next hop, or MX:domain for MX delivery.",
		[]string{"destination"}, nil)
)

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueSizeDesc
	ch <- queueOldestDesc
	ch <- queueConnsDesc
}

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.q.snapshot()
	ch <- prometheus.MustNewConstMetric(queueSizeDesc, prometheus.GaugeValue, float64(s.ready), "ready")
	ch <- prometheus.MustNewConstMetric(queueSizeDesc, prometheus.GaugeValue, float64(s.deferred), "deferred")
	ch <- prometheus.MustNewConstMetric(queueSizeDesc, prometheus.GaugeValue, float64(s.held), "held")
	ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, s.oldest.Seconds())
	for dest, n := range s.conns {
		ch <- prometheus.MustNewConstMetric(queueConnsDesc, prometheus.GaugeValue, float64(n), dest)
	}
}
