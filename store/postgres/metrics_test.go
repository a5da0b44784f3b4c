package postgres

import (
	"io"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/internal/metric"
	"github.com/mailyard/mailyard/store"
)

// The latency histogram counts each write transaction and each read
// statement, with the series store/sqlite declares, and a Tracer given
// as well still sees every statement.
func TestMetrics(t *testing.T) {
	rec := &metric.Recorder{}
	tr := &countTracer{}
	s := openTest(t, freshDB(t), Options{Metrics: rec, Tracer: tr})
	ctx := ctxFor(t)
	value := func(op string) float64 {
		t.Helper()
		v, ok := rec.Value(latencyName, map[string]string{"op": op})
		if !ok {
			t.Fatalf("no series %s{op=%q}", latencyName, op)
		}
		return v
	}
	w0, r0 := value("write"), value("read")
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: x\r\n\r\nbody\r\n"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if w := value("write") - w0; w != 2 {
		t.Errorf("CreateAccount and Append: %v writes observed, want 2", w)
	}
	if r := value("read") - r0; r != 0 {
		t.Errorf("writes observed as %v reads", r)
	}
	n0, r0 := tr.n.Load(), value("read")
	rc, err := s.OpenBody(ctx, "u", store.Inbox, 1)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(rc)
	rc.Close()
	if _, err := s.ListMessages(ctx, "u", store.Inbox, nil); err != nil {
		t.Fatal(err)
	}
	if r := value("read") - r0; r != 2 {
		t.Errorf("OpenBody and ListMessages: %v reads observed, want 2", r)
	}
	if n := tr.n.Load() - n0; n != 2 {
		t.Errorf("the Tracer saw %d statements of OpenBody and ListMessages, want 2", n)
	}
}
