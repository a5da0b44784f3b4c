package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store/sqlite"
)

// /healthz says ok while the store answers and 503 with the reason once
// it does not.
func TestHealthz(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := healthHandler(st)
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		body, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(body)
	}
	if code, body := get(); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("open store: %d %q", code, body)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "store unavailable: ") || !strings.Contains(body, "closed") {
		t.Fatalf("closed store: %d %q", code, body)
	}
}
