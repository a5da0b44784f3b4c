package metric

import "testing"

func TestDeclareAndRecord(t *testing.T) {
	var conns, open Family
	r := &Recorder{}
	if err := Declare(r,
		Decl{To: &conns, Name: "conns_total", Labels: []string{"result"}},
		Decl{To: &open, Name: "open", Gauge: true},
	); err != nil {
		t.Fatal(err)
	}
	conns.WithLabelValues("accepted").Inc()
	conns.WithLabelValues("accepted").Add(2)
	open.Inc()
	open.Inc()
	open.Dec()
	if v, ok := r.Value("conns_total", map[string]string{"result": "accepted"}); !ok || v != 3 {
		t.Errorf("conns_total{accepted} = %v %v, want 3", v, ok)
	}
	if v, ok := r.Value("open", nil); !ok || v != 1 {
		t.Errorf("open = %v %v, want 1", v, ok)
	}
	if _, ok := r.Value("conns_total", map[string]string{"result": "refused"}); ok {
		t.Error("a series never counted exists")
	}
	if err := Declare(r, Decl{To: &conns, Name: "conns_total"}); err == nil {
		t.Error("a family declared twice was accepted")
	}
	if err := r.GaugeFunc("state", "", []string{"state"}, func(emit func(float64, ...string)) { emit(4, "ready") }); err != nil {
		t.Fatal(err)
	}
	if v, ok := r.Value("state", map[string]string{"state": "ready"}); !ok || v != 4 {
		t.Errorf("state{ready} = %v %v, want 4", v, ok)
	}
	mustPanic(t, "counter decreased", func() { conns(-1, "accepted") })
	mustPanic(t, "label count", func() { conns.Inc() })

	// Without a Metrics every family counts into nothing.
	var quiet Family
	if err := Declare(nil, Decl{To: &quiet, Name: "quiet_total"}); err != nil {
		t.Fatal(err)
	}
	quiet.Inc()
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

// TestSeriesFromStart: declared series exist at zero before anything is
// counted, histograms included, so alerts on absent series work; a
// Metrics without histograms records none.
func TestSeriesFromStart(t *testing.T) {
	var rcpts, latency Family
	r := &Recorder{}
	if err := Declare(r,
		Decl{To: &rcpts, Name: "rcpts_total", Labels: []string{"outcome"}, Series: [][]string{{"deliver"}, {"reject"}}},
		Decl{To: &latency, Name: "cmd_seconds", Labels: []string{"command"}, Buckets: LatencyBuckets, Series: [][]string{{"fetch"}}},
	); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, label, value string
	}{{"rcpts_total", "outcome", "deliver"}, {"rcpts_total", "outcome", "reject"}, {"cmd_seconds", "command", "fetch"}} {
		if v, ok := r.Value(c.name, map[string]string{c.label: c.value}); !ok || v != 0 {
			t.Errorf("%s{%s} = %v %v before any count, want 0 true", c.name, c.value, v, ok)
		}
	}
	latency.WithLabelValues("fetch").Observe(0.002)
	latency.WithLabelValues("fetch").Observe(0.004)
	if v, _ := r.Value("cmd_seconds", map[string]string{"command": "fetch"}); v != 2 {
		t.Errorf("cmd_seconds{fetch} observations = %v, want 2", v)
	}
	// Discard has no Histogram: the family records nothing.
	var quiet Family
	if err := Declare(Discard{}, Decl{To: &quiet, Name: "q_seconds", Buckets: LatencyBuckets}); err != nil {
		t.Fatal(err)
	}
	quiet.Observe(1)
}
