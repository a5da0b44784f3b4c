package smtp_test

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/smtp"
)

// totals is a Metrics over the standard library alone: it keeps every
// series' value in a map. An embedder would forward to its own metrics
// library here (examples/mailserver does so for client_golang).
type totals struct {
	mu     sync.Mutex
	values map[string]float64 // "name{label values}"
}

func (t *totals) add(name string) func(float64, ...string) {
	return func(delta float64, labelValues ...string) {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.values[name+"{"+strings.Join(labelValues, ",")+"}"] += delta
	}
}

func (t *totals) Counter(name, _ string, _ ...string) (func(float64, ...string), error) {
	return t.add(name), nil
}

func (t *totals) Gauge(name, _ string, _ ...string) (func(float64, ...string), error) {
	return t.add(name), nil
}

func (t *totals) GaugeFunc(string, string, []string, func(func(float64, ...string))) error {
	return nil // the queue's gauges; this server has no queue
}

// Count a server's connections and messages without any metrics library.
func ExampleMetrics() {
	m := &totals{values: map[string]float64{}}
	srv, err := smtp.New(smtp.Options{
		Hostname:  "mx.example.org",
		Mode:      smtp.ModeMX,
		Router:    oneUser{},
		Deliverer: printer{},
		Metrics:   m,
	})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	c, err := gosmtp.Dial(ln.Addr().String())
	if err != nil {
		panic(err)
	}
	if err := c.SendMail("someone@elsewhere.test", []string{"postmaster@example.org"},
		strings.NewReader("Subject: hello\r\n\r\nHi!\r\n")); err != nil {
		panic(err)
	}
	c.Quit()

	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.values {
		// Series declared up front exist at zero; print those counted.
		if (strings.Contains(k, "accepted") || strings.Contains(k, "recipients")) && m.values[k] != 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Println(k, m.values[k])
	}
	// Output:
	// stored "hello" for pm
	// mailyard_smtp_connections_total{accepted} 1
	// mailyard_smtp_messages_accepted_total{} 1
	// mailyard_smtp_recipients_total{deliver} 1
}
