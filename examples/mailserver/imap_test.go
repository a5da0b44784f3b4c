package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/internal/testpeer"
)

// TestIMAPSeesSMTPDeliveryWhileIdling runs the whole server on loopback
// ports: a client idles on IMAPS, a message arrives on the MX port, and
// the client hears of it within a second. A second client logs in over
// plain IMAP, which allow_insecure_auth permits, and reads the message.
func TestIMAPSeesSMTPDeliveryWhileIdling(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret")

	cfg := testConfig(d)
	cfg.SMTP.Listen, cfg.HTTP.Listen, cfg.IMAP.Listen, cfg.IMAPS.Listen = freePort(t), freePort(t), freePort(t), freePort(t)
	cfg.IMAP.AllowInsecureAuth = true

	startServe(t, cfg)
	for _, a := range []string{cfg.SMTP.Listen, cfg.IMAP.Listen, cfg.IMAPS.Listen} {
		if err := testpeer.WaitPort(a, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	h, exists := existsHandler()
	c, err := imapclient.DialTLS(cfg.IMAPS.Listen, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}, UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "From: <bob@elsewhere.test>\r\nTo: <alice@example.test>\r\nSubject: over smtp\r\n\r\nhello\r\n"
	idleSeesDelivery(t, c, exists, cfg.SMTP.Listen, msg)

	// Plain port, LOGIN allowed by allow_insecure_auth.
	p, err := imapclient.DialInsecure(cfg.IMAP.Listen, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Login("alice@example.test", "secret").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := p.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v, %d messages", err, len(msgs))
	}
	for _, b := range msgs[0].BodySection {
		if !strings.HasSuffix(string(b.Bytes), msg) {
			t.Fatalf("fetched %q", b.Bytes)
		}
	}

	resp, err := http.Get("http://" + cfg.HTTP.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// One limiter serves both listeners: the second login from the same
	// address is trusted.
	for _, want := range []string{`mailyard_imap_auth_total{listener="imaps",result="success"} 1`, `mailyard_imap_auth_total{listener="imap",result="success"} 1`,
		`mailyard_auth_password_checks_total{class="fresh"} 1`, `mailyard_auth_password_checks_total{class="trusted"} 1`,
		`mailyard_auth_stranger_checks_limit 10`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// existsHandler returns a handler of unilateral IMAP data that passes
// on every EXISTS count.
func existsHandler() (*imapclient.UnilateralDataHandler, chan uint32) {
	exists := make(chan uint32, 4)
	return &imapclient.UnilateralDataHandler{Mailbox: func(m *imapclient.UnilateralDataMailbox) {
		if m.NumMessages != nil {
			exists <- *m.NumMessages
		}
	}}, exists
}

// idleSeesDelivery logs c in as alice@example.test, SELECTs INBOX and
// IDLEs; then it sends msg to her through the MX at smtpAddr and fails
// unless c reports EXISTS 1 (on exists, from existsHandler) within a
// second of the 250. It ends the IDLE and returns how long it took.
func idleSeesDelivery(t *testing.T, c *imapclient.Client, exists <-chan uint32, smtpAddr, msg string) time.Duration {
	t.Helper()
	if err := c.Login("alice@example.test", "secret").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := gosmtp.DialStartTLS(smtpAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.SendMail("bob@elsewhere.test", []string{"alice@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	accepted := time.Now()
	var dt time.Duration
	select {
	case n := <-exists:
		dt = time.Since(accepted)
		if n != 1 {
			t.Fatalf("EXISTS %d, want 1", n)
		}
		if dt > time.Second {
			t.Fatalf("EXISTS %v after the 250", dt)
		}
	case <-time.After(time.Second):
		t.Fatal("the idling client heard nothing within 1s of the SMTP 250")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	return dt
}
