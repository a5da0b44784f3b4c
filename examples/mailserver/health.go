package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mailyard/mailyard/store"
)

// healthTimeout bounds /healthz's store round trip: a load balancer's
// check (HAProxy's "timeout check") must get an answer, not a hang.
const healthTimeout = 2 * time.Second

// healthProbe is an account ID no one has: looking it up is one indexed
// read of the store, cheap enough for a check every second or two. It is
// longer than an account ID may be (store.ValidAccountID: at most 255
// bytes) but plain text that every backend can be asked for: PostgreSQL
// refuses a NUL in a text parameter, so the "\x00healthz" this was made
// /healthz answer 503 there whatever the database's state.
var healthProbe = "healthz-" + strings.Repeat("x", 256)

// healthHandler answers /healthz: 200 "ok" when the store answers a
// lookup, 503 with the reason when it does not (closed, locked, database
// unreachable), for HAProxy's "option httpchk GET /healthz" and other
// probes.
func healthHandler(st store.Accounts) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		_, err := st.Account(ctx, healthProbe)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, fmt.Sprintf("store unavailable: %v", err), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, "ok")
	}
}
