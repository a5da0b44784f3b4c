package smtp

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/store"
)

const testMsg = "From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: hello\r\n\r\nHi Alice.\r\n"

func TestMXAnnouncesExtensions(t *testing.T) {
	ts := startServer(t, Options{MaxMessageBytes: 1 << 20})
	c := ts.client(t)
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING", "ENHANCEDSTATUSCODES"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("%s not announced", ext)
		}
	}
	if ok, arg := c.Extension("SIZE"); !ok || arg != "1048576" {
		t.Errorf("SIZE %q, want 1048576", arg)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH announced on MX")
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS announced without a TLS config")
	}
}

func TestMXDeliversToLocalAccounts(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.client(t)
	// alice twice (directly, through the alt domain) and through a group:
	// one copy per account.
	err := send(c, "sender@remote.test", []string{"alice@example.test", "ALICE@alt.test", "team@example.test"}, testMsg)
	if err != nil {
		t.Fatal(err)
	}
	msgs := ts.store.stored()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	got := msgs[0].Delivery.Recipients
	want := []store.Recipient{{Account: "alice"}, {Account: "bob"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("recipients %v, want %v (one per distinct account)", got, want)
	}
	body := ts.store.body(t, 0)
	if !strings.HasPrefix(body, "Return-Path: <sender@remote.test>\r\nReceived: from client.test (unknown [127.0.0.1])\r\n\tby mx.example.test (Mailyard) with ESMTP id ") {
		t.Errorf("trace header fields missing or wrong:\n%s", body)
	}
	if strings.Contains(body, "\tfor <") {
		t.Error("Received has a for clause although there are several recipients")
	}
	if !strings.HasSuffix(body, testMsg) {
		t.Errorf("message not stored verbatim after the trace fields:\n%q", body)
	}
}

func TestMXReplyAndReceivedForOneRecipient(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600))
	ts := startServer(t, Options{Now: func() time.Time { return now }})
	r := dialRaw(t, ts.addr)
	r.expect("EHLO client.test", 250)
	r.expect("MAIL FROM:<>", 250) // null sender: bounces must be accepted (RFC 5321 §4.5.5)
	r.expect("RCPT TO:<Bob@Example.test>", 250)
	r.expect("DATA", 354)
	text := r.expect("Subject: bounce\r\n\r\nbody\r\n.", 250)
	m := regexp.MustCompile(`^2\.0\.0 message accepted, id ([A-Z2-7]{16})$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("250 reply %q does not carry the message id", text)
	}
	want := "Return-Path: <>\r\n" +
		"Received: from client.test (unknown [127.0.0.1])\r\n" +
		"\tby mx.example.test (Mailyard) with ESMTP id " + m[1] + "\r\n" +
		"\tfor <Bob@Example.test>;\r\n" +
		"\tTue, 04 Mar 2025 05:06:07 +0100\r\n" +
		"Subject: bounce\r\n\r\nbody\r\n"
	if got := ts.store.body(t, 0); got != want {
		t.Errorf("stored\n%q\nwant\n%q", got, want)
	}
	if d := ts.store.stored()[0].Delivery; !d.InternalDate.Equal(now) {
		t.Errorf("internal date %v, want the injected clock's %v", d.InternalDate, now)
	}
}

func TestMXSTARTTLSThenESMTPS(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	ts := startServer(t, Options{TLSConfig: serverTLS})
	plain := ts.client(t)
	if ok, _ := plain.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not announced")
	}
	c := ts.tlsClient(t, clientTLS)
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH announced on MX after STARTTLS")
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.test", "alice-pw")); err == nil {
		t.Error("AUTH accepted on MX")
	}
	if err := send(c, "sender@remote.test", []string{"alice@example.test"}, testMsg); err != nil {
		t.Fatal(err)
	}
	if body := ts.store.body(t, 0); !strings.Contains(body, " with ESMTPS id ") {
		t.Errorf("Received does not say ESMTPS (RFC 3848):\n%s", body)
	}
}

func TestMXUnknownRecipientUsesDecisionReply(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.client(t)
	if err := c.Mail("sender@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	err := c.Rcpt("nobody@example.test", nil)
	wantCode(t, err, 550, "5.1.1")
	if !strings.Contains(err.Error(), "no such user (unknown-recipient)") {
		t.Errorf("reply %q does not give the reason and rule", err)
	}
}

func TestMXRoutingErrorIsTemporary(t *testing.T) {
	ts := startServer(t, Options{})
	ts.router.err = errors.New("directory down: secret-db.internal:5432")
	c := ts.client(t)
	if err := c.Mail("sender@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	err := c.Rcpt("alice@example.test", nil)
	wantCode(t, err, 451, "4.4.3")
	if strings.Contains(err.Error(), "secret-db") {
		t.Errorf("internal detail leaked: %v", err)
	}
}

// TestMXOpenRelayVariants: without authentication nothing reaches a remote
// host, whatever the address syntax, and whether the router interprets
// relay syntax (Relay decisions) or delivers everything in a hosted
// domain to a catch-all.
func TestMXOpenRelayVariants(t *testing.T) {
	variants := []struct{ name, from, rcpt string }{
		{"plain remote", "sender@remote.test", "victim@remote.test"},
		{"percent hack", "sender@remote.test", "victim%remote.test@example.test"},
		{"bang path", "sender@remote.test", "remote.test!victim@example.test"},
		{"quoted local part", "sender@remote.test", `"victim@remote.test"@example.test`},
		{"source route", "sender@remote.test", "@example.test:victim@remote.test"},
		{"source route two hops", "sender@remote.test", "@example.test,@alt.test:victim@remote.test"},
		{"IP literal", "sender@remote.test", "victim@[127.0.0.1]"},
		{"IPv6 literal", "sender@remote.test", "victim@[IPv6:::1]"},
		{"null sender", "", "victim@remote.test"},
		{"null sender percent hack", "", "victim%remote.test@example.test"},
	}
	routers := map[string]func(*testRouter){
		"relay-syntax router": func(r *testRouter) { r.relaySyntax = true },
		"catch-all router":    func(r *testRouter) { r.catchAll = "postmaster" },
	}
	for rname, setup := range routers {
		t.Run(rname, func(t *testing.T) {
			router := newTestRouter()
			setup(router)
			ts := startServer(t, Options{Router: router})
			for _, v := range variants {
				t.Run(v.name, func(t *testing.T) {
					r := dialRaw(t, ts.addr)
					r.expect("EHLO client.test", 250)
					r.expect("MAIL FROM:<"+v.from+">", 250)
					code, text := r.cmd("RCPT TO:<" + v.rcpt + ">")
					if code != 554 || !strings.HasPrefix(text, "5.7.1 ") || !strings.Contains(text, "relay access denied") {
						t.Errorf("RCPT TO:<%s>: %d %s, want 554 5.7.1 relay access denied", v.rcpt, code, text)
					}
					if code, _ := r.cmd("DATA"); code == 354 {
						t.Error("DATA accepted without a recipient")
					}
				})
			}
			if n := len(ts.store.stored()); n != 0 {
				t.Errorf("%d messages stored", n)
			}
		})
	}
}

func TestMXListWithRemoteMemberIsRefusedTemporarily(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.client(t)
	err := send(c, "sender@remote.test", []string{"mixed@example.test"}, testMsg)
	wantCode(t, err, 451, "4.3.2")
	if !strings.Contains(err.Error(), "outbound delivery is not available") {
		t.Errorf("reply %q", err)
	}
}

func TestMXRecipientLimit(t *testing.T) {
	ts := startServer(t, Options{MaxRecipients: 3})
	c := ts.client(t)
	if err := c.Mail("sender@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"alice@example.test", "bob@example.test", "carol@example.test"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, c.Rcpt("alice@alt.test", nil), 452, "4.5.3")
}

func TestMXBadAddressSyntax(t *testing.T) {
	ts := startServer(t, Options{})
	r := dialRaw(t, ts.addr)
	r.expect("EHLO client.test", 250)
	r.expect("MAIL FROM:<a@b>", 250)
	long := strings.Repeat("a", 250) + "@example.test"
	for _, rcpt := range []string{long, "\"a\rb\"@example.test"} {
		code, text := r.cmd("RCPT TO:<" + rcpt + ">")
		if code != 553 || !strings.HasPrefix(text, "5.1.3") {
			t.Errorf("RCPT TO:<%q>: %d %s, want 553 5.1.3", rcpt, code, text)
		}
	}
	code, text := r.cmd("MAIL FROM:<" + long + ">")
	if code != 553 || !strings.HasPrefix(text, "5.1.7") {
		t.Errorf("long sender: %d %s, want 553 5.1.7", code, text)
	}
}

func TestMXSizeLimits(t *testing.T) {
	ts := startServer(t, Options{MaxMessageBytes: 2000})
	c := ts.client(t)

	// Declared too large: refused at MAIL (RFC 1870 §6.1).
	err := c.Mail("sender@remote.test", &gosmtp.MailOptions{Size: 2001})
	wantCode(t, err, 552, "5.3.4")

	// Actually too large: refused at the end of DATA, nothing kept.
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 40)
	err = send(c, "sender@remote.test", []string{"alice@example.test"}, big)
	wantCode(t, err, 552, "5.3.4")
	if n := ts.store.files(t); n != 0 {
		t.Errorf("%d files left in the store after an oversize message", n)
	}

	// The session goes on.
	if err := send(c, "sender@remote.test", []string{"alice@example.test"}, testMsg); err != nil {
		t.Fatalf("message after an oversize one: %v", err)
	}
	if n := len(ts.store.stored()); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

func TestMXBDAT(t *testing.T) {
	ts := startServer(t, Options{MaxMessageBytes: 100})
	r := dialRaw(t, ts.addr)
	r.expect("EHLO client.test", 250)
	r.expect("MAIL FROM:<sender@remote.test>", 250)
	r.expect("RCPT TO:<alice@example.test>", 250)
	part1 := "Subject: chunks\r\n\r\n"
	part2 := "line one\r\n.\r\nline three\r\n" // a dot line is content in BDAT (RFC 3030)
	r.write(fmt.Sprintf("BDAT %d\r\n%s", len(part1), part1))
	if code, text := r.reply(); code != 250 {
		t.Fatalf("BDAT chunk: %d %s", code, text)
	}
	r.write(fmt.Sprintf("BDAT %d LAST\r\n%s", len(part2), part2))
	if code, text := r.reply(); code != 250 {
		t.Fatalf("BDAT LAST: %d %s", code, text)
	}
	if body := ts.store.body(t, 0); !strings.HasSuffix(body, "\r\n\r\n"+part2) {
		t.Errorf("stored %q", body)
	}

	// Over the size limit across chunks.
	r.expect("MAIL FROM:<sender@remote.test>", 250)
	r.expect("RCPT TO:<alice@example.test>", 250)
	chunk := strings.Repeat("y", 60)
	r.write(fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk))
	r.reply()
	r.write(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	if code, text := r.reply(); code != 552 || !strings.HasPrefix(text, "5.3.4") {
		t.Errorf("oversize BDAT: %d %s, want 552 5.3.4", code, text)
	}
	r.expect("NOOP", 250)
	if n := len(ts.store.stored()); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

func TestMXQuotaAndStoreErrors(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.client(t)

	ts.store.fail = fmt.Errorf("sqlite: tx: %w", &store.QuotaError{Accounts: []string{"alice"}, Resource: "STORAGE"})
	err := send(c, "sender@remote.test", []string{"alice@example.test"}, testMsg)
	wantCode(t, err, 552, "5.2.2")

	ts.store.fail = errors.New("disk I/O error at /var/lib/mailyard/blobs/ab/cd")
	err = send(c, "sender@remote.test", []string{"alice@example.test"}, testMsg)
	wantCode(t, err, 451, "4.3.0")
	if strings.Contains(err.Error(), "/var/lib") || strings.Contains(err.Error(), "disk") {
		t.Errorf("store internals leaked to the client: %v", err)
	}
	if n := ts.store.files(t); n != 0 {
		t.Errorf("%d files stored", n)
	}
}

func TestMXLineTooLong(t *testing.T) {
	ts := startServer(t, Options{MaxLineLength: 200})
	r := dialRaw(t, ts.addr)
	r.expect("EHLO client.test", 250)
	r.expect("MAIL FROM:<sender@remote.test>", 250)
	r.expect("RCPT TO:<alice@example.test>", 250)
	r.expect("DATA", 354)
	r.write("Subject: x\r\n\r\n" + strings.Repeat("z", 300) + "\r\n.\r\n")
	code, text := r.reply()
	if code != 554 || !strings.HasPrefix(text, "5.6.0") {
		t.Errorf("long line: %d %s, want 554 5.6.0", code, text)
	}
	if n := ts.store.files(t); n != 0 {
		t.Errorf("%d files stored", n)
	}

	r2 := dialRaw(t, ts.addr)
	code, _ = r2.cmd("EHLO " + strings.Repeat("h", 300))
	if code != 500 {
		t.Errorf("long command: %d, want 500", code)
	}
	if code, _ := r2.reply(); code != 0 {
		t.Errorf("connection still open after an overlong command line (%d)", code)
	}
}

// TestMXSmuggling sends SMTP smuggling payloads: a fake end-of-data
// followed by a second transaction, then the real end-of-data. Exactly one
// message must be stored, containing the would-be second transaction as
// text, with every line ending normalised to CRLF.
func TestMXSmuggling(t *testing.T) {
	fakes := map[string]string{
		`\n.\n`:         "\n.\n",
		`\n.\r\n`:       "\n.\r\n",
		`\r.\r\n`:       "\r.\r\n",
		`\r\n.\r`:       "\r\n.\r",
		`\r\n.\n`:       "\r\n.\n",
		`\r\n\x00.\r\n`: "\r\n\x00.\r\n",
		`\r.\r`:         "\r.\r",
		`\n.\r`:         "\n.\r",
		`\r\n.\r\r\n`:   "\r\n.\r\r\n",
	}
	for name, fake := range fakes {
		t.Run(name, func(t *testing.T) {
			ts := startServer(t, Options{})
			r := dialRaw(t, ts.addr)
			r.expect("EHLO client.test", 250)
			r.write("MAIL FROM:<sender@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
			for _, want := range []int{250, 250, 354} {
				if code, text := r.reply(); code != want {
					t.Fatalf("got %d %s, want %d", code, text, want)
				}
			}
			r.write("Subject: first\r\n\r\nfirst body" + fake +
				"MAIL FROM:<spoof@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n" +
				"From: spoof@example.test\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\nQUIT\r\n")
			code, text := r.reply()
			if code != 250 || !strings.Contains(text, "message accepted") {
				t.Fatalf("end of data: %d %s", code, text)
			}
			if code, text := r.reply(); code != 221 {
				t.Fatalf("after the message: %d %s, want 221 (a smuggled command ran)", code, text)
			}
			msgs := ts.store.stored()
			if len(msgs) != 1 {
				t.Fatalf("%d messages stored, want 1", len(msgs))
			}
			if rc := msgs[0].Delivery.Recipients; len(rc) != 1 || rc[0].Account != "alice" {
				t.Errorf("recipients %v: the smuggled RCPT took effect", rc)
			}
			body := ts.store.body(t, 0)
			if !strings.Contains(body, "Subject: smuggled\r\n\r\nevil\r\n") {
				t.Errorf("message ended at the fake end-of-data:\n%q", body)
			}
			if bare := regexp.MustCompile(`\r[^\n]|[^\r]\n|\r$`).FindStringIndex(body); bare != nil {
				t.Errorf("bare CR or LF stored at %d: %q", bare[0], body)
			}
		})
	}
}

// TestMXSTARTTLSInjection: commands pipelined in the same packet as
// STARTTLS are plaintext an attacker may have injected; they must be
// discarded, not run inside the TLS session (RFC 3207 §4.2,
// CVE-2011-0411).
func TestMXSTARTTLSInjection(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	ts := startServer(t, Options{TLSConfig: serverTLS})
	r := dialRaw(t, ts.addr)
	r.expect("EHLO client.test", 250)
	r.write("STARTTLS\r\nMAIL FROM:<injected@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
	if code, text := r.reply(); code != 220 {
		t.Fatalf("STARTTLS: %d %s", code, text)
	}
	if n := r.r.Buffered(); n != 0 {
		t.Fatalf("%d bytes of plaintext replies after 220 (the injected commands were answered)", n)
	}
	tc := tls.Client(r.conn, clientTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	sr := &rawClient{t: t, conn: tc, r: bufio.NewReader(tc)}
	sr.expect("EHLO client.test", 250)
	code, text := sr.cmd("RCPT TO:<alice@example.test>")
	if code != 502 && code != 503 {
		t.Fatalf("RCPT without MAIL after STARTTLS: %d %s; the injected MAIL FROM was executed", code, text)
	}
	sr.expect("MAIL FROM:<real@remote.test>", 250)
	sr.expect("RCPT TO:<alice@example.test>", 250)
	sr.expect("DATA", 354)
	sr.expect("Subject: real\r\n\r\nreal\r\n.", 250)
	if body := ts.store.body(t, 0); !strings.Contains(body, "Return-Path: <real@remote.test>") {
		t.Errorf("stored with the wrong sender:\n%s", body)
	}
}

func TestConnLimitPerIP(t *testing.T) {
	ts := startServer(t, Options{MaxConnsPerIP: 2})
	a := dialRaw(t, ts.addr)
	dialRaw(t, ts.addr)
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	third := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	code, text := third.reply()
	if code != 421 || !strings.HasPrefix(text, "4.7.0 ") {
		t.Fatalf("third connection: %d %s, want 421 4.7.0", code, text)
	}
	if code, _ := third.reply(); code != 0 {
		t.Error("refused connection left open")
	}
	// Another client address is not affected.
	dialRawFrom(t, ts.addr, "127.0.0.2")

	// A slot frees when a connection ends.
	a.expect("QUIT", 221)
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
		code, _ := c.reply()
		conn.Close()
		if code == 220 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot not freed after QUIT")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTotalConnLimit(t *testing.T) {
	ts := startServer(t, Options{MaxConns: 1, MaxConnsPerIP: -1})
	dialRaw(t, ts.addr)
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	if code, text := c.reply(); code != 421 || !strings.HasPrefix(text, "4.3.2 ") {
		t.Fatalf("over the total limit: %d %s, want 421 4.3.2", code, text)
	}
}

// TestBDATResetWhileReceiving: go-smtp runs Data on its own goroutine for
// BDAT, so RSET can arrive while it still runs; the session state must
// stay consistent (go test -race) and nothing of the aborted message is
// stored. One abort per connection: a second BDAT on the same connection
// after an aborted one races inside go-smtp v0.25.1 itself (Conn.dataResult
// is reassigned while the aborted goroutine sends on it).
func TestBDATResetWhileReceiving(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	for _, mode := range []Mode{ModeMX, ModeSubmission} {
		t.Run(mode.String(), func(t *testing.T) {
			ts := startServer(t, Options{Mode: mode, TLSConfig: serverTLS})
			for _, chunk := range []string{"", "From:", "From: alice@example.test\r\n"} {
				var r *rawClient
				if mode == ModeMX {
					r = dialRaw(t, ts.addr)
					r.expect("EHLO client.test", 250)
				} else {
					r = ts.rawTLS(t, clientTLS, "")
					r.expect(authPlain("alice@example.test", "alice-pw"), 235)
				}
				r.write(fmt.Sprintf("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT %d\r\n%sRSET\r\n", len(chunk), chunk))
				for _, want := range []int{250, 250, 250, 250} {
					if code, text := r.reply(); code != want {
						t.Fatalf("got %d %s, want %d", code, text, want)
					}
				}
				r.expect("NOOP", 250)
				r.expect("QUIT", 221)
			}
			if n := len(ts.store.stored()); n != 0 {
				t.Errorf("%d aborted messages stored", n)
			}
			// The aborted Data goroutines finish on their own.
			deadline := time.Now().Add(5 * time.Second)
			for ts.store.files(t) != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d partial files left behind", ts.store.files(t))
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
