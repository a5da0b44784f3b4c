package main

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailyard/mailyard/imap"
	"github.com/mailyard/mailyard/smtp"
)

// promMetrics implements smtp.Metrics and imap.Metrics over Prometheus'
// client_golang: each family the library declares becomes a collector
// registered with reg. The library packages import no metrics library;
// this file is the whole of the wiring, for an embedder to copy.
// Servers sharing one registry are told apart by wrapping reg
// (prometheus.WrapRegistererWith) with a label of their own.
type promMetrics struct{ reg prometheus.Registerer }

// One implementation serves both packages' interfaces.
var (
	_ smtp.Metrics = promMetrics{}
	_ imap.Metrics = promMetrics{}
)

// Counter declares a counter family: a plain counter without labels (so
// that it shows at zero from the start), a CounterVec with them.
func (p promMetrics) Counter(name, help string, labels ...string) (func(float64, ...string), error) {
	opts := prometheus.CounterOpts{Name: name, Help: help}
	if len(labels) == 0 {
		c := prometheus.NewCounter(opts)
		return func(delta float64, _ ...string) { c.Add(delta) }, p.register(c)
	}
	v := prometheus.NewCounterVec(opts, labels)
	return func(delta float64, lv ...string) { v.WithLabelValues(lv...).Add(delta) }, p.register(v)
}

// Gauge declares a gauge family, a plain gauge without labels.
func (p promMetrics) Gauge(name, help string, labels ...string) (func(float64, ...string), error) {
	opts := prometheus.GaugeOpts{Name: name, Help: help}
	if len(labels) == 0 {
		g := prometheus.NewGauge(opts)
		return func(delta float64, _ ...string) { g.Add(delta) }, p.register(g)
	}
	v := prometheus.NewGaugeVec(opts, labels)
	return func(delta float64, lv ...string) { v.WithLabelValues(lv...).Add(delta) }, p.register(v)
}

// GaugeFunc declares a gauge family computed at every scrape.
func (p promMetrics) GaugeFunc(name, help string, labels []string, collect func(emit func(float64, ...string))) error {
	return p.register(&gaugeFuncCollector{desc: prometheus.NewDesc(name, help, labels, nil), collect: collect})
}

func (p promMetrics) register(c prometheus.Collector) error {
	err := p.reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return fmt.Errorf("already registered (wrap the Registerer with distinct labels per server): %w", err)
	}
	return err
}

// gaugeFuncCollector reports the series its collect function emits.
type gaugeFuncCollector struct {
	desc    *prometheus.Desc
	collect func(emit func(float64, ...string))
}

// Describe implements prometheus.Collector.
func (c *gaugeFuncCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *gaugeFuncCollector) Collect(ch chan<- prometheus.Metric) {
	c.collect(func(value float64, labelValues ...string) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, value, labelValues...)
	})
}
