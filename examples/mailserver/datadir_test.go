package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/internal/testpeer"
	"github.com/mailyard/mailyard/store/sqlite"
)

// adminCommands are one invocation of every admin command that opens the
// data directory.
var adminCommands = [][]string{
	{"domain", "add", "example.test"},
	{"domain", "list"},
	{"user", "add", "a@example.test", "-password", "pw"},
	{"user", "list"},
	{"user", "passwd", "a@example.test", "-password", "pw"},
	{"user", "disable", "a@example.test"},
	{"user", "enable", "a@example.test"},
	{"alias", "add", "b@example.test", "a@example.test"},
	{"group", "add", "g@example.test", "a@example.test"},
	{"mail", "list", "a@example.test"},
	{"mail", "cat", "a@example.test", "INBOX", "1"},
	{"dkim", "keygen", "example.test"},
	{"dkim", "list"},
	{"dns", "example.test"},
	{"route", "explain", "a@example.test"},
	{"queue", "list"},
	{"quarantine", "list"},
	{"check"},
}

// An admin command on a data directory that does not exist fails, names
// the directory it looked at and how to fix it, and creates nothing
// (it used to create a new, empty store and report success).
func TestAdminRefusesMissingDataDir(t *testing.T) {
	parent := t.TempDir()
	missing := filepath.Join(parent, "data")
	empty := filepath.Join(parent, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{missing, empty} {
		for _, args := range adminCommands {
			code, out, errs := cli(t, d, "", args...)
			if code == 0 {
				t.Errorf("%s: %v succeeded: %q", d, args, out)
				continue
			}
			for _, want := range []string{d, "-data", "-config", "init"} {
				if !strings.Contains(errs, want) {
					t.Errorf("%v: error %q lacks %q", args, errs, want)
				}
			}
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("an admin command created %s (%v)", missing, err)
	}
	if ents, err := os.ReadDir(empty); err != nil || len(ents) != 0 {
		t.Fatalf("an admin command wrote into an empty directory: %v %v", ents, err)
	}
}

// execMailDB runs q on dir/mail.db directly, as another program (or an
// older release) would.
func execMailDB(t *testing.T, dir, q string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "mail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// A data directory whose mail.db is another program's is refused by
// admin commands and by serve, and the file is not changed.
func TestRefusesForeignMailDB(t *testing.T) {
	d := t.TempDir()
	execMailDB(t, d, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('theirs')")
	before, err := os.ReadFile(filepath.Join(d, "mail.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init"}, {"domain", "add", "example.test"}, {"check"}} {
		code, _, errs := cli(t, d, "", args...)
		if code == 0 || !strings.Contains(errs, filepath.Join(d, "mail.db")) || !strings.Contains(errs, "-data") {
			t.Errorf("%v: exit %d, %q", args, code, errs)
		}
	}
	// serve on listeners that cannot bind, so that it returns even if
	// it took the store over.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := DefaultConfig()
	cfg.DataDir = d
	cfg.DNS.Server = "127.0.0.1:1"
	cfg.SMTP.Listen = busy.Addr().String()
	cfg.Submission.Listen, cfg.Submissions.Listen, cfg.IMAP.Listen, cfg.IMAPS.Listen, cfg.HTTP.Listen, cfg.DAV.Listen = "", "", "", "", "", ""
	if err := serve(context.Background(), cfg, newLogger(LogConfig{Level: "error", Format: "text"}, &bytes.Buffer{})); err == nil {
		t.Fatal("serve took over another program's mail.db")
	}
	after, err := os.ReadFile(filepath.Join(d, "mail.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the other program's mail.db was changed")
	}
	if ents, _ := os.ReadDir(d); len(ents) != 1 {
		t.Fatalf("files created beside the foreign mail.db: %v", ents)
	}
}

// init creates the data directory, twice is fine, and admin commands then
// work on it.
func TestInitCreatesDataDir(t *testing.T) {
	d := filepath.Join(t.TempDir(), "data")
	for range 2 {
		if out := mustCLI(t, d, "init"); !strings.Contains(out, d) {
			t.Fatalf("init output %q does not name %s", out, d)
		}
	}
	if _, err := os.Stat(filepath.Join(d, "MAILYARD")); err != nil {
		t.Fatalf("init wrote no marker: %v", err)
	}
	mustCLI(t, d, "domain", "add", "example.test")
	if out := mustCLI(t, d, "domain", "list"); !strings.Contains(out, "example.test") {
		t.Fatalf("domain list: %q", out)
	}
	if code, _, errs := cli(t, d, "", "init", "extra"); code != 2 || !strings.Contains(errs, "usage") {
		t.Fatalf("init with an argument: exit %d, %q", code, errs)
	}
}

// A data directory of the previous release (no marker, no
// application_id) still opens for admin commands, with its data.
func TestAdminOpensUnmarkedDataDir(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	if err := os.Remove(filepath.Join(d, "MAILYARD")); err != nil {
		t.Fatal(err)
	}
	execMailDB(t, d, "PRAGMA application_id = 0")
	if out := mustCLI(t, d, "domain", "list"); !strings.Contains(out, "example.test") {
		t.Fatalf("domain list on the old data dir: %q", out)
	}
	if _, err := os.Stat(filepath.Join(d, "MAILYARD")); err != nil {
		t.Fatalf("marker not restored: %v", err)
	}
	st, err := sqlite.Open(context.Background(), d, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

// Bad listen ports are config errors naming file, line and key, found
// before serve creates the data directory.
func TestBadPortsRejectedBeforeDataDir(t *testing.T) {
	port := testpeer.FreePort(t)
	cases := []struct {
		listeners string
		want      []string
	}{
		{"[smtp]\nlisten = \"127.0.0.1:99999\"\n", []string{":6:", `"smtp.listen"`, "99999", "1 to 65535"}},
		{fmt.Sprintf("[smtp]\nlisten = \"127.0.0.1:%d\"\n[http]\nlisten = \"127.0.0.1:%d\"\n", port, port), []string{":8:", `"http.listen"`, `"smtp.listen"`}},
		{fmt.Sprintf("[submission]\nlisten = \":%d\"\n[imaps]\nlisten = \"127.0.0.1:%d\"\n", port, port), []string{":8:", `"imaps.listen"`, `"submission.listen"`}},
	}
	for _, c := range cases {
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		p := filepath.Join(dir, "mailserver.toml")
		text := fmt.Sprintf("hostname = \"mx.example.test\"\ndata_dir = %q\n[dns]\nserver = \"127.0.0.1:1\"\n", data) + c.listeners
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := run([]string{"-config", p, "serve"}, strings.NewReader(""), &out, &errb)
		if code == 0 {
			t.Errorf("%q: serve exited 0", c.listeners)
		}
		for _, w := range append([]string{p}, c.want...) {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("%q: error %q lacks %q", c.listeners, errb.String(), w)
			}
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("%q: data directory created before the config was checked (%v)", c.listeners, err)
		}
	}
}
