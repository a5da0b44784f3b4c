package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-milter"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/internal/pgtest"
	"github.com/mailyard/mailyard/internal/testpeer"
	"github.com/mailyard/mailyard/smtp"
)

// Every [[milter]] key is read; listeners select where a milter is asked.
func TestMilterConfig(t *testing.T) {
	p := writeConfig(t, `
[[milter]]
name = "clamav"
address = "unix:/run/clamav/clamav-milter.ctl"
connect_timeout = "2s"
command_timeout = "3s"
read_timeout = "4m"
on_failure = "accept"
actions = ["add_header", "quarantine"]

[[milter]]
name = "dlp"
address = "tcp:127.0.0.1:8891"
listeners = ["submission", "submissions"]
`)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	mx := miltersFor(cfg.Milters, "smtp")
	want := smtp.Milter{Name: "clamav", Address: "unix:/run/clamav/clamav-milter.ctl", ConnectTimeout: 2 * time.Second,
		CommandTimeout: 3 * time.Second, ReadTimeout: 4 * time.Minute, OnFailure: smtp.MilterFailAccept,
		Actions: smtp.MilterAddHeader | smtp.MilterQuarantine}
	if len(mx) != 1 || mx[0] != want {
		t.Fatalf("smtp milters %+v, want %+v", mx, want)
	}
	if sub := miltersFor(cfg.Milters, "submission"); len(sub) != 1 || sub[0].Name != "dlp" || sub[0].OnFailure != smtp.MilterFailTempfail {
		t.Fatalf("submission milters %+v", sub)
	}
}

// Bad [[milter]] values are errors naming the key.
func TestMilterConfigErrors(t *testing.T) {
	for text, key := range map[string]string{
		"[[milter]]\nname = \"x\"\n":                 "milter[0].address",
		"[[milter]]\naddress = \"127.0.0.1:8891\"\n": "milter[0].address",
		"[[milter]]\naddress = \"tcp:a:1\"\n[[milter]]\naddress = \"tcp:b:1\"\non_failure = \"drop\"\n": "milter[1].on_failure",
		"[[milter]]\naddress = \"tcp:a:1\"\nactions = [\"replace_body\"]\n":                             "milter[0].actions",
		"[[milter]]\naddress = \"tcp:a:1\"\nactions = []\n":                                             "milter[0].actions",
		"[[milter]]\naddress = \"tcp:a:1\"\nlisteners = [\"imap\"]\n":                                   "milter[0].listeners",
		"[[milter]]\naddress = \"tcp:a:1\"\n[[milter]]\naddress = \"tcp:a:1\"\n":                        "milter[1].name",
		"[[milter]]\naddress = \"tcp:a:1\"\nread_timeout = \"soon\"\n":                                  "read_timeout",
		"[[milter]]\naddress = \"tcp:a:1\"\ntimeout = \"1s\"\n":                                         "milter.timeout",
	} {
		if _, err := LoadConfig(writeConfig(t, text)); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: error %v, want one naming %s", text, err, key)
		}
	}
}

// quarantiner is a milter (go-milter's server) that quarantines every
// message and tags it.
type quarantiner struct{ milter.NoOpMilter }

func (quarantiner) Body(m *milter.Modifier) (milter.Response, error) {
	if err := m.AddHeader("X-Scan", "held"); err != nil {
		return nil, err
	}
	if err := m.Quarantine("suspicious attachment"); err != nil {
		return nil, err
	}
	return milter.RespAccept, nil
}

// startQuarantiner starts a milter that quarantines every message and
// returns its address.
func startQuarantiner(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms := &milter.Server{NewMilter: func() milter.Milter { return quarantiner{} }, Actions: milter.OptAddHeader | milter.OptQuarantine}
	go ms.Serve(ln)
	t.Cleanup(func() { ms.Close() })
	return ln.Addr().String()
}

// A message a [[milter]] quarantines is accepted, not delivered, listed by
// `quarantine list`, delivered by `quarantine release` (with the milter's
// header) and dropped by `quarantine delete`.
func TestQuarantineCommandsEndToEnd(t *testing.T) {
	milterAddr := startQuarantiner(t)

	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret")
	cfg := testConfig(d)
	cfg.SMTP.Listen, cfg.HTTP.Listen = freePort(t), freePort(t)
	cfg.Milters = []MilterConfig{{Name: "av", Address: "tcp:" + milterAddr}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	startServe(t, cfg)
	if err := testpeer.WaitPort(cfg.SMTP.Listen, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	msg := "Subject: invoice\r\n\r\nsee attachment\r\n"
	c, err := gosmtp.Dial(cfg.SMTP.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 {
		if err := c.SendMail("x@remote.test", []string{"alice@example.test"}, strings.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
	}
	out := mustCLI(t, d, "quarantine", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "suspicious attachment") || !strings.Contains(lines[1], "alice@example.test") ||
		!strings.Contains(lines[1], " av ") {
		t.Fatalf("quarantine list:\n%s", out)
	}
	first, second := strings.Fields(lines[1])[0], strings.Fields(lines[2])[0]
	if out := mustCLI(t, d, "mail", "list", "alice@example.test"); strings.Count(out, "\n") != 1 {
		t.Fatalf("delivered before release:\n%s", out)
	}
	mustCLI(t, d, "quarantine", "release", first)
	got := mustCLI(t, d, "mail", "cat", "alice@example.test", "INBOX", "1")
	if !strings.HasSuffix(got, "Subject: invoice\r\nX-Scan: held\r\n\r\nsee attachment\r\n") || !strings.Contains(got, "Received: ") {
		t.Fatalf("released message:\n%q", got)
	}
	mustCLI(t, d, "quarantine", "delete", second)
	if out := mustCLI(t, d, "quarantine", "list"); strings.Contains(out, first) || strings.Contains(out, second) {
		t.Fatalf("still listed:\n%s", out)
	}
	code, _, errs := cli(t, d, "", "quarantine", "release", second)
	if code != 1 || !strings.Contains(errs, "no such quarantined message") {
		t.Fatalf("release of a deleted message: exit %d, %q", code, errs)
	}
}

// On PostgreSQL a message one node quarantined is listed, released and
// deleted from another node, whose data directory never saw it: the
// bodies are in the database (smtp.QuarantineBodies), not in the holding
// node's DATA_DIR/quarantine.
func TestPostgresQuarantineAnyNode(t *testing.T) {
	dsn := pgtest.FreshDB(t)
	milterAddr := startQuarantiner(t)

	a, b := newPGNode(t, dsn), newPGNode(t, dsn)
	a.mustCLI(t, "init")
	a.mustCLI(t, "domain", "add", "example.test")
	a.mustCLI(t, "user", "add", "alice@example.test", "-password", "secret")
	a.cfg.Milters = []MilterConfig{{Name: "av", Address: "tcp:" + milterAddr}}
	if err := a.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	startServe(t, a.cfg)
	if err := testpeer.WaitPort(a.cfg.SMTP.Listen, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	// Two chunks and a bit, so the body crosses chunk boundaries.
	msg := "Subject: invoice\r\n\r\n" + strings.Repeat("see attachment 0123456789abcdef0123456789abcdef0123456789ab\r\n", 9000)
	c, err := gosmtp.Dial(a.cfg.SMTP.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 {
		if err := c.SendMail("x@remote.test", []string{"alice@example.test"}, strings.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
	}
	if des, err := os.ReadDir(filepath.Join(a.cfg.DataDir, "quarantine")); err == nil && len(des) > 0 {
		t.Fatalf("node A kept %d quarantine files in its data directory", len(des))
	}
	out := b.mustCLI(t, "quarantine", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "suspicious attachment") {
		t.Fatalf("quarantine list on node B:\n%s", out)
	}
	first, second := strings.Fields(lines[1])[0], strings.Fields(lines[2])[0]
	b.mustCLI(t, "quarantine", "release", first)
	got := b.mustCLI(t, "mail", "cat", "alice@example.test", "INBOX", "1")
	if !strings.HasSuffix(got, "Subject: invoice\r\nX-Scan: held\r\n\r\n"+msg[len("Subject: invoice\r\n\r\n"):]) {
		t.Fatalf("released message: %d bytes, ends %q", len(got), got[max(0, len(got)-80):])
	}
	b.mustCLI(t, "quarantine", "delete", second)
	if out := a.mustCLI(t, "quarantine", "list"); strings.Contains(out, first) || strings.Contains(out, second) {
		t.Fatalf("still listed on node A:\n%s", out)
	}
}
