package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/metric"
)

func TestCapabilitiesBeforeAndAfterTLS(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	u := r.expectOK("CAPABILITY")
	mustHave(t, u, "IMAP4rev2", "IMAP4rev1", "STARTTLS", "LOGINDISABLED")
	mustNotHave(t, u, "AUTH=")
	// RFC 9051 §6.2.3: no LOGIN before TLS.
	r.expectStatus("LOGIN alice@example.com \"correct horse\"", "NO [PRIVACYREQUIRED]")
	r.expectStatus("AUTHENTICATE PLAIN "+plain(alice, alicePW), "NO [PRIVACYREQUIRED]")

	r.starttls(e.client)
	u = r.expectOK("CAPABILITY")
	mustHave(t, u, "AUTH=PLAIN")
	mustNotHave(t, u, "LOGINDISABLED")
	mustNotHave(t, u, "STARTTLS")
	r.expectOK("LOGIN alice@example.com \"correct horse\"")
	u = r.expectOK("CAPABILITY")
	for _, c := range []string{"IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "SPECIAL-USE", "CREATE-SPECIAL-USE",
		"LIST-EXTENDED", "LIST-STATUS", "ESEARCH", "SEARCHRES", "LITERAL+", "ENABLE", "UNSELECT", "BINARY",
		"APPENDLIMIT=52428800", "STATUS=SIZE", "CHILDREN", "UTF8=ACCEPT", "SASL-IR",
		"QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "ID"} { // CONDSTORE, QRESYNC: condstore_test.go
		mustHave(t, u, " "+c)
	}
}

func plain(user, pw string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pw))
}

func TestLoginByAliasAndAuthenticatePlain(t *testing.T) {
	e := newEnv(t)
	r := e.rawTLS()
	r.expectOK("LOGIN al@example.com \"correct horse\"")
	r.expectOK("SELECT INBOX")

	// AUTHENTICATE PLAIN with SASL-IR (RFC 4959) and without.
	r2 := e.rawTLS()
	r2.expectOK("AUTHENTICATE PLAIN " + plain(bob, bobPW))
	r3 := e.rawTLS()
	r3.send("a AUTHENTICATE PLAIN\r\n")
	if l := r3.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("want continuation, got %q", l)
	}
	r3.send(plain(alice, alicePW) + "\r\n")
	if _, st := r3.readUntil("a"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("AUTHENTICATE: %q", st)
	}
}

func TestLoginRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	carol, err := e.dir.CreateUser(ctx, directory.User{Address: "carol@example.com", Protocols: []directory.Protocol{directory.ProtoSMTP}}, "pw-carol")
	if err != nil {
		t.Fatal(err)
	}
	_ = carol
	dave, err := e.dir.CreateUser(ctx, directory.User{Address: "dave@example.com"}, "pw-dave")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.dir.SetDisabled(ctx, dave.ID, true); err != nil {
		t.Fatal(err)
	}
	r := e.rawTLS()
	r.expectStatus("LOGIN alice@example.com wrong", "NO [AUTHENTICATIONFAILED]")
	r.expectStatus("LOGIN nobody@example.com wrong", "NO [AUTHENTICATIONFAILED]")
	r.expectStatus("LOGIN carol@example.com pw-carol", "NO [AUTHORIZATIONFAILED]")
	r.expectStatus("LOGIN dave@example.com pw-dave", "NO [CONTACTADMIN]")
	// The session is still usable after refusals.
	r.expectOK("LOGIN alice@example.com \"correct horse\"")
}

func TestAuthFailuresSlowDownAndBlock(t *testing.T) {
	e := newEnv(t)
	r := e.rawTLS()
	var delayed time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		r.expectStatus("LOGIN bob@example.com wrong", "NO [AUTHENTICATIONFAILED]")
		if i >= 2 {
			delayed += time.Since(start)
		}
	}
	if delayed < 25*time.Millisecond {
		t.Errorf("failures beyond the free ones were not delayed (%v in total)", delayed)
	}
	// Blocked now: even the right password is refused without a check.
	r.expectStatus("LOGIN bob@example.com \"battery staple\"", "NO [UNAVAILABLE]")
	// The shared limiter is what blocks: a new connection is refused too.
	r2 := e.rawTLS()
	r2.expectStatus("LOGIN bob@example.com \"battery staple\"", "NO [UNAVAILABLE]")
}

func TestInsecureAuthWhenAllowed(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AllowInsecureAuth = true })
	r := e.raw()
	u := r.expectOK("CAPABILITY")
	mustNotHave(t, u, "LOGINDISABLED")
	r.expectOK("LOGIN alice@example.com \"correct horse\"")
}

// TestStartTLSInjectionIsNotExecuted: what a client sends in the same
// packet as STARTTLS is plaintext a man in the middle may have injected;
// it is discarded (RFC 9051 §11.1, CVE-2011-0411), never run, and the TLS
// handshake that follows succeeds.
func TestStartTLSInjectionIsNotExecuted(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AllowInsecureAuth = true })
	r := e.raw()
	// A man in the middle appends a command to STARTTLS in clear text.
	r.send("a STARTTLS\r\nb LOGIN alice@example.com \"correct horse\"\r\n")
	if l := r.line(); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	if n := r.r.Buffered(); n != 0 {
		t.Fatalf("%d bytes of plaintext after STARTTLS's OK (the injected command was answered)", n)
	}
	tc := tls.Client(r.conn, e.client)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake after injected plaintext: %v", err)
	}
	r.conn, r.r = tc, bufio.NewReader(tc)
	// Not logged in by the injected LOGIN.
	r.expectStatus("SELECT INBOX", "BAD")
	r.expectOK("LOGIN alice@example.com \"correct horse\"")
}

func TestMetricsCountLogins(t *testing.T) {
	// newEnv starts a plain and a TLS server: each reports to its own.
	plain, secure := &metric.Recorder{}, &metric.Recorder{}
	e := newEnv(t, func(o *Options) {
		if o.ImplicitTLS {
			o.Metrics = secure
		} else {
			o.Metrics = plain
		}
	})
	r := e.rawTLS()
	r.expectStatus("LOGIN alice@example.com wrong", "NO")
	r.expectOK("LOGIN alice@example.com \"correct horse\"")
	for _, c := range []struct {
		rec          *metric.Recorder
		name         string
		label, value string
		want         float64
	}{
		{secure, "mailyard_imap_auth_total", "result", "failure", 1},
		{secure, "mailyard_imap_auth_total", "result", "success", 1},
		{secure, "mailyard_imap_connections_total", "result", "accepted", 1},
		{plain, "mailyard_imap_auth_total", "result", "success", 0},
	} {
		if got, _ := c.rec.Value(c.name, map[string]string{c.label: c.value}); got != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, got, c.want)
		}
	}
	if _, err := New(Options{Backend: e.st, Auth: e.dir, Metrics: secure}); err == nil {
		t.Error("New succeeded with a Metrics that refused its families (declared twice)")
	}
}
