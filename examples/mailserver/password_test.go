package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store/sqlite"
)

// checkLogin fails unless addr logs in with pw.
func checkLogin(t *testing.T, dataDir, addr, pw string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dataDir, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := builtin.New(st, builtin.Options{Accounts: st})
	if _, err := dir.Authenticate(ctx, addr, pw, directory.ProtoIMAP); err != nil {
		t.Fatalf("login %s with %q: %v", addr, pw, err)
	}
}

// Passwords come from -password, -password-file or the first line of
// standard input; each is checked by logging in with it.
func TestPasswordSources(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("from the file\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, d, "user", "add", "a@example.test", "-password-file", file)
	if code, out, errs := cli(t, d, "from stdin\r\n", "user", "add", "b@example.test"); code != 0 {
		t.Fatalf("stdin: %d %q %q", code, out, errs)
	}
	mustCLI(t, d, "user", "add", "c@example.test", "--password", "on the line")
	checkLogin(t, d, "a@example.test", "from the file")
	checkLogin(t, d, "b@example.test", "from stdin")
	checkLogin(t, d, "c@example.test", "on the line")

	mustCLI(t, d, "user", "passwd", "a@example.test", "--password-file="+file)
	if code, _, errs := cli(t, d, "new one\n", "user", "passwd", "a@example.test"); code != 0 {
		t.Fatalf("passwd from stdin: %d %q", code, errs)
	}
	checkLogin(t, d, "a@example.test", "new one")

	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"user", "add", "x@example.test"}, "empty password"},
		{"", []string{"user", "add", "x@example.test", "-password-file", filepath.Join(t.TempDir(), "missing")}, "password file"},
		{"", []string{"user", "add", "x@example.test", "-password", "a", "-password-file", file}, "not both"},
		{strings.Repeat("x", 5000) + "\n", []string{"user", "add", "x@example.test"}, "longer than 4096 bytes"},
	} {
		if code, _, errs := cli(t, d, tc.stdin, tc.args...); code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q; want %q", tc.args, code, errs, tc.want)
		}
	}
	if out := mustCLI(t, d, "user", "list"); strings.Contains(out, "x@example.test") {
		t.Fatalf("a failed user add created the user: %q", out)
	}
}
