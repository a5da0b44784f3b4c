package geo

import "fmt"

// Metrics is where a Node reports link health: the part of the metrics
// interface of smtp and queue it needs, which the reference server
// implements over a Prometheus registerer it is given.
type Metrics interface {
	// GaugeFunc declares a gauge family computed when the metrics are
	// collected: collect emits one value per series.
	GaugeFunc(name, help string, labels []string, collect func(emit func(value float64, labelValues ...string))) error
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// declareMetrics declares the per-link gauges, read from Health.
func (n *Node) declareMetrics() error {
	if n.opts.Metrics == nil {
		return nil
	}
	gauges := []struct {
		name, help string
		value      func(LinkHealth) float64
	}{
		{"mailyard_geo_link_connected", "1 if this site is connected to the peer's NATS.", func(h LinkHealth) float64 { return boolValue(h.Connected) }},
		{"mailyard_geo_link_up", "1 if the link is green (connected, mutual, caught up, no error since the last event).", func(h LinkHealth) float64 { return boolValue(h.Green()) }},
		{"mailyard_geo_link_lag_events", "Records of the peer not applied yet.", func(h LinkHealth) float64 { return float64(h.LagEvents) }},
		{"mailyard_geo_link_lag_seconds", "Age of the oldest record of the peer not applied yet.", func(h LinkHealth) float64 { return h.LagSeconds }},
		{"mailyard_geo_link_last_event_timestamp_seconds", "When a record of the peer was last applied (Unix time).", func(h LinkHealth) float64 {
			if h.LastEvent.IsZero() {
				return 0
			}
			return float64(h.LastEvent.UnixNano()) / 1e9
		}},
		{"mailyard_geo_link_last_error_timestamp_seconds", "When the link last failed (Unix time).", func(h LinkHealth) float64 {
			if h.LastErrorAt.IsZero() {
				return 0
			}
			return float64(h.LastErrorAt.UnixNano()) / 1e9
		}},
	}
	for _, g := range gauges {
		err := n.opts.Metrics.GaugeFunc(g.name, g.help, []string{"peer"}, func(emit func(float64, ...string)) {
			for _, h := range n.Health() {
				emit(g.value(h), h.Peer)
			}
		})
		if err != nil {
			return fmt.Errorf("geo: metric %s: %w", g.name, err)
		}
	}
	return n.opts.Metrics.GaugeFunc("mailyard_geo_conflicts", "Conflict records, by kind.", []string{"kind"}, func(emit func(float64, ...string)) {
		count := map[string]int{ConflictDuplicateAddress: 0, ConflictInvalidPayload: 0, ConflictOneEndedLink: 0}
		for _, c := range n.Conflicts() {
			count[c.Kind]++
		}
		for k, v := range count {
			emit(float64(v), k)
		}
	})
}
