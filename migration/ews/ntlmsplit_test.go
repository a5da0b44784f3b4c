package ews_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
)

// TestNTLMHandshakeSplitStartsOver: when the transport sends an NTLM
// handshake's AUTHENTICATE over another connection than its NEGOTIATE
// (here the server closes the connection after its challenge; under
// load net/http also drops a connection it would have reused), the
// server cannot check it and answers 401. The client starts the
// handshake over, at most three times in all, and a password the
// server refuses is not tried again. Regression:
// TestServerNTLMConcurrent failed under load with 401.
func TestNTLMHandshakeSplitStartsOver(t *testing.T) {
	for _, tc := range []struct {
		name       string
		password   migration.Secret
		closeAfter int // challenges after which the server hangs up
		wantClass  migration.ErrorClass
		negotiates int64
	}{
		{"two split", svcPass, 2, "", 3},
		{"always split", svcPass, 1 << 30, migration.ErrClassAuth, 3},
		{"wrong password", "wrong", 0, migration.ErrClassAuth, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, ewstest.Options{NoBasic: true})
			var negotiates atomic.Int64
			hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// "TlRMTVNTUAAB" is the base64 of "NTLMSSP\x00\x01", a
				// NEGOTIATE_MESSAGE ([MS-NLMP] §2.2.1.1).
				if strings.HasPrefix(r.Header.Get("Authorization"), "NTLM TlRMTVNTUAAB") && negotiates.Add(1) <= int64(tc.closeAfter) {
					w.Header().Set("Connection", "close")
				}
				srv.ews.ServeHTTP(w, r)
			}))
			t.Cleanup(hs.Close)
			c := clientFor(t, hs, ews.Options{Username: svcLogin, Password: tc.password}, func(o *ews.Options) { o.Auth = ews.AuthNTLM })
			_, err := c.Mailbox(owner).GetFolder(context.Background(), ews.FolderRef{Distinguished: "inbox"})
			if got := migration.ClassOf(err); got != tc.wantClass {
				t.Fatalf("GetFolder: %v (class %q), want class %q", err, got, tc.wantClass)
			}
			if n := negotiates.Load(); n != tc.negotiates {
				t.Fatalf("%d handshakes, want %d", n, tc.negotiates)
			}
		})
	}
}
