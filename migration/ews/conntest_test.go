package ews_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
)

// testOptions are the options clientFor uses for srv, for ews.Test.
func testOptions(t *testing.T, srv *httptest.Server, change func(*ews.Options)) ews.Options {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	allow, err := migration.NewAllowlist([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	o := ews.Options{URL: srv.URL + "/EWS/Exchange.asmx", Version: ews.Exchange2016, Auth: ews.AuthBasic,
		Access: ews.AccessImpersonation, Username: svcLogin, Password: svcPass,
		CAFile: ca, Allowlist: allow, MinTLSVersion: tls.VersionTLS12}
	if change != nil {
		change(&o)
	}
	return o
}

// TestConnectionTest runs ews.Test against the test server for each
// failure it names and for success.
func TestConnectionTest(t *testing.T) {
	ctx := context.Background()
	srv := newTestServer(t, ewstest.Options{})
	if err := srv.ews.AddUser(ewstest.User{Login: "svc-noimp", Password: svcPass, SMTP: "svc-noimp@example.test"}); err != nil {
		t.Fatal(err)
	}
	// A TLS 1.2-only server, as Exchange 2013 without TLS 1.3.
	old := httptest.NewUnstartedServer(srv.ews)
	old.TLS = &tls.Config{MaxVersion: tls.VersionTLS12}
	old.StartTLS()
	t.Cleanup(old.Close)
	// A closed port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		name    string
		srv     *httptest.Server
		change  func(*ews.Options)
		mailbox string
		stage   ews.Stage
		class   migration.ErrorClass
		want    string
	}{
		{name: "ok basic", srv: srv.hs, mailbox: owner, stage: ews.StageOK},
		{name: "ok ntlm", srv: srv.hs, mailbox: owner, stage: ews.StageOK, change: func(o *ews.Options) {
			o.Auth, o.Username = ews.AuthNTLM, `EXAMPLE\`+svcLogin
		}},
		{name: "ok tls 1.2 server", srv: old, mailbox: owner, stage: ews.StageOK},
		{name: "config", srv: srv.hs, stage: ews.StageConfig, class: migration.ErrClassConfig, want: "authentication", change: func(o *ews.Options) { o.Auth = "kerberos" }},
		{name: "dns", srv: srv.hs, stage: ews.StageDNS, class: migration.ErrClassConnection, want: "resolving", change: func(o *ews.Options) {
			o.URL = "https://ews.mailyard.invalid/EWS/Exchange.asmx"
		}},
		{name: "allowlist", srv: srv.hs, stage: ews.StageAllowlist, class: migration.ErrClassConfig, want: "allowlist", change: func(o *ews.Options) {
			o.Allowlist, _ = migration.NewAllowlist([]string{"10.0.0.0/8"})
		}},
		{name: "tcp", srv: srv.hs, stage: ews.StageTCP, class: migration.ErrClassConnection, want: "connecting", change: func(o *ews.Options) {
			o.URL = "https://" + closed + "/EWS/Exchange.asmx"
		}},
		{name: "tls version", srv: old, stage: ews.StageTLS, class: migration.ErrClassConnection, want: "no TLS version in common", change: func(o *ews.Options) {
			o.MinTLSVersion = tls.VersionTLS13
		}},
		{name: "tls untrusted", srv: srv.hs, stage: ews.StageTLS, class: migration.ErrClassConnection, want: "not trusted", change: func(o *ews.Options) { o.CAFile = "" }},
		{name: "auth basic", srv: srv.hs, stage: ews.StageAuth, class: migration.ErrClassAuth, want: "401", change: func(o *ews.Options) { o.Password = "wrong" }},
		{name: "auth ntlm", srv: srv.hs, stage: ews.StageAuth, class: migration.ErrClassAuth, want: "401", change: func(o *ews.Options) {
			o.Auth, o.Username, o.Password = ews.AuthNTLM, `EXAMPLE\`+svcLogin, "wrong"
		}},
		{name: "request", srv: srv.hs, stage: ews.StageRequest, class: migration.ErrClassConfig, want: "ErrorInvalidServerVersion", change: func(o *ews.Options) {
			o.Version = ews.Exchange2019
		}},
		{name: "impersonation", srv: srv.hs, mailbox: owner, stage: ews.StageImpersonation, class: migration.ErrClassAuth, want: "impersonation access to " + owner, change: func(o *ews.Options) {
			o.Username = "svc-noimp"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := ews.Test(ctx, testOptions(t, tc.srv, tc.change), tc.mailbox)
			if rep.Stage != tc.stage {
				t.Fatalf("stage %q (%v), want %q", rep.Stage, rep.Err, tc.stage)
			}
			if tc.stage == ews.StageOK {
				if rep.Err != nil || rep.Addr == "" || rep.TLSVersion == "" || rep.Server.Version != "Exchange2016" || rep.Server.Major != 15 {
					t.Fatalf("report %+v", rep)
				}
				if tc.srv == old && rep.TLSVersion != "TLS 1.2" {
					t.Fatalf("negotiated %s with a TLS 1.2 server", rep.TLSVersion)
				}
				return
			}
			if rep.Err == nil || !strings.Contains(rep.Err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", rep.Err, tc.want)
			}
			if got := migration.ClassOf(rep.Err); got != tc.class {
				t.Fatalf("class %v, want %v (%v)", got, tc.class, rep.Err)
			}
		})
	}
}
