package smtp

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/internal/testclock"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestSubmissionRequiresTLSThenAuth(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS})

	r := dialRaw(t, ts.addr)
	caps := r.expect("EHLO client.test", 250)
	if strings.Contains(caps, "AUTH") {
		t.Errorf("AUTH announced before TLS:\n%s", caps)
	}
	if !strings.Contains(caps, "STARTTLS") {
		t.Errorf("STARTTLS not announced:\n%s", caps)
	}
	if code, text := r.cmd("AUTH PLAIN " + b64("\x00alice@example.test\x00alice-pw")); code/100 != 5 {
		t.Errorf("AUTH before TLS: %d %s, want a 5xx refusal", code, text)
	}
	if code, text := r.cmd("MAIL FROM:<alice@example.test>"); code != 530 || !strings.Contains(text, "STARTTLS") {
		t.Errorf("MAIL before TLS: %d %s, want 530 must issue STARTTLS", code, text)
	}

	c := ts.tlsClient(t, clientTLS)
	if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
		t.Errorf("AUTH after TLS: %v %q, want PLAIN LOGIN", ok, mechs)
	}
	wantCode(t, c.Mail("alice@example.test", nil), 530, "5.7.0")
}

func TestSubmissionAuthMechanisms(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS})

	t.Run("PLAIN", func(t *testing.T) {
		c := ts.authClient(t, clientTLS, "alice@example.test", "alice-pw")
		if err := send(c, "alice@example.test", []string{"bob@example.test"}, "From: alice@example.test\r\n\r\nhi\r\n"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("LOGIN", func(t *testing.T) {
		c := ts.tlsClient(t, clientTLS)
		if err := c.Auth(sasl.NewLoginClient("bob@example.test", "bob-pw")); err != nil {
			t.Fatal(err)
		}
		if err := send(c, "bob@example.test", []string{"alice@example.test"}, "From: Bob <bob@example.test>\r\n\r\nhi\r\n"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("LOGIN with initial response", func(t *testing.T) {
		c := ts.tlsClient(t, clientTLS)
		// go-smtp's client sends the username as initial response.
		if err := c.Auth(sasl.NewLoginClient("bob@example.test", "wrong")); err == nil {
			t.Fatal("wrong password accepted")
		}
	})
	t.Run("PLAIN with foreign authzid", func(t *testing.T) {
		c := ts.tlsClient(t, clientTLS)
		wantCode(t, c.Auth(sasl.NewPlainClient("bob@example.test", "alice@example.test", "alice-pw")), 535, "5.7.8")
	})
	t.Run("disabled and not allowed", func(t *testing.T) {
		c := ts.tlsClient(t, clientTLS)
		err := c.Auth(sasl.NewPlainClient("", "dave@example.test", "dave-pw"))
		wantCode(t, err, 535, "5.7.8")
		if !strings.Contains(err.Error(), "disabled") {
			t.Errorf("reply %v does not say the account is disabled", err)
		}
		err = c.Auth(sasl.NewPlainClient("", "erin@example.test", "erin-pw"))
		wantCode(t, err, 535, "5.7.8")
	})
	if n := len(ts.store.stored()); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}
	if body := ts.store.body(t, 0); !strings.Contains(body, " with ESMTPSA id ") {
		t.Errorf("Received does not say ESMTPSA (RFC 3848):\n%s", body)
	}
}

func TestSubmissionSenderChecks(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS, MaxHeaderBytes: 1024})
	c := ts.authClient(t, clientTLS, "alice@example.test", "alice-pw")
	to := []string{"bob@example.test"}

	wantCode(t, c.Mail("bob@example.test", nil), 553, "5.7.1")
	wantCode(t, c.Mail("", nil), 553, "5.7.1")

	cases := []struct {
		name, from, msg string
		code            int
		enh             string
	}{
		{"own address", "alice@example.test", "From: Alice <alice@example.test>\r\nSubject: ok\r\n\r\nhi\r\n", 250, ""},
		{"alias, other case", "Alice@ALT.test", "From: alice@alt.test\r\n\r\nhi\r\n", 250, ""},
		{"send-as group", "team@example.test", "From: Team <team@example.test>\r\n\r\nhi\r\n", 250, ""},
		{"sub-address", "alice+lists@example.test", "From: alice+lists@example.test\r\n\r\nhi\r\n", 250, ""},
		{"forged From", "alice@example.test", "From: Bob <bob@example.test>\r\n\r\nhi\r\n", 550, "5.7.1"},
		{"forged second author", "alice@example.test", "From: alice@example.test, bob@example.test\r\nSender: alice@example.test\r\n\r\nhi\r\n", 550, "5.7.1"},
		{"two authors own", "alice@example.test", "From: alice@example.test, alice@alt.test\r\nSender: alice@example.test\r\n\r\nhi\r\n", 250, ""},
		{"two authors no Sender", "alice@example.test", "From: alice@example.test, alice@alt.test\r\n\r\nhi\r\n", 550, "5.6.0"},
		{"forged Sender", "alice@example.test", "From: alice@example.test\r\nSender: bob@example.test\r\n\r\nhi\r\n", 550, "5.7.1"},
		{"two From fields", "alice@example.test", "From: alice@example.test\r\nFrom: bob@example.test\r\n\r\nhi\r\n", 550, "5.6.0"},
		{"no From", "alice@example.test", "Subject: x\r\n\r\nFrom: alice@example.test\r\n", 550, "5.6.0"},
		{"From in body only", "alice@example.test", "\r\nFrom: alice@example.test\r\n", 550, "5.6.0"},
		{"bare LF header", "alice@example.test", "From: bob@example.test\nSubject: x\n\nhi\n", 550, "5.7.1"},
		{"folded forged From", "alice@example.test", "From: alice@example.test\r\nX-A: b\r\nFrom:\r\n bob@example.test\r\n\r\nhi\r\n", 550, "5.6.0"},
		{"header block too large", "alice@example.test", "From: alice@example.test\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 60)+"\r\n", 20) + "\r\nhi\r\n", 552, "5.3.4"},
	}
	want := 0
	for _, tc := range cases {
		err := send(c, tc.from, to, tc.msg)
		if tc.code == 250 {
			want++
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if code, enh := smtpCode(err); code != tc.code || enh != tc.enh {
			t.Errorf("%s: %v, want %d %s", tc.name, err, tc.code, tc.enh)
		}
	}
	if n := len(ts.store.stored()); n != want {
		t.Errorf("%d messages stored, want %d", n, want)
	}
	if n := ts.store.files(t); n != want {
		t.Errorf("%d files in the store, want %d", n, want)
	}
}

func TestSubmissionRemoteRecipientRefusedTemporarily(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS})
	c := ts.authClient(t, clientTLS, "alice@example.test", "alice-pw")
	if err := c.Mail("alice@example.test", nil); err != nil {
		t.Fatal(err)
	}
	err := c.Rcpt("friend@remote.test", nil)
	wantCode(t, err, 451, "4.3.2")
	if !strings.Contains(err.Error(), "outbound delivery is not available on this server yet") {
		t.Errorf("reply %v", err)
	}
	// Local recipients in the same transaction still work.
	if err := c.Rcpt("bob@example.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("From: alice@example.test\r\n\r\nhi\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rc := ts.store.stored()[0].Delivery.Recipients; len(rc) != 1 || rc[0].Account != "bob" {
		t.Errorf("recipients %v, want bob only", rc)
	}
}

func TestSubmissionsImplicitTLS(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	ts := startServer(t, Options{Mode: ModeSubmissions, TLSConfig: serverTLS})
	c, err := gosmtp.DialTLS(ts.addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS announced inside implicit TLS")
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.test", "alice-pw")); err != nil {
		t.Fatal(err)
	}
	if err := send(c, "alice@example.test", []string{"bob@example.test"}, "From: alice@example.test\r\n\r\nhi\r\n"); err != nil {
		t.Fatal(err)
	}
	if body := ts.store.body(t, 0); !strings.Contains(body, " with ESMTPSA id ") {
		t.Errorf("Received:\n%s", body)
	}
}

// rawTLS dials from source (a loopback address, "" for any), does
// STARTTLS and EHLO, and returns a raw client on the TLS connection.
func (ts *testServer) rawTLS(t *testing.T, clientTLS *tls.Config, source string) *rawClient {
	t.Helper()
	r := dialRawFrom(t, ts.addr, source)
	r.expect("EHLO client.test", 250)
	r.expect("STARTTLS", 220)
	tc := tls.Client(r.conn, clientTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s := &rawClient{t: t, conn: tc, r: bufioReader(tc)}
	s.expect("EHLO client.test", 250)
	return s
}

func authPlain(login, password string) string {
	return "AUTH PLAIN " + b64("\x00"+login+"\x00"+password)
}

// TestAuthFailuresDelayThenBlock: repeated failures from one client are
// answered more and more slowly, then the client is blocked (454) even for
// a correct password, until the block period ends.
func TestAuthFailuresDelayThenBlock(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	clk := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	lim := authlimit.New(authlimit.Policy{Client: authlimit.Backoff{Free: 1, BaseDelay: 150 * time.Millisecond,
		MaxDelay: 300 * time.Millisecond, BlockAfter: 4, BlockFor: time.Hour}, Now: clk.Now})
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS, AuthLimiter: lim})
	c := ts.rawTLS(t, clientTLS, "")

	var took []time.Duration
	for i := range 4 {
		clk.Add(time.Second) // the delay has passed on the limiter's clock
		start := time.Now()
		code, text := c.cmd(authPlain(fmt.Sprintf("user%d@example.test", i), "guess"))
		took = append(took, time.Since(start))
		if code != 535 || !strings.HasPrefix(text, "5.7.8") {
			t.Fatalf("failure %d: %d %s, want 535 5.7.8", i+1, code, text)
		}
	}
	if took[0] > 100*time.Millisecond {
		t.Errorf("first failure delayed %v", took[0])
	}
	if took[1] < 150*time.Millisecond || took[2] < 300*time.Millisecond {
		t.Errorf("failures not delayed increasingly: %v", took)
	}
	// Blocked: the right password does not help.
	for _, login := range []string{"alice@example.test", "bob@example.test"} {
		pw := strings.TrimSuffix(login, "@example.test") + "-pw"
		if code, text := c.cmd(authPlain(login, pw)); code != 454 || !strings.HasPrefix(text, "4.7.0") {
			t.Fatalf("blocked client, correct password for %s: %d %s, want 454 4.7.0", login, code, text)
		}
	}
	// Another client is not blocked, and its success ...
	other := ts.rawTLS(t, clientTLS, "127.0.0.2")
	other.expect(authPlain("bob@example.test", "bob-pw"), 235)
	// ... does not lift the first client's block; a new connection from
	// the blocked address does not either ...
	again := ts.rawTLS(t, clientTLS, "")
	again.expect(authPlain("bob@example.test", "bob-pw"), 454)
	// ... the end of the block period does.
	clk.Add(time.Hour + time.Second)
	c.expect(authPlain("bob@example.test", "bob-pw"), 235)
}

// TestAuthStrangersShareLoginBudget: clients with failures share one
// budget of password checks per login (compared case-insensitively); when
// it is spent they are refused without a check, while a client without
// failures still logs in.
func TestAuthStrangersShareLoginBudget(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	fast := authlimit.Backoff{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	lim := authlimit.New(authlimit.Policy{StrangerChecks: 2, Client: fast, Pair: fast})
	auth := newTestAuth()
	auth.users["carol@example.test"] = testUser{password: "carol-pw"}
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS, AuthLimiter: lim, Auth: auth})
	a := ts.rawTLS(t, clientTLS, "127.0.0.3")
	a.expect(authPlain("carol@example.test", "wrong"), 535) // fresh
	a.expect(authPlain("carol@example.test", "wrong"), 535) // budget 1 of 2
	b := ts.rawTLS(t, clientTLS, "127.0.0.4")
	b.expect(authPlain("carol@example.test", "wrong"), 535) // fresh
	b.expect(authPlain("CAROL@example.test", "wrong"), 535) // budget 2 of 2
	a.expect(authPlain("Carol@Example.test", "carol-pw"), 454)
	b.expect(authPlain("carol@example.test", "wrong"), 454)
	// Another login's budget is untouched.
	a.expect(authPlain("alice@example.test", "alice-pw"), 235)
	ts.rawTLS(t, clientTLS, "127.0.0.6").expect(authPlain("Carol@Example.test", "carol-pw"), 235)
	st := lim.Stats()
	if st.Checks[authlimit.Stranger] != 3 || st.Refused[authlimit.ReasonLoginThrottled] != 2 {
		t.Fatalf("stats %+v: want 3 stranger checks (2 for carol, 1 for alice) and 2 throttled", st)
	}
}

func TestAuthDuringTransactionRefused(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS})
	c := ts.authClient(t, clientTLS, "alice@example.test", "alice-pw")
	if err := c.Mail("alice@example.test", nil); err != nil {
		t.Fatal(err)
	}
	// go-smtp refuses a second AUTH outright; either way not 235.
	if err := c.Auth(sasl.NewPlainClient("", "bob@example.test", "bob-pw")); err == nil {
		t.Fatal("AUTH accepted during a transaction")
	}
}

// TestSubmissionBDATHeaderCheck: the From: check also applies to CHUNKING,
// where the header block may span chunks, and a refusal leaves the session
// usable.
func TestSubmissionBDATHeaderCheck(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS})
	c := ts.rawTLS(t, clientTLS, "")
	c.expect(authPlain("alice@example.test", "alice-pw"), 235)
	bdat := func(chunks ...string) (int, string) {
		for i, ch := range chunks {
			last := ""
			if i == len(chunks)-1 {
				last = " LAST"
			}
			c.write(fmt.Sprintf("BDAT %d%s\r\n%s", len(ch), last, ch))
			code, text := c.reply()
			if last == "" && code != 250 {
				return code, text
			}
			if last != "" {
				return code, text
			}
		}
		return 0, ""
	}
	c.expect("MAIL FROM:<alice@example.test>", 250)
	c.expect("RCPT TO:<bob@example.test>", 250)
	if code, text := bdat("Subject: x\r\nFr", "om: bob@exam", "ple.test\r\n\r\nhi\r\n"); code != 550 || !strings.HasPrefix(text, "5.7.1") {
		t.Errorf("forged From over BDAT: %d %s, want 550 5.7.1", code, text)
	}
	c.expect("NOOP", 250)
	c.expect("MAIL FROM:<alice@example.test>", 250)
	c.expect("RCPT TO:<bob@example.test>", 250)
	if code, text := bdat("From: al", "ice@example.test\r\n\r\nhi\r\n"); code != 250 {
		t.Errorf("own From over BDAT: %d %s", code, text)
	}
	if n := len(ts.store.stored()); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}
