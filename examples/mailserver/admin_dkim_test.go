package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// txtStrings returns the quoted character-strings of the zone-file
// record for name in out, unescaped.
func txtStrings(t *testing.T, out, name string) []string {
	t.Helper()
	i := strings.Index(out, name+"\t")
	if i < 0 {
		t.Fatalf("no record %s in:\n%s", name, out)
	}
	rec := out[i:]
	if end := strings.Index(rec, ")"); strings.Contains(rec[:strings.Index(rec, "\n")], "(") && end > 0 {
		rec = rec[:end]
	} else {
		rec = rec[:strings.Index(rec, "\n")]
	}
	var parts []string
	for _, m := range regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(rec, -1) {
		parts = append(parts, strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(m[1]))
	}
	return parts
}

// jsonTXT returns the unsplit TXT value of name from `dns -json`.
func jsonTXT(t *testing.T, d, domain, name string) string {
	t.Helper()
	var recs []struct{ Name, Type, Value string }
	if err := json.Unmarshal([]byte(mustCLI(t, d, "dns", domain, "-json")), &recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Name == name && r.Type == "TXT" {
			return r.Value
		}
	}
	t.Fatalf("dns -json has no TXT %s", name)
	return ""
}

// keygen, rotate and dns print a DKIM record the same way: an RSA key's
// TXT data (over 255 octets) split into character-strings of at most 255
// octets (RFC 1035 §3.3.14) that join to the record's value.
func TestAdminDKIMRecordSplitLikeDNS(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	const name = "s1._domainkey.example.test."
	keygen := mustCLI(t, d, "dkim", "keygen", "example.test", "-selector", "s1")
	value := jsonTXT(t, d, "example.test", name)
	if len(value) <= 255 {
		t.Fatalf("an RSA key record of %d octets needs no split", len(value))
	}
	parts := txtStrings(t, keygen, name)
	if len(parts) < 2 || strings.Join(parts, "") != value {
		t.Fatalf("keygen printed %d strings %q, want the split of %q:\n%s", len(parts), parts, value, keygen)
	}
	for _, p := range parts {
		if len(p) > 255 {
			t.Fatalf("keygen printed a %d-octet string", len(p))
		}
	}
	zone := mustCLI(t, d, "dns", "example.test")
	if want := keygen[strings.Index(keygen, name):]; !strings.Contains(zone, want) {
		t.Fatalf("keygen's record:\n%s\nis not as dns prints it:\n%s", want, zone)
	}
	rotate := mustCLI(t, d, "dkim", "rotate", "example.test", "-selector", "s2")
	if parts := txtStrings(t, rotate, "s2._domainkey.example.test."); strings.Join(parts, "") != jsonTXT(t, d, "example.test", "s2._domainkey.example.test.") {
		t.Fatalf("rotate printed %q:\n%s", parts, rotate)
	}
}

// A rotation without -alg keeps the algorithm of the key it rotates: an
// Ed25519 selector is followed by an Ed25519 one. A domain signing with
// both must name one; a domain with no key has nothing to rotate.
func TestAdminDKIMRotateKeepsAlgorithm(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	if code, _, errs := cli(t, d, "", "dkim", "rotate", "example.test"); code == 0 || !strings.Contains(errs, "dkim keygen example.test") {
		t.Fatalf("rotate without a key: exit %d, %q", code, errs)
	}
	mustCLI(t, d, "dkim", "keygen", "example.test", "-alg", "ed25519", "-selector", "e1")
	out := mustCLI(t, d, "dkim", "rotate", "example.test", "-selector", "e2")
	if !strings.Contains(out, "step 1") || !strings.Contains(out, "v=DKIM1; k=ed25519; p=") {
		t.Fatalf("rotate of an ed25519 key: %q", out)
	}
	if out := mustCLI(t, d, "dkim", "rotate", "example.test"); !strings.Contains(out, "step 2") || !strings.Contains(out, "e2") {
		t.Fatalf("rotate step 2: %q", out)
	}
	list := mustCLI(t, d, "dkim", "list", "example.test")
	if !strings.Contains(list, "e1\ted25519\tretiring") || !strings.Contains(list, "e2\ted25519\tactive") || strings.Contains(list, "\trsa\t") {
		t.Fatalf("after rotating the ed25519 key:\n%s", list)
	}

	// Dual signing: RSA and Ed25519 both active; rotate must be told.
	mustCLI(t, d, "dkim", "keygen", "example.test", "-selector", "r1")
	before := mustCLI(t, d, "dkim", "list", "example.test")
	if code, _, errs := cli(t, d, "", "dkim", "rotate", "example.test"); code == 0 || !strings.Contains(errs, "-alg") {
		t.Fatalf("rotate of a dual-signing domain without -alg: exit %d, %q", code, errs)
	}
	if got := mustCLI(t, d, "dkim", "list", "example.test"); got != before || strings.Count(got, "\n") != 4 {
		t.Fatalf("a refused rotate changed the keys:\n%s", got)
	}
	if out := mustCLI(t, d, "dkim", "rotate", "example.test", "-alg", "rsa", "-selector", "r2"); !strings.Contains(out, "k=rsa") {
		t.Fatalf("rotate -alg rsa: %q", out)
	}
	// Step 2 of that rotation is unambiguous: only the RSA key waits.
	if out := mustCLI(t, d, "dkim", "rotate", "example.test"); !strings.Contains(out, "step 2") || !strings.Contains(out, "r2") {
		t.Fatalf("rotate step 2 of the RSA key: %q", out)
	}
}

// TestDNSOnlyServedServices: `mailserver dns` announces only what the
// config serves (issue: it printed CalDAV, CardDAV, autoconfig and
// autodiscover records for services that were off or do not exist), and
// warns when the MX target is the machine's short name.
func TestDNSOnlyServedServices(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "mailserver.toml")
	cfg := "hostname = \"mailhost\"\ndata_dir = " + strconv.Quote(d) + "\n[imap]\nlisten = \"\"\n[submission]\nlisten = \"\"\n[dav]\nlisten = \"\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-config", cfgPath, "init"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("init: %d %s", code, errb.String())
	}
	if code := run([]string{"-config", cfgPath, "domain", "add", "example.test"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("domain add: %d %s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"-config", cfgPath, "dns", "example.test"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("dns: %d %s", code, errb.String())
	}
	zone := out.String()
	for _, want := range []string{
		"_imap._tcp.example.test.\t3600\tIN\tSRV\t0 0 0 .",
		"_submission._tcp.example.test.\t3600\tIN\tSRV\t0 0 0 .",
		"_caldavs._tcp.example.test.\t3600\tIN\tSRV\t0 0 0 .",
		"_carddavs._tcp.example.test.\t3600\tIN\tSRV\t0 0 0 .",
		"_imaps._tcp.example.test.\t3600\tIN\tSRV\t0 1 993 mailhost.",
	} {
		if !strings.Contains(zone, want) {
			t.Errorf("dns output lacks %q:\n%s", want, zone)
		}
	}
	for _, absent := range []string{"autoconfig.", "autodiscover.", "path=/dav/"} {
		if strings.Contains(zone, absent) {
			t.Errorf("dns output has %q for a service not served:\n%s", absent, zone)
		}
	}
	if !strings.Contains(errb.String(), `hostname "mailhost"`) || !strings.Contains(errb.String(), "short machine name") {
		t.Errorf("no warning about the short hostname on stderr: %q", errb.String())
	}
	// -mx names the public host: no warning.
	errb.Reset()
	if code := run([]string{"-config", cfgPath, "dns", "example.test", "-mx", "mx.example.test"}, strings.NewReader(""), &out, &errb); code != 0 || errb.Len() != 0 {
		t.Fatalf("dns -mx: %d %q", code, errb.String())
	}
}
