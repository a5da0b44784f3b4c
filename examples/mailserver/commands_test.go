package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// helpRows is one invocation per command, with the arguments an
// administrator would type before asking for help: -h must win over
// them and over the missing data directory.
var helpRows = []struct {
	name string
	args []string
}{
	{"serve", []string{"serve"}},
	{"init", []string{"init"}},
	{"domain add", []string{"domain", "add", "example.test"}},
	{"domain list", []string{"domain", "list"}},
	{"domain show", []string{"domain", "show", "example.test"}},
	{"domain delete", []string{"domain", "delete", "example.test"}},
	{"user add", []string{"user", "add", "a@example.test"}},
	{"user list", []string{"user", "list"}},
	{"user show", []string{"user", "show", "a@example.test"}},
	{"user set", []string{"user", "set", "a@example.test", "-quota-bytes", "10"}},
	{"user alias add", []string{"user", "alias", "add", "a@example.test", "b@example.test"}},
	{"user alias remove", []string{"user", "alias", "remove", "a@example.test", "b@example.test"}},
	{"user passwd", []string{"user", "passwd", "a@example.test"}},
	{"user disable", []string{"user", "disable", "a@example.test"}},
	{"user enable", []string{"user", "enable", "a@example.test"}},
	{"user delete", []string{"user", "delete", "a@example.test"}},
	{"alias add", []string{"alias", "add", "b@example.test", "a@example.test"}},
	{"alias list", []string{"alias", "list"}},
	{"alias show", []string{"alias", "show", "b@example.test"}},
	{"alias target add", []string{"alias", "target", "add", "b@example.test", "c@example.test"}},
	{"alias target remove", []string{"alias", "target", "remove", "b@example.test", "c@example.test"}},
	{"alias delete", []string{"alias", "delete", "b@example.test"}},
	{"group add", []string{"group", "add", "g@example.test", "a@example.test"}},
	{"resource add", []string{"resource", "add", "room1@example.test"}},
	{"resource list", []string{"resource", "list"}},
	{"resource policy", []string{"resource", "policy", "room1@example.test", "manual"}},
	{"share add", []string{"share", "add", "a@example.test", "calendar", "b@example.test"}},
	{"share remove", []string{"share", "remove", "a@example.test", "calendar", "b@example.test"}},
	{"share list", []string{"share", "list", "a@example.test"}},
	{"group list", []string{"group", "list"}},
	{"group show", []string{"group", "show", "g@example.test"}},
	{"group member add", []string{"group", "member", "add", "g@example.test", "c@example.test"}},
	{"group member remove", []string{"group", "member", "remove", "g@example.test", "c@example.test"}},
	{"group delete", []string{"group", "delete", "g@example.test"}},
	{"mail list", []string{"mail", "list", "a@example.test"}},
	{"mail cat", []string{"mail", "cat", "a@example.test", "INBOX", "1"}},
	{"dkim keygen", []string{"dkim", "keygen", "example.test"}},
	{"dkim rotate", []string{"dkim", "rotate", "example.test"}},
	{"dkim list", []string{"dkim", "list"}},
	{"dkim export", []string{"dkim", "export", "example.test", "s1"}},
	{"dkim import", []string{"dkim", "import", "example.test", "s1", "key.pem"}},
	{"dns", []string{"dns", "example.test"}},
	{"directory sync", []string{"directory", "sync"}},
	{"directory status", []string{"directory", "status"}},
	{"route explain", []string{"route", "explain", "a@example.test"}},
	{"queue list", []string{"queue", "list"}},
	{"queue show", []string{"queue", "show", "1"}},
	{"queue hold", []string{"queue", "hold", "1"}},
	{"queue release", []string{"queue", "release", "1"}},
	{"queue retry", []string{"queue", "retry", "1"}},
	{"queue delete", []string{"queue", "delete", "1"}},
	{"quarantine list", []string{"quarantine", "list"}},
	{"quarantine release", []string{"quarantine", "release", "1"}},
	{"quarantine delete", []string{"quarantine", "delete", "1"}},
	{"check", []string{"check"}},
	{"store copy", []string{"store", "copy", "--to", "postgres://127.0.0.1:1/none"}},
	{"geo status", []string{"geo", "status"}},
	{"geo links", []string{"geo", "links"}},
	{"geo conflicts", []string{"geo", "conflicts"}},
	{"geo freebusy", []string{"geo", "freebusy", "a@example.test"}},
	{"geo clear", []string{"geo", "clear", "paris", "duplicate_address", "a@example.test"}},
	{"search reindex", []string{"search", "reindex", "a@example.test"}},
}

// Every command has a row above: a command added to the table without
// one fails here.
func TestHelpRowsCoverEveryCommand(t *testing.T) {
	var table, rows []string
	for _, c := range commands() {
		table = append(table, c.name)
	}
	for _, r := range helpRows {
		rows = append(rows, r.name)
	}
	slices.Sort(table)
	slices.Sort(rows)
	if !slices.Equal(table, rows) {
		t.Fatalf("commands %v, help rows %v", table, rows)
	}
}

// `CMD -h`, `CMD --help` and `help CMD` print the command's own help on
// standard output and exit 0, without side effects: nothing is created
// in the (missing) data directory or the working directory, no listener
// is opened (serve would block), and the arguments given are ignored.
func TestHelpOfEveryCommand(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	data := filepath.Join(t.TempDir(), "data")
	for _, row := range helpRows {
		t.Run(row.name, func(t *testing.T) {
			forms := [][]string{
				append(slices.Clone(row.args), "-h"),
				append(slices.Clone(row.args), "--help"),
				append([]string{"help"}, strings.Fields(row.name)...),
				append(slices.Insert(slices.Clone(row.args), len(strings.Fields(row.name)), "-help"), "--data", data),
			}
			for _, args := range forms {
				var out, errb bytes.Buffer
				code := run(append([]string{"-data", data}, args...), strings.NewReader(""), &out, &errb)
				if code != 0 {
					t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
				}
				help := out.String()
				for _, want := range []string{"usage: mailserver [--config FILE] [--data DIR] " + row.name, "example:\n  mailserver ", "--config FILE"} {
					if !strings.Contains(help, want) {
						t.Fatalf("%v: help lacks %q:\n%s", args, want, help)
					}
				}
				if errb.Len() != 0 {
					t.Fatalf("%v: stderr %q", args, errb.String())
				}
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Fatalf("help created the data directory %s (%v)", data, err)
			}
			if ents, err := os.ReadDir(cwd); err != nil || len(ents) != 0 {
				t.Fatalf("help wrote into the working directory: %v %v", ents, err)
			}
		})
	}
}

// The help of a command documents each of its flags, in the --flag form.
func TestHelpListsFlags(t *testing.T) {
	for args, want := range map[string][]string{
		"user add":    {"--password PW", "shell history", "--password-file FILE", "--name NAME", "--quota-bytes N", "twice, without echo"},
		"user delete": {"--yes"},
		"mail list":   {"--json"},
		"user set":    {"--protocols LIST"},
	} {
		var out bytes.Buffer
		if code := run(append(strings.Fields(args), "-h"), strings.NewReader(""), &out, &out); code != 0 {
			t.Fatalf("%s -h: exit %d", args, code)
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s -h lacks %q:\n%s", args, w, out.String())
			}
		}
	}
}

// Global help, group help and unknown words.
func TestHelpAndUnknownCommands(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"help"}, 0, "user alias add", ""},
		{[]string{"-h"}, 0, "domain delete", ""},
		{[]string{"--help"}, 0, "quarantine release", ""},
		{[]string{"help", "user"}, 0, "user set", ""},
		{[]string{"help", "frob"}, 2, "", `unknown command "frob"`},
		{[]string{"frob"}, 2, "", `unknown command "frob"`},
		{[]string{"user", "frob", "a@example.test"}, 2, "", `unknown command "frob" in "user frob"`},
		{[]string{"user"}, 2, "", "user: a subcommand is missing; one of: user add"},
		{[]string{"--frob", "user", "list"}, 2, "", `unknown flag "--frob"`},
		{[]string{"-config"}, 2, "", "flag -config needs a value"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, strings.NewReader(""), &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, out.String(), errb.String())
		}
	}
	if ents, _ := os.ReadDir("."); len(ents) != 0 {
		t.Fatalf("created %v", ents)
	}
}

// A usage error names the command and prints its help, not the global
// usage, on standard error with exit 2.
func TestUsageErrorPrintsCommandHelp(t *testing.T) {
	d := newDataDir(t)
	code, out, errs := cli(t, d, "", "user", "add", "a@example.test", "-bogus")
	if code != 2 || out != "" || !strings.Contains(errs, "mailserver user add: flag provided but not defined: -bogus") ||
		!strings.Contains(errs, "usage: mailserver [--config FILE] [--data DIR] user add ADDRESS") {
		t.Fatalf("exit %d, %q, %q", code, out, errs)
	}
	code, _, errs = cli(t, d, "", "domain", "show")
	if code != 2 || !strings.Contains(errs, "mailserver domain show: 1 argument(s) missing") {
		t.Fatalf("exit %d, %q", code, errs)
	}
}

// --flag and -flag are the same, before or after the arguments, and the
// global flags work after the command name.
func TestDoubleDashFlags(t *testing.T) {
	d := newDataDir(t)
	var out, errb bytes.Buffer
	if code := run([]string{"domain", "add", "example.test", "--data", d}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("--data after the command: %d %s", code, errb.String())
	}
	mustCLI(t, d, "user", "add", "--password", "pw", "--name=Alice", "alice@example.test", "--quota-bytes", "100")
	if js := mustCLI(t, d, "user", "show", "alice@example.test", "--json"); !strings.Contains(js, `"display_name": "Alice"`) || !strings.Contains(js, `"quota_bytes": 100`) {
		t.Fatalf("user show --json: %s", js)
	}
}
