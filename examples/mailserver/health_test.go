package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/internal/pgtest"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/postgres"
	"github.com/mailyard/mailyard/store/sqlite"
)

// /healthz says ok while the store answers and 503 with the reason once
// it does not.
func TestHealthz(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	testHealthz(t, st, st.Close)
}

// The same on PostgreSQL, where the probe's account ID must be text the
// server takes (a NUL in it made every check 503).
func TestHealthzPostgres(t *testing.T) {
	st, err := postgres.Open(context.Background(), pgtest.FreshDB(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	testHealthz(t, st, st.Close)
}

func testHealthz(t *testing.T, st store.Accounts, closeStore func() error) {
	if err := store.ValidAccountID(healthProbe); err == nil {
		t.Fatalf("the probe %q is a valid account ID: an account could have it", healthProbe)
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
	if err := closeStore(); err != nil {
		t.Fatal(err)
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "store unavailable: ") || !strings.Contains(body, "closed") {
		t.Fatalf("closed store: %d %q", code, body)
	}
}
