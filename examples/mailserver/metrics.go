package main

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailyard/mailyard/imap"
	"github.com/mailyard/mailyard/internal/metric"
	"github.com/mailyard/mailyard/smtp"
	"github.com/mailyard/mailyard/store/sqlite"
)

// promMetrics implements smtp.Metrics and imap.Metrics over Prometheus'
// client_golang: each family the library declares becomes a collector
// registered with reg. The library packages import no metrics library;
// this file is the whole of the wiring, for an embedder to copy.
// Servers sharing one registry are told apart by wrapping reg
// (prometheus.WrapRegistererWith) with a label of their own.
type promMetrics struct{ reg prometheus.Registerer }

// One implementation serves every package's interface.
var (
	_ smtp.Metrics        = promMetrics{}
	_ imap.Metrics        = promMetrics{}
	_ sqlite.Metrics      = promMetrics{}
	_ metric.Histogrammer = promMetrics{}
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

// Histogram declares a histogram family (metric.Histogrammer, and
// sqlite.Metrics); the series listed exist, empty, from the start.
func (p promMetrics) Histogram(name, help string, buckets []float64, labels []string, series [][]string) (func(float64, ...string), error) {
	opts := prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}
	if len(labels) == 0 {
		h := prometheus.NewHistogram(opts)
		return func(v float64, _ ...string) { h.Observe(v) }, p.register(h)
	}
	v := prometheus.NewHistogramVec(opts, labels)
	for _, lv := range series {
		v.WithLabelValues(lv...)
	}
	return func(x float64, lv ...string) { v.WithLabelValues(lv...).Observe(x) }, p.register(v)
}

// buildInfo is mailyard_build_info: 1, labelled with the module version,
// the VCS commit (with "-dirty" for uncommitted changes) and the Go
// version the binary was built with, as recorded in the binary.
func buildInfo() prometheus.Collector {
	version, commit, goVersion := "unknown", "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		goVersion = bi.GoVersion
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && commit != "unknown" {
			commit += "-dirty"
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mailyard_build_info",
		Help:        "Always 1; the labels say which build runs: module version, VCS commit, Go version.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "go_version": goVersion},
	})
	g.Set(1)
	return g
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
