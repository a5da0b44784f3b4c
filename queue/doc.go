// Package queue is Mailyard's durable outbound mail queue: it keeps
// messages for recipients that routing sends to other hosts, delivers
// them over SMTP (RFC 5321) to the next hop with retries, and reports
// failures and long delays to the sender with DSNs (RFC 3464).
//
// The SMTP server (package smtp) hands it accepted mail through the small
// interface smtp.Outbound, which [*Queue] satisfies; anything else that
// sends mail (iMIP scheduling, Sieve redirects) calls [Queue.Enqueue].
//
// Its recipients live in a [Store] of their own (store/sqlite: a table
// indexed by next attempt time; store/memstore for tests), which the
// scheduler asks for due recipients and claims them with a lease, so that
// a backlog costs memory in the Store, not in the queue, and several
// nodes can share one Store. The bodies are files in a directory of the
// process, or, for nodes sharing a Store, in shared [Bodies]
// (store/postgres), so that any node delivers what another queued. A recipient keeps the name of the routing
// entry that chose its next hop, never the hop's credentials: the hop is
// looked up by that name when it is delivered ([Routes]), so a changed
// smarthost or password applies to mail already queued.
//
// Guarantees: when Enqueue (or Commit) returns nil the message survives a
// crash, and a recipient leaves the queue only after the next hop accepted
// it or its DSN is durable (at-least-once; see [Queue]). Everything it
// holds is bounded: recipients in flight ([Options].MaxInFlight),
// concurrent deliveries (Concurrency and PerDestination) and the hosts it
// remembers as having no STARTTLS. Queues of releases before this package
// (JSON records in store.Records) are moved into the Store at Start.
//
// The package imports no metrics library and no logger of its own:
// [Metrics] and a *slog.Logger are injected through [Options].
package queue

import (
	"context"
	"os"
	"strings"

	"github.com/mailyard/mailyard/routing"
)

// Router resolves the envelope sender of a DSN: a local sender's DSN is
// stored, a remote sender's is queued. *routing.Table satisfies it.
type Router interface {
	Resolve(ctx context.Context, env routing.Envelope, recipient string) (routing.Result, error)
}

// Metrics receives the queue's measurements ([Options].Metrics); nil
// records nothing. It has the shape of smtp.Metrics and imap.Metrics, so
// one implementation (the reference server's, over Prometheus'
// client_golang) serves all three. New calls each method once per
// family, with its full name, help text and label names; an error fails
// New. The functions returned are called concurrently while the queue
// runs.
type Metrics interface {
	// Counter declares a counter family; the function returned adds
	// delta (never negative) to one series.
	Counter(name, help string, labels ...string) (add func(delta float64, labelValues ...string), err error)
	// Gauge declares a gauge family; the function returned adds delta
	// (either sign) to one series.
	Gauge(name, help string, labels ...string) (add func(delta float64, labelValues ...string), err error)
	// GaugeFunc declares a gauge family computed when the metrics are
	// read: collect calls emit once per series.
	GaugeFunc(name, help string, labels []string, collect func(emit func(value float64, labelValues ...string))) error
}

func defaultTo[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// defaultHostname returns os.Hostname(), or "localhost" if it is unavailable.
func defaultHostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// domainOf returns the lower-cased domain of addr ("" without one).
func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(addr[at+1:])
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
