package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// promMetrics exposes what the library declares under the library's
// names, types and labels, with the wrapping Registerer's labels added;
// a family declared twice on one registry is refused with the hint.
func TestPromMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := promMetrics{prometheus.WrapRegistererWith(prometheus.Labels{"listener": "smtp"}, reg)}
	plain, err := m.Counter("mailyard_test_plain_total", "A counter without labels.")
	if err != nil {
		t.Fatal(err)
	}
	byResult, err := m.Counter("mailyard_test_results_total", "A counter by result.", "result")
	if err != nil {
		t.Fatal(err)
	}
	open, err := m.Gauge("mailyard_test_open", "A gauge.")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.GaugeFunc("mailyard_test_state", "A gauge read at scrape.", []string{"state"}, func(emit func(float64, ...string)) {
		emit(3, "ready")
		emit(1, "held")
	}); err != nil {
		t.Fatal(err)
	}
	plain(2)
	byResult(1, "accepted")
	byResult(1, "accepted")
	open(1)
	open(1)
	open(-1)
	want := `# HELP mailyard_test_open A gauge.
# TYPE mailyard_test_open gauge
mailyard_test_open{listener="smtp"} 1
# HELP mailyard_test_plain_total A counter without labels.
# TYPE mailyard_test_plain_total counter
mailyard_test_plain_total{listener="smtp"} 2
# HELP mailyard_test_results_total A counter by result.
# TYPE mailyard_test_results_total counter
mailyard_test_results_total{listener="smtp",result="accepted"} 2
# HELP mailyard_test_state A gauge read at scrape.
# TYPE mailyard_test_state gauge
mailyard_test_state{listener="smtp",state="held"} 1
mailyard_test_state{listener="smtp",state="ready"} 3
`
	got := exposition(t, reg)
	if got != want {
		t.Errorf("exposed:\n%s\nwant:\n%s", got, want)
	}
	if _, err := m.Counter("mailyard_test_plain_total", "A counter without labels."); err == nil || !strings.Contains(err.Error(), "distinct labels") {
		t.Errorf("second declaration on one registry: %v, want the already-registered hint", err)
	}
}

// davLatency observes each DAV request by method; every method series
// exists at zero from the start, and a method nobody listed counts as
// other, so a client cannot make new series.
func TestDAVLatencyMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := davLatency(reg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(207) }))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"PROPFIND", "X-INVENTED"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, "/dav/", nil))
	}
	got := exposition(t, reg)
	for _, want := range []string{
		`mailyard_dav_request_duration_seconds_count{listener="dav",method="PROPFIND"} 1`,
		`mailyard_dav_request_duration_seconds_count{listener="dav",method="other"} 1`,
		`mailyard_dav_request_duration_seconds_count{listener="dav",method="PUT"} 0`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	if strings.Contains(got, "X-INVENTED") {
		t.Error("a client-chosen method became a series")
	}
}

// exposition is what reg exposes, in the text format /metrics serves.
func exposition(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
