package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/internal/pgtest"
	"github.com/mailyard/mailyard/internal/testpeer"
)

func TestStoreConfigValidation(t *testing.T) {
	cases := []struct {
		text string
		want []string
	}{
		{"[store]\nbackend = \"mysql\"\n", []string{":2:", `"store.backend"`, `"mysql"`, "sqlite, postgres"}},
		{"[store]\nbackend = \"postgres\"\n", []string{"store.dsn", "must name the PostgreSQL database"}},
		{"[store]\ndsn = \"postgres://db/mailyard\"\n", []string{":2:", "store.dsn", `only applies to backend = "postgres"`}},
		{"[store]\npool_size = 5\n", []string{"store.pool_size", `only applies`}},
		{"[store]\nbackend = \"postgres\"\ndsn = \"postgres://u:secret@db/x\"\npool_size = -1\n", []string{":4:", "store.pool_size", "negative"}},
		{"[store]\nbackend = \"postgres\"\ndsn = \"postgres://u:secret@db:notaport/x\"\n", []string{":3:", "store.dsn"}},
	}
	for _, c := range cases {
		_, err := LoadConfig(writeConfig(t, c.text))
		if err == nil {
			t.Errorf("%q: accepted", c.text)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", c.text, err, w)
			}
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error %q shows the password", c.text, err)
		}
	}
	cfg, err := LoadConfig(writeConfig(t, "[store]\nbackend = \"postgres\"\ndsn = \"host=db dbname=mailyard\"\npool_size = 8\nstatement_timeout = \"30s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store != (StoreConfig{Backend: backendPostgres, DSN: "host=db dbname=mailyard", PoolSize: 8, StatementTimeout: Duration{30 * time.Second}}) {
		t.Fatalf("[store] read as %+v", cfg.Store)
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@db:5432/mail?sslmode=disable": "postgres://u:xxxxx@db:5432/mail?sslmode=disable",
		"postgres://u@db/mail?password=secret":             "postgres://u@db/mail?password=xxxxx",
		"host=db user=u password=secret dbname=mail":       "host=db user=u password=xxxxx dbname=mail",
		"host=db password='se cret' dbname=mail":           "host=db password=xxxxx dbname=mail",
		"postgres://db/mail":                               "postgres://db/mail",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

// pgNode is one reference server's configuration on the shared
// database, with its own data directory and ports.
type pgNode struct {
	configPath string
	cfg        Config
}

// newPGNode writes a config file for a node on dsn and loads it, with
// every listener on a free loopback port.
func newPGNode(t *testing.T, dsn string) pgNode {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "mailserver.toml")
	text := fmt.Sprintf("hostname = \"mx.example.test\"\ndata_dir = %q\n[store]\nbackend = \"postgres\"\ndsn = %q\npool_size = 4\nstatement_timeout = \"30s\"\n", filepath.Join(dir, "data"), dsn)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DNS.Server = "127.0.0.1:1" // nothing answers; no lookup leaves loopback
	cfg.AuthChecks.Enabled = false
	port := func() string { return "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)) }
	cfg.SMTP.Listen, cfg.Submission.Listen, cfg.Submissions.Listen, cfg.HTTP.Listen = port(), port(), port(), port()
	cfg.IMAP.Listen, cfg.IMAPS.Listen = port(), port()
	cfg.DAV.Listen = ""
	cfg.IMAP.AllowInsecureAuth = true
	return pgNode{configPath: p, cfg: cfg}
}

// cli runs an admin command with the node's config file.
func (n pgNode) cli(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(append([]string{"-config", n.configPath}, args...), strings.NewReader(""), &out, &out)
	return code, out.String()
}

func (n pgNode) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out := n.cli(t, args...)
	if code != 0 {
		t.Fatalf("mailserver %v: exit %d\n%s", args, code, out)
	}
	return out
}

// The admin commands refuse a database Mailyard never initialised,
// naming it, and create nothing there; init creates the schema.
func TestPostgresAdminNeedsInit(t *testing.T) {
	n := newPGNode(t, pgtest.FreshDB(t))
	code, out := n.cli(t, "domain", "list")
	if code == 0 || !strings.Contains(out, "no Mailyard schema") || !strings.Contains(out, n.cfg.Store.DSN) || !strings.Contains(out, "mailserver init") {
		t.Fatalf("domain list on an empty database: exit %d\n%s", code, out)
	}
	if code, out := n.cli(t, "user", "list"); code == 0 {
		t.Fatalf("second command on the empty database succeeded:\n%s", out)
	}
	if out := n.mustCLI(t, "init"); !strings.Contains(out, "database "+n.cfg.Store.DSN+" is ready") {
		t.Fatalf("init: %q", out)
	}
	n.mustCLI(t, "domain", "add", "example.test")
	if out := n.mustCLI(t, "domain", "list"); !strings.Contains(out, "example.test") {
		t.Fatalf("domain list: %q", out)
	}
}

// Two servers on one PostgreSQL database: a message that arrives
// through node A is heard within a second by a client idling on node B,
// and read there over IMAP.
func TestPostgresTwoNodes(t *testing.T) {
	dsn := pgtest.FreshDB(t)
	a, b := newPGNode(t, dsn), newPGNode(t, dsn)
	a.mustCLI(t, "init")
	a.mustCLI(t, "domain", "add", "example.test")
	b.mustCLI(t, "user", "add", "alice@example.test", "-password", "secret")

	startServe(t, a.cfg)
	startServe(t, b.cfg)
	for _, addr := range []string{a.cfg.SMTP.Listen, b.cfg.IMAP.Listen} {
		if err := testpeer.WaitPort(addr, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	h, exists := existsHandler()
	c, err := imapclient.DialInsecure(b.cfg.IMAP.Listen, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "From: <bob@elsewhere.test>\r\nTo: <alice@example.test>\r\nSubject: through node A\r\n\r\nhello from A\r\n"
	dt := idleSeesDelivery(t, c, exists, a.cfg.SMTP.Listen, msg)
	t.Logf("node B reported EXISTS %v after node A's 250", dt)
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch on node B: %v, %d messages", err, len(msgs))
	}
	for _, s := range msgs[0].BodySection {
		if !strings.HasSuffix(string(s.Bytes), msg) || !strings.Contains(string(s.Bytes), "Received: from ") {
			t.Fatalf("node B fetched %q", s.Bytes)
		}
	}
	// The admin command on node A reads the same message.
	if out := a.mustCLI(t, "mail", "cat", "alice@example.test", "INBOX", "1"); !strings.HasSuffix(out, msg) {
		t.Fatalf("mail cat on node A: %q", out)
	}
}
