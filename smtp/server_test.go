package smtp

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/metric"
)

func TestNewValidatesOptions(t *testing.T) {
	serverTLS, _ := testTLS(t)
	r, d, a := newTestRouter(), &fileDeliverer{}, newTestAuth()
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"no router", Options{Deliverer: d}, "Router is required"},
		{"no deliverer", Options{Router: r}, "Deliverer is required"},
		{"submission without auth", Options{Router: r, Deliverer: d, Mode: ModeSubmission, TLSConfig: serverTLS}, "Auth is required"},
		{"submission without TLS", Options{Router: r, Deliverer: d, Mode: ModeSubmission, Auth: a}, "TLSConfig is required"},
		{"submissions without TLS", Options{Router: r, Deliverer: d, Mode: ModeSubmissions, Auth: a}, "TLSConfig is required"},
		{"negative size", Options{Router: r, Deliverer: d, MaxMessageBytes: -1}, "must not be negative"},
		{"bad mode", Options{Router: r, Deliverer: d, Mode: Mode(7)}, "unknown mode"},
		// Else every message over the in-memory spool size would get a
		// 451 until someone read the logs.
		{"missing spool dir", Options{Router: r, Deliverer: d, SpoolDir: filepath.Join(t.TempDir(), "nope")}, "SpoolDir"},
	}
	for _, tc := range cases {
		_, err := New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	s, err := New(Options{Router: r, Deliverer: d})
	if err != nil {
		t.Fatal(err)
	}
	o := s.opts
	if o.MaxMessageBytes != 50<<20 || o.MaxRecipients != 100 || o.MaxConnsPerIP != 20 || o.MaxLineLength != 2000 ||
		o.MaxHeaderBytes != 64<<10 || o.ReadTimeout != 5*time.Minute || o.Hostname == "" || o.Now == nil {
		t.Errorf("defaults not applied: %+v", o)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close of a server that never served: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("second Close: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{ModeMX: "mx", ModeSubmission: "submission", ModeSubmissions: "submissions", Mode(9): "mode(9)"} {
		if m.String() != want {
			t.Errorf("%d: %q", int(m), m.String())
		}
	}
}

// TestShutdownLetsDataFinish: Shutdown closes idle connections at once,
// refuses new ones, and waits for a message being stored; that client gets
// its 250.
func TestShutdownLetsDataFinish(t *testing.T) {
	ts := startServer(t, Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	ts.store.gate = func(ctx context.Context) error {
		close(entered)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	idle := dialRaw(t, ts.addr)
	idle.expect("EHLO idle.test", 250)

	busy := dialRaw(t, ts.addr)
	busy.expect("EHLO busy.test", 250)
	busy.expect("MAIL FROM:<sender@remote.test>", 250)
	busy.expect("RCPT TO:<alice@example.test>", 250)
	busy.expect("DATA", 354)
	busy.write("Subject: in flight\r\n\r\nbody\r\n.\r\n")
	<-entered

	// What was stored when Shutdown returned: the in-flight message is
	// held at the gate until release, so a Shutdown that did not wait for
	// it returns with nothing stored.
	done, storedAtReturn := make(chan error, 1), make(chan int, 1)
	go func() {
		err := ts.Shutdown(context.Background())
		storedAtReturn <- len(ts.store.stored())
		done <- err
	}()

	if code, text := idle.reply(); code != 421 {
		t.Errorf("idle connection: %d %s, want 421", code, text)
	}
	if code, _ := idle.reply(); code != 0 {
		t.Error("idle connection not closed")
	}
	if c, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		if n, _ := c.Read(buf); strings.HasPrefix(string(buf[:n]), "220") {
			t.Error("new connection greeted during shutdown")
		}
		c.Close()
	}

	close(release)
	if code, text := busy.reply(); code != 250 {
		t.Fatalf("in-flight message: %d %s, want 250", code, text)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the message was stored")
	}
	if n := <-storedAtReturn; n != 1 {
		t.Errorf("Shutdown returned with %d messages stored, while one was being stored", n)
	}
	if n := len(ts.store.stored()); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
	if err := <-ts.served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	ts.served <- ErrServerClosed // for the cleanup
}

// TestShutdownDeadline: when the context ends first, connections are
// closed and the stuck delivery is cancelled; nothing is acknowledged.
func TestShutdownDeadline(t *testing.T) {
	ts := startServer(t, Options{})
	entered := make(chan struct{})
	ts.store.gate = func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	busy := dialRaw(t, ts.addr)
	busy.expect("EHLO busy.test", 250)
	busy.expect("MAIL FROM:<sender@remote.test>", 250)
	busy.expect("RCPT TO:<alice@example.test>", 250)
	busy.expect("DATA", 354)
	busy.write("Subject: stuck\r\n\r\nbody\r\n.\r\n")
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	if code, text := busy.reply(); code == 250 {
		t.Fatalf("stuck message acknowledged: %s", text)
	}
	if n := len(ts.store.stored()); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, Options{MaxConnsPerIP: 1})
	c := ts.client(t)
	if err := send(c, "sender@remote.test", []string{"alice@example.test"}, testMsg); err != nil {
		t.Fatal(err)
	}
	ts.store.fail = errors.New("boom")
	_ = send(c, "sender@remote.test", []string{"alice@example.test"}, testMsg)
	_ = c.Mail("sender@remote.test", nil)
	_ = c.Rcpt("victim@remote.test", nil)
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	conn.Read(make([]byte, 100)) // the 421
	conn.Close()

	checks := []struct {
		name      string
		got, want float64
	}{
		{"accepted", metricValue(t, ts.rec, "mailyard_smtp_messages_accepted_total"), 1},
		{"rejected store", metricValue(t, ts.rec, "mailyard_smtp_messages_rejected_total", "reason", reasonStore), 1},
		{"rcpt deliver", metricValue(t, ts.rec, "mailyard_smtp_recipients_total", "outcome", "deliver"), 2},
		{"rcpt relay denied", metricValue(t, ts.rec, "mailyard_smtp_recipients_total", "outcome", "relay_denied"), 1},
		{"conns accepted", metricValue(t, ts.rec, "mailyard_smtp_connections_total", "result", "accepted"), 1},
		{"conns refused", metricValue(t, ts.rec, "mailyard_smtp_connections_total", "result", "client_limit"), 1},
		{"open", metricValue(t, ts.rec, "mailyard_smtp_connections_open"), 1},
		{"bytes", metricValue(t, ts.rec, "mailyard_smtp_message_bytes_total"), float64(len(testMsg))},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// A Metrics that refuses a family (here: declared twice) fails New.
	o := Options{Router: newTestRouter(), Deliverer: &fileDeliverer{}, Metrics: ts.rec}
	if _, err := New(o); err == nil {
		t.Error("New succeeded with a Metrics that refused its families")
	}
	// Without Metrics the server counts into nothing and still works.
	quiet := startServer(t, Options{Metrics: metric.Discard{}})
	if err := send(quiet.client(t), "sender@remote.test", []string{"alice@example.test"}, testMsg); err != nil {
		t.Fatal(err)
	}
}

// metricValue reads the series of family name whose labels are the
// name/value pairs given.
func metricValue(t testing.TB, rec *metric.Recorder, name string, labels ...string) float64 {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	v, ok := rec.Value(name, want)
	if !ok {
		t.Fatalf("no series %s %v", name, want)
	}
	return v
}
