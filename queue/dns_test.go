package queue_test

import (
	"net"
	"strings"
	"testing"

	"github.com/foxcpp/go-mockdns"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
)

// A DNS failure while looking up the next hop is reported by its class
// in the queue's status and in the DSN the sender gets, never in the
// resolver's words, which name our DNS server.
func TestQueueDNSFailureNamesNoServer(t *testing.T) {
	const server = "10.9.8.7:53"
	zones := map[string]mockdns.Zone{
		"remote.test.":   {Err: &net.DNSError{Err: "server misbehaving", Name: "remote.test", Server: server, IsTemporary: true}},
		"mx.other.test.": {Err: &net.DNSError{Err: "i/o timeout", Name: "mx.other.test", Server: server, IsTimeout: true}},
		"other.test.":    {MX: []net.MX{{Host: "mx.other.test.", Pref: 10}}},
	}
	clock := queueClock()
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{{Match: "*", Gateway: routing.Gateway{TLS: routing.TLSNone}}}},
		func(o *queue.Options) {
			fastRetries(o)
			withClock(clock)(o)
			o.Resolver = &mockdns.Resolver{Zones: zones}
		})
	id := f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test")
	id2 := f.enqueue(t, "alice@example.test", queueBody, "carol@other.test")
	eventually(t, "both attempted", func() bool {
		l := f.list(t)
		return len(l) == 2 && l[0].Attempts >= 1 && l[1].Attempts >= 1
	})
	for _, e := range f.list(t) {
		if strings.Contains(e.LastError, "10.9.8.7") || !strings.Contains(e.LastError, "DNS") {
			t.Errorf("queue status of %s: %q", e.ID, e.LastError)
		}
	}
	for f.step(t, clock, id) { // until it expires and bounces
	}
	for f.step(t, clock, id2) {
	}
	eventually(t, "the bounces", func() bool { return len(f.inbox(t)) >= 2 })
	for _, dsn := range f.inbox(t) {
		if strings.Contains(dsn, "10.9.8.7") || !strings.Contains(dsn, "DNS") {
			t.Errorf("DSN:\n%s", dsn)
		}
	}
}
