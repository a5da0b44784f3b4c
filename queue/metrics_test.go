package queue_test

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/internal/metric"
	"github.com/mailyard/mailyard/internal/testhop"
	"github.com/mailyard/mailyard/internal/testpeer"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
)

// gathered returns the value of metric name with the given labels, and
// whether it exists.
func gathered(t testing.TB, reg *metric.Recorder, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	return reg.Value(name, labels)
}

func gatheredIs(t testing.TB, reg *metric.Recorder, name string, labels map[string]string, want float64) bool {
	v, ok := gathered(t, reg, name, labels)
	return ok && v == want
}

// Delivery results and DSNs are counted: one recipient delivered, one
// bounced at once, one deferred until it expires (a "delayed" DSN, then a
// "failed" one, besides the bounce's).
func TestQueueMetricsDeliveryResults(t *testing.T) {
	reg := &metric.Recorder{}
	hop := testhop.Start(t, testhop.Options{})
	// The queue's clock moves one attempt at a time: the deferred
	// recipient is retried past DelayWarning before it expires however
	// busy the machine is.
	clock := queueClock()
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{hop.Route("remote.test", routing.TLSNone, nil)}}, func(o *queue.Options) {
		fastRetries(o)
		withClock(clock)(o)
		o.Metrics = reg
	})
	id := f.enqueue(t, "alice@example.test", queueBody, "perm-user@remote.test", "bob@remote.test", "temp-user@remote.test")
	for f.step(t, clock, id) { // one attempt at a time until it expires
	}
	for result, want := range map[string]float64{"delivered": 1, "bounced": 1, "expired": 1} {
		if v, _ := gathered(t, reg, "mailyard_queue_deliveries_total", map[string]string{"result": result}); v != want {
			t.Errorf("deliveries %s = %v, want %v", result, v, want)
		}
	}
	if v, _ := gathered(t, reg, "mailyard_queue_deliveries_total", map[string]string{"result": "deferred"}); v < 2 {
		t.Errorf("deliveries deferred = %v, want the retries", v)
	}
	eventually(t, "three DSNs", func() bool { return len(f.inbox(t)) == 3 })
	for action, want := range map[string]float64{"failed": 2, "delayed": 1} {
		if v, _ := gathered(t, reg, "mailyard_queue_dsns_total", map[string]string{"action": action}); v != want {
			t.Errorf("dsns %s = %v, want %v", action, v, want)
		}
	}
	// A second queue cannot declare its families to the same Metrics.
	o := f.opts
	o.Dir, o.Store, o.Deliverer, o.Router = t.TempDir(), f.st, f.st, f.table
	if _, err := queue.New(o); err == nil {
		t.Error("two queues registered the same metrics")
	}
}

// The queue's size by state and its oldest message's age follow the
// scheduler: a recipient waiting for a retry is deferred, a held one held,
// and an empty queue reports zeros.
func TestQueueMetricsSizeAndAge(t *testing.T) {
	// Connections are refused (a reserved port nothing listens on):
	// every attempt defers.
	port := strconv.Itoa(testpeer.ReservePort(t).Addr().Port)
	reg := &metric.Recorder{}
	route := routing.Route{Match: "remote.test", Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + port, TLS: routing.TLSNone}}
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{route}}, func(o *queue.Options) {
		o.RetryMin, o.RetryMax = time.Hour, time.Hour
		o.Metrics = reg
	})
	state := func(s string) map[string]string { return map[string]string{"state": s} }
	a := f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test")
	eventually(t, "deferred", func() bool { return gatheredIs(t, reg, "mailyard_queue_recipients", state("deferred"), 1) })
	b := f.enqueue(t, "alice@example.test", queueBody, "carol@remote.test")
	if err := f.q.Hold(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	eventually(t, "held", func() bool { return gatheredIs(t, reg, "mailyard_queue_recipients", state("held"), 1) })
	if !gatheredIs(t, reg, "mailyard_queue_recipients", state("deferred"), 1) || !gatheredIs(t, reg, "mailyard_queue_recipients", state("ready"), 0) {
		t.Fatal("deferred or ready count wrong")
	}
	if age, _ := gathered(t, reg, "mailyard_queue_oldest_message_age_seconds", nil); age <= 0 || age > 60 {
		t.Fatalf("oldest age %v", age)
	}
	for _, id := range []string{a, b} {
		if err := f.q.Delete(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "empty", func() bool {
		return gatheredIs(t, reg, "mailyard_queue_recipients", state("deferred"), 0) &&
			gatheredIs(t, reg, "mailyard_queue_recipients", state("held"), 0) &&
			gatheredIs(t, reg, "mailyard_queue_oldest_message_age_seconds", nil, 0)
	})
}

// blockingHop accepts mail but holds each DATA until release is closed.
type blockingHop struct{ release chan struct{} }

func (b blockingHop) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return b, nil }
func (b blockingHop) Mail(string, *gosmtp.MailOptions) error          { return nil }
func (b blockingHop) Rcpt(string, *gosmtp.RcptOptions) error          { return nil }
func (b blockingHop) Reset()                                          {}
func (b blockingHop) Logout() error                                   { return nil }
func (b blockingHop) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	<-b.release
	return nil
}

// startBlockingHop serves a blockingHop on a loopback port and returns
// the port and the function that releases the DATA it holds; the test's
// cleanup releases them if the test did not, and stops the server.
func startBlockingHop(t *testing.T) (port string, release func()) {
	t.Helper()
	hb := blockingHop{release: make(chan struct{})}
	s := gosmtp.NewServer(hb)
	s.Domain = "hop.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	var once sync.Once
	release = func() { once.Do(func() { close(hb.release) }) }
	t.Cleanup(func() {
		release()
		s.Close()
	})
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, release
}

// A delivery in progress shows as a worker of its destination (named by
// its next hop, never its credentials) and a ready recipient.
func TestQueueMetricsDestinationConnections(t *testing.T) {
	port, release := startBlockingHop(t)
	reg := &metric.Recorder{}
	route := routing.Route{Match: "remote.test", Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + port, TLS: routing.TLSNone}}
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{route}}, func(o *queue.Options) { o.Metrics = reg })
	f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test")
	nh, err := routing.ParseNextHop("[127.0.0.1]:" + port)
	if err != nil {
		t.Fatal(err)
	}
	dest := map[string]string{"destination": nh.String()}
	eventually(t, "one worker", func() bool { return gatheredIs(t, reg, "mailyard_queue_destination_connections", dest, 1) })
	if !gatheredIs(t, reg, "mailyard_queue_recipients", map[string]string{"state": "ready"}, 1) {
		t.Fatal("the recipient in delivery is not counted as ready")
	}
	release()
	eventually(t, "delivered", func() bool {
		return gatheredIs(t, reg, "mailyard_queue_deliveries_total", map[string]string{"result": "delivered"}, 1)
	})
	eventually(t, "worker gone", func() bool {
		_, ok := gathered(t, reg, "mailyard_queue_destination_connections", dest)
		return !ok
	})
}
