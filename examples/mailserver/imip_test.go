package main

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-message/mail"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/internal/testhop"
	"github.com/mailyard/mailyard/internal/testpeer"
	"github.com/mailyard/mailyard/routing"
)

// imipEnv is a whole server with the MX, the DAV listener over plain
// HTTP, the outbound queue, DKIM signing for example.test, and the domain
// remote.test routed to a loopback next hop.
type imipEnv struct {
	cfg    Config
	hop    *testhop.Server
	client *http.Client
	base   string
	userID string // alice's directory ID
	// calendar is the path of alice's default calendar.
	calendar string
}

func newIMIPEnv(t *testing.T, edit func(*Config)) *imipEnv {
	t.Helper()
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret")
	mustCLI(t, d, "dkim", "keygen", "example.test", "-selector", "s1")
	hop := testhop.Start(t, testhop.Options{})
	cfg := DefaultConfig()
	cfg.Hostname = "mx.example.test"
	cfg.DataDir = d
	cfg.DNS.Server = "127.0.0.1:1"
	port := func() string { return "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)) }
	cfg.SMTP.Listen, cfg.DAV.Listen = port(), port()
	cfg.Submission.Listen, cfg.Submissions.Listen, cfg.IMAP.Listen, cfg.IMAPS.Listen, cfg.HTTP.Listen = "", "", "", "", ""
	cfg.DAV.InsecureHTTP = true
	cfg.Queue.Enabled = true
	cfg.DKIM.Sign = true
	cfg.Routing = &RoutingConfig{}
	cfg.Routing.Routes = []RouteConfig{{Match: "remote.test", GatewayConfig: GatewayConfig{NextHop: "[127.0.0.1]:" + hop.Port, TLS: routing.TLSNone}}}
	if edit != nil {
		edit(&cfg)
	}
	startServe(t, cfg)
	if err := testpeer.WaitPort(cfg.DAV.Listen, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	e := &imipEnv{cfg: cfg, hop: hop, client: &http.Client{Timeout: 30 * time.Second}, base: "http://" + cfg.DAV.Listen}
	resp, body := davRequest(t, e.client, "PROPFIND", e.base+"/dav/", "alice@example.test", "secret", propfindPrincipal)
	m := regexp.MustCompile(`/dav/principals/([^/<]+)/`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusMultiStatus || m == nil {
		t.Fatalf("PROPFIND /dav/: %d\n%s", resp.StatusCode, body)
	}
	e.userID = m[1]
	// The first look at the home creates the default calendar; find its
	// name.
	req, err := http.NewRequest("PROPFIND", e.base+"/dav/calendars/"+e.userID+"/", strings.NewReader(propfindPrincipal))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice@example.test", "secret")
	req.Header.Set("Depth", "1")
	resp, err = e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range regexp.MustCompile(`/dav/calendars/[^/]+/([^/<]+)/<`).FindAllStringSubmatch(string(b), -1) {
		if m[1] != "inbox" && m[1] != "outbox" {
			e.calendar = "/dav/calendars/" + e.userID + "/" + m[1] + "/"
		}
	}
	if e.calendar == "" {
		t.Fatalf("no calendar in the home:\n%s", b)
	}
	return e
}

// do sends a DAV request as alice and returns the status and body.
func (e *imipEnv) do(t *testing.T, method, path, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice@example.test", "secret")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitHop waits until the next hop has accepted n messages.
func (e *imipEnv) waitHop(t *testing.T, n int) []testhop.Msg {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got := e.hop.Received(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the next hop received %d messages, want %d", len(e.hop.Received()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func imipMeeting(uid, partstat string, seq int, method string) string {
	m := ""
	if method != "" {
		m = "METHOD:" + method + "\r\n"
	}
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + m + "BEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260317T100000Z\r\nDTEND:20260317T110000Z\r\nSUMMARY:Planning\r\n" +
		"SEQUENCE:" + strconv.Itoa(seq) + "\r\nORGANIZER:mailto:alice@example.test\r\n" +
		"ATTENDEE;PARTSTAT=" + partstat + ";RSVP=TRUE:mailto:bob@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
}

// calendarPart returns the METHOD parameter of the text/calendar part of
// a message and the part decoded.
func calendarPart(t *testing.T, data string) (string, *ical.Calendar) {
	t.Helper()
	r, err := mail.CreateReader(strings.NewReader(data))
	if err != nil {
		t.Fatalf("%v:\n%s", err, data)
	}
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("no text/calendar part (%v):\n%s", err, data)
		}
		h, ok := p.Header.(*mail.InlineHeader)
		if !ok {
			continue
		}
		if ct, params, _ := h.ContentType(); ct == "text/calendar" {
			cal, err := ical.NewDecoder(p.Body).Decode()
			if err != nil {
				t.Fatalf("text/calendar part: %v", err)
			}
			return params["method"], cal
		}
	}
}

// TestIMIPOutbound: a DAV PUT by a local organizer with a remote attendee
// sends an iMIP REQUEST (RFC 6047) through the outbound queue, DKIM
// signed, that arrives at the attendee's next hop; the organizer's copy
// records SCHEDULE-STATUS 1.1 (delivered to the transport).
func TestIMIPOutbound(t *testing.T) {
	e := newIMIPEnv(t, nil)
	path := e.calendar + "m1.ics"
	if code, body := e.do(t, http.MethodPut, path, "text/calendar", imipMeeting("m1", "NEEDS-ACTION", 0, "")); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, body)
	}
	msg := e.waitHop(t, 1)[0]
	if msg.From != "alice@example.test" || len(msg.To) != 1 || msg.To[0] != "bob@remote.test" {
		t.Fatalf("envelope %q -> %q", msg.From, msg.To)
	}
	if !strings.HasPrefix(msg.Data, "DKIM-Signature:") || !strings.Contains(msg.Data, "d=example.test") {
		t.Errorf("the message is not DKIM signed by example.test:\n%s", msg.Data)
	}
	h, err := mail.CreateReader(strings.NewReader(msg.Data))
	if err != nil {
		t.Fatal(err)
	}
	if subj, _ := h.Header.Subject(); subj != "Invitation: Planning" {
		t.Errorf("Subject %q", subj)
	}
	if ct, _, _ := h.Header.ContentType(); ct != "multipart/alternative" {
		t.Errorf("Content-Type %q", ct)
	}
	if id, _ := h.Header.MessageID(); !strings.HasSuffix(id, "@mx.example.test") {
		t.Errorf("Message-ID %q", id)
	}
	method, cal := calendarPart(t, msg.Data)
	if p := cal.Props.Get(ical.PropMethod); p == nil || p.Value != "REQUEST" || method != "REQUEST" {
		t.Errorf("calendar METHOD %v, Content-Type method %q; want REQUEST", p, method)
	}
	if ev := cal.Events(); len(ev) != 1 || ev[0].Props.Get(ical.PropUID).Value != "m1" {
		t.Errorf("events %+v", ev)
	}
	_, body := e.do(t, http.MethodGet, path, "", "")
	if !regexp.MustCompile(`SCHEDULE-STATUS="?1\.1`).MatchString(strings.ReplaceAll(body, "\r\n ", "")) {
		t.Errorf("the organizer's copy does not record 1.1:\n%s", body)
	}
}

// TestIMIPBuild: the message's text/calendar part names the METHOD in its
// Content-Type (RFC 6047 §2.4) and round-trips the calendar.
func TestIMIPBuild(t *testing.T) {
	cal, err := ical.NewDecoder(bytes.NewReader([]byte(imipMeeting("b1", "DECLINED", 2, "REPLY")))).Decode()
	if err != nil {
		t.Fatal(err)
	}
	data, err := buildIMIP("bob@remote.test", []string{"alice@example.test"}, "REPLY", cal, time.Unix(1e9, 0), "h.test")
	if err != nil {
		t.Fatal(err)
	}
	method, got := calendarPart(t, string(data))
	if method != "REPLY" || got.Props.Get(ical.PropMethod).Value != "REPLY" {
		t.Errorf("method %q", method)
	}
	if !strings.Contains(string(data), "Subject: Reply: Planning") {
		t.Errorf("no subject:\n%s", data)
	}
}

// sendMX sends a message to the MX as a remote server would.
func (e *imipEnv) sendMX(t *testing.T, from, to, data string) {
	t.Helper()
	c, err := gosmtp.Dial(e.cfg.SMTP.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail(from, []string{to}, strings.NewReader(data)); err != nil {
		t.Fatalf("MX: %v", err)
	}
}

// TestIMIPInbound: an iMIP REPLY from the remote attendee arriving at the
// MX is delivered (250 after the store) and updates the attendee's
// PARTSTAT in the organizer's copy; one from another sender is delivered
// but not applied, unless the sender is in dav.trusted_calendar_senders.
func TestIMIPInbound(t *testing.T) {
	e := newIMIPEnv(t, func(c *Config) { c.DAV.TrustedCalendarSenders = []string{"system@linked.test"} })
	path := e.calendar + "m2.ics"
	if code, body := e.do(t, http.MethodPut, path, "text/calendar", imipMeeting("m2", "NEEDS-ACTION", 0, "")); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, body)
	}
	reply := func(partstat string) string {
		cal, err := ical.NewDecoder(strings.NewReader(imipMeeting("m2", partstat, 0, "REPLY"))).Decode()
		if err != nil {
			t.Fatal(err)
		}
		data, err := buildIMIP("bob@remote.test", []string{"alice@example.test"}, "REPLY", cal, time.Now(), "remote.test")
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	partstat := func() string {
		_, body := e.do(t, http.MethodGet, path, "", "")
		m := regexp.MustCompile(`ATTENDEE;[^:]*PARTSTAT=([A-Z-]+)`).FindStringSubmatch(strings.ReplaceAll(body, "\r\n ", ""))
		if m == nil {
			t.Fatalf("no attendee PARTSTAT:\n%s", body)
		}
		return m[1]
	}

	e.sendMX(t, "mallory@remote.test", "alice@example.test", reply("DECLINED"))
	if got := partstat(); got != "NEEDS-ACTION" {
		t.Errorf("a reply from another sender set PARTSTAT %s", got)
	}
	e.sendMX(t, "bob@remote.test", "alice@example.test", reply("ACCEPTED"))
	if got := partstat(); got != "ACCEPTED" {
		t.Errorf("after bob's reply: PARTSTAT %s, want ACCEPTED", got)
	}
	e.sendMX(t, "system@linked.test", "alice@example.test", reply("TENTATIVE"))
	if got := partstat(); got != "TENTATIVE" {
		t.Errorf("after the trusted sender's reply: PARTSTAT %s, want TENTATIVE", got)
	}
	// A REPLY for an event alice does not have is still delivered (the
	// MX answers 250 only once the mail is stored).
	other := strings.ReplaceAll(reply("ACCEPTED"), "UID:m2", "UID:unknown")
	e.sendMX(t, "bob@remote.test", "alice@example.test", other)
}
