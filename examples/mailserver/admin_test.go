package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs the command in-process on dataDir and returns exit code and
// output.
func cli(t *testing.T, dataDir, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"-data", dataDir}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// newDataDir is a data directory made by `mailserver init`, as every admin
// command but init needs one.
func newDataDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "data")
	mustCLI(t, d, "init")
	return d
}

func mustCLI(t *testing.T, dataDir string, args ...string) string {
	t.Helper()
	code, out, errs := cli(t, dataDir, "", args...)
	if code != 0 {
		t.Fatalf("mailserver %v: exit %d\n%s%s", args, code, out, errs)
	}
	return out
}

func TestAdminCommands(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test", "example-alt.test")
	if out := mustCLI(t, d, "domain", "list"); !strings.Contains(out, "example.test\texample-alt.test") {
		t.Fatalf("domain list: %q", out)
	}
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "pw1", "-name", "Alice A")
	// Password from standard input.
	if code, out, errs := cli(t, d, "pw2\n", "user", "add", "bob@example.test"); code != 0 {
		t.Fatalf("user add from stdin: %d %s %s", code, out, errs)
	}
	out := mustCLI(t, d, "user", "list")
	if !strings.Contains(out, "alice@example.test") || !strings.Contains(out, "Alice A") || !strings.Contains(out, "bob@example.test") {
		t.Fatalf("user list: %q", out)
	}
	mustCLI(t, d, "alias", "add", "info@example.test", "alice@example.test", "bob@example.test")
	mustCLI(t, d, "group", "add", "team@example.test", "alice@example.test", "bob@example.test", "-send-as", "alice@example.test")
	mustCLI(t, d, "user", "disable", "bob@example.test")
	if out := mustCLI(t, d, "user", "list", "example.test"); !strings.Contains(out, "bob@example.test") || !strings.Contains(out, "disabled") {
		t.Fatalf("bob not shown disabled: %q", out)
	}
	mustCLI(t, d, "user", "enable", "bob@example.test")
	mustCLI(t, d, "user", "passwd", "bob@example.test", "-password", "pw3")
	if out := mustCLI(t, d, "mail", "list", "alice@example.test", "INBOX"); out != "" {
		t.Fatalf("new mailbox not empty: %q", out)
	}
	if out := mustCLI(t, d, "check"); !strings.Contains(out, "store ok") {
		t.Fatalf("check: %q", out)
	}
}

func TestAdminErrorsAreClearAndChangeNothing(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"user", "add", "carol@unhosted.test", "-password", "x"}, "unhosted.test"},
		{[]string{"user", "add", "not-an-address", "-password", "x"}, "not-an-address"},
		{[]string{"user", "passwd", "nobody@example.test", "-password", "x"}, "nobody@example.test"},
		{[]string{"mail", "cat", "nobody@example.test", "INBOX", "1"}, "nobody@example.test"},
		{[]string{"domain", "add", "example.test"}, "exists"},
	}
	for _, c := range cases {
		code, _, errs := cli(t, d, "", c.args...)
		if code == 0 {
			t.Errorf("%v: succeeded", c.args)
			continue
		}
		if !strings.Contains(errs, c.want) {
			t.Errorf("%v: error %q does not mention %q", c.args, errs, c.want)
		}
	}
	if out := mustCLI(t, d, "user", "list"); out != "" {
		t.Fatalf("failed commands created users: %q", out)
	}
	if code, _, errs := cli(t, d, "", "frobnicate"); code != 2 || !strings.Contains(errs, "usage") {
		t.Fatalf("unknown command: exit %d, %q", code, errs)
	}
	if code, _, _ := cli(t, d, "", "user", "add", "x@example.test"); code == 0 {
		t.Fatal("user add with an empty password succeeded")
	}
}

func TestAdminDKIMAndDNS(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	if code, _, errs := cli(t, d, "", "dkim", "keygen", "elsewhere.test"); code == 0 || !strings.Contains(errs, "elsewhere.test") {
		t.Fatalf("keygen for an unhosted domain: exit %d, %q", code, errs)
	}
	out := mustCLI(t, d, "dkim", "keygen", "example.test", "-selector", "s1")
	if !strings.Contains(out, "signing") || !strings.Contains(out, `s1._domainkey.example.test.	3600	IN	TXT	( "v=DKIM1; k=rsa; p=`) {
		t.Fatalf("keygen: %q", out)
	}
	// Rotation, step 1: a new key is published but s1 still signs.
	out = mustCLI(t, d, "dkim", "rotate", "example.test", "-selector", "s2")
	if !strings.Contains(out, "step 1") || !strings.Contains(out, "s2._domainkey.example.test.") {
		t.Fatalf("rotate step 1: %q", out)
	}
	list := mustCLI(t, d, "dkim", "list", "example.test")
	if !strings.Contains(list, "s1\trsa\tactive") || !strings.Contains(list, "s2\trsa\tpublished") {
		t.Fatalf("after step 1: %q", list)
	}
	// Step 2: s2 signs, s1 stays published while retiring.
	if out = mustCLI(t, d, "dkim", "rotate", "example.test"); !strings.Contains(out, "step 2") {
		t.Fatalf("rotate step 2: %q", out)
	}
	list = mustCLI(t, d, "dkim", "list")
	if !strings.Contains(list, "s1\trsa\tretiring") || !strings.Contains(list, "s2\trsa\tactive") {
		t.Fatalf("after step 2: %q", list)
	}
	zone := mustCLI(t, d, "dns", "example.test")
	for _, want := range []string{"IN\tMX", "v=spf1", "s1._domainkey.example.test.", "s2._domainkey.example.test.", "_dmarc.example.test.", "_submission._tcp.example.test."} {
		if !strings.Contains(zone, want) {
			t.Errorf("dns output lacks %q", want)
		}
	}
	// RFC 6764: CalDAV/CardDAV SRV records at the DAV port, TXT path=/dav/.
	zone = mustCLI(t, d, "dns", "example.test", "-dav-port", "8443")
	for _, want := range []string{"_caldavs._tcp.example.test.\t3600\tIN\tSRV\t0 1 8443 ", "_carddavs._tcp.example.test.\t3600\tIN\tSRV\t0 1 8443 ",
		"_caldavs._tcp.example.test.\t3600\tIN\tTXT\t\"path=/dav/\"", "_carddavs._tcp.example.test.\t3600\tIN\tTXT\t\"path=/dav/\""} {
		if !strings.Contains(zone, want) {
			t.Errorf("dns -dav-port 8443 output lacks %q:\n%s", want, zone)
		}
	}
	if js := mustCLI(t, d, "dns", "example.test", "-json"); !strings.HasPrefix(strings.TrimSpace(js), "[") || !strings.Contains(js, `"type": "TXT"`) {
		t.Fatalf("dns -json: %q", js)
	}
	// Export then import under another selector: the same public key.
	pem := mustCLI(t, d, "dkim", "export", "example.test", "s2")
	if !strings.HasPrefix(pem, "-----BEGIN PRIVATE KEY-----") {
		t.Fatalf("export: %.40q", pem)
	}
	f := t.TempDir() + "/k.pem"
	if err := os.WriteFile(f, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	imp := mustCLI(t, d, "dkim", "import", "example.test", "s3", f)
	rec := func(s string) string { return s[strings.Index(s, "p="):] }
	if !strings.Contains(zone, rec(imp)[:60]) {
		t.Fatalf("imported key's record differs from the exported key's")
	}
}

// Default selectors are dated; a rotation on the day of the keygen must
// not collide with the key it replaces.
func TestAdminDKIMDefaultSelectorsSameDay(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "dkim", "keygen", "example.test", "-alg", "ed25519")
	if code, out, errs := cli(t, d, "", "dkim", "rotate", "example.test", "-alg", "ed25519"); code != 0 || !strings.Contains(out, "step 1") {
		t.Fatalf("rotate on the day of keygen: exit %d, %q %q", code, out, errs)
	}
	mustCLI(t, d, "dkim", "rotate", "example.test", "-alg", "ed25519") // step 2
	if code, out, errs := cli(t, d, "", "dkim", "rotate", "example.test", "-alg", "ed25519"); code != 0 || !strings.Contains(out, "step 1") {
		t.Fatalf("second rotation that day: exit %d, %q %q", code, out, errs)
	}
	if list := mustCLI(t, d, "dkim", "list", "example.test"); strings.Count(list, "\n") != 3 {
		t.Fatalf("want three keys:\n%s", list)
	}
}
