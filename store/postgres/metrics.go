package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/internal/metric"
)

// Metrics declares histograms; the reference server implements it over
// Prometheus (examples/mailserver/metrics.go), as it does sqlite.Metrics.
// Open calls Histogram once; the function returned observes one latency
// in seconds with one label value, and series lists the label values
// that exist from the start.
type Metrics interface {
	Histogram(name, help string, buckets []float64, labels []string, series [][]string) (observe func(value float64, labelValues ...string), err error)
}

// latencyName is the store latency histogram, the one store/sqlite
// declares, so that a dashboard reads both backends alike.
const latencyName = "mailyard_store_operation_duration_seconds"

// declareLatency declares the latency histogram with m; nil m records
// nothing.
func declareLatency(m Metrics) (func(float64, ...string), error) {
	if m == nil {
		return func(float64, ...string) {}, nil
	}
	return m.Histogram(latencyName,
		"Store latency by op: write (one write transaction, from BEGIN to its durable COMMIT) and read (one statement outside a transaction that reads).",
		metric.LatencyBuckets, []string{"op"}, metric.OneLabel("write", "read"))
}

// observeWrite records a write transaction that began at start.
func (s *Store) observeWrite(start time.Time) { s.latency(time.Since(start).Seconds(), "write") }

// readTracer observes the latency of each read statement the pool runs
// outside a transaction (a SELECT; the uploads of bodies and other
// autocommitted writes are not reads) and hands every trace on to next,
// if set.
type readTracer struct {
	next    pgx.QueryTracer
	observe func(float64, ...string)
}

// readStartKey carries a read's start time from TraceQueryStart to
// TraceQueryEnd.
type readStartKey struct{}

func (t readTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if t.next != nil {
		ctx = t.next.TraceQueryStart(ctx, conn, data)
	}
	if conn.PgConn().TxStatus() == 'I' && strings.HasPrefix(strings.TrimSpace(data.SQL), "SELECT") {
		ctx = context.WithValue(ctx, readStartKey{}, time.Now())
	}
	return ctx
}

func (t readTracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if start, ok := ctx.Value(readStartKey{}).(time.Time); ok {
		t.observe(time.Since(start).Seconds(), "read")
	}
	if t.next != nil {
		t.next.TraceQueryEnd(ctx, conn, data)
	}
}

func (t readTracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if bt, ok := t.next.(pgx.BatchTracer); ok {
		return bt.TraceBatchStart(ctx, conn, data)
	}
	return ctx
}

func (t readTracer) TraceBatchQuery(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchQueryData) {
	if bt, ok := t.next.(pgx.BatchTracer); ok {
		bt.TraceBatchQuery(ctx, conn, data)
	}
}

func (t readTracer) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	if bt, ok := t.next.(pgx.BatchTracer); ok {
		bt.TraceBatchEnd(ctx, conn, data)
	}
}
