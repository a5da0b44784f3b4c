package main

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// /debug/pprof/ is served on the HTTP listener only when [http] pprof is
// on: the profiles show internals, so the default keeps them off.
func TestPprofOnlyWhenConfigured(t *testing.T) {
	for _, on := range []bool{false, true} {
		var cfg Config
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.HTTP.Pprof = on
		var ls listeners
		if err := ls.listenHTTP(cfg, slog.New(slog.DiscardHandler), shared{reg: prometheus.NewRegistry()}); err != nil {
			t.Fatal(err)
		}
		go ls.http.Serve(ls.httpLn)
		resp, err := http.Get("http://" + ls.httpLn.Addr().String() + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ls.http.Close()
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Errorf("pprof = %v: status %d, want %d (%.80q)", on, resp.StatusCode, want, body)
		}
	}
}
