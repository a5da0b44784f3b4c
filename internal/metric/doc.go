// Package metric holds what Mailyard's library packages share behind
// their own Metrics interfaces (smtp.Metrics, imap.Metrics), so that no
// library package imports a metrics library and an embedder takes on no
// dependency it did not choose (ARCHITECTURE.md, "Rules").
//
// Those interfaces hand out plain function types,
// func(delta float64, labelValues ...string), rather than named ones: one
// implementation then satisfies every package's interface. The reference
// server implements them over Prometheus' client_golang
// (examples/mailserver/metrics.go); this package holds [Family], the
// counting side the library code calls, [Discard] for a nil Metrics, and
// [Recorder], an in-memory implementation for tests.
//
// Nothing here is part of a documented option: the options' types are
// the consumers' interfaces, which an embedder implements with any metrics
// library.
package metric
