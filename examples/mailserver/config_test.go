package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigIsDefaults(t *testing.T) {
	cfg, err := LoadConfig("mailserver.example.toml")
	if err != nil {
		t.Fatalf("example config does not load: %v", err)
	}
	def := DefaultConfig()
	if !reflect.DeepEqual(cfg, def) {
		t.Fatalf("example config differs from defaults:\n got %+v\nwant %+v", cfg, def)
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mailserver.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigOverrides(t *testing.T) {
	p := writeConfig(t, "hostname = \"mx.example.org\"\n[smtp]\nlisten = \"127.0.0.1:25\"\n[limits]\nread_timeout = \"30s\"\n")
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "mx.example.org" || cfg.SMTP.Listen != "127.0.0.1:25" || cfg.Limits.ReadTimeout.Duration != 30*time.Second {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	if cfg.Submission.Listen != "127.0.0.1:2587" {
		t.Fatalf("defaults lost: %+v", cfg)
	}
}

// The [migration] section belongs to examples/migrate, which shares the
// file; the server must start with it present.
func TestConfigAcceptsMigrationSection(t *testing.T) {
	p := writeConfig(t, "[migration]\nallowlist = [\"10.0.0.0/8\"]\nfolder_parallel = 2\n")
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Migration["allowlist"]; !ok {
		t.Fatalf("[migration] not kept: %+v", cfg.Migration)
	}
}

func TestConfigErrorsNameFileLineKey(t *testing.T) {
	cases := []struct {
		text string
		want []string
	}{
		{"hostname = \"a\"\n[smtp]\nlisen = \":25\"\n", []string{":3:", `"smtp.lisen"`, "unknown key"}},
		{"[limits]\nmax_recipients = \"many\"\n", []string{":2:", "max_recipients"}},
		{"[limits]\nread_timeout = \"soon\"\n", []string{":2:", "read_timeout"}},
		{"[log]\nlevel = \"loud\"\n", []string{":2:", "log.level", "loud"}},
		{"[tls]\ncert_file = \"c.pem\"\n", []string{"tls.key_file"}},
		{"[http]\nlisten = \"8080\"\n", []string{":2:", "http.listen"}},
		{"[smtp]\nlisten = \"127.0.0.1:0\"\n", []string{":2:", `"smtp.listen"`, "1 to 65535"}},
		{"[imap]\nlisten = \":imap\"\n", []string{":2:", `"imap.listen"`, `"imap"`}},
		{"[http]\nlisten = \":2525\"\n", []string{":2:", `"http.listen"`, `"smtp.listen"`}}, // smtp's default
		{"imaps.listen = \"[::]:2143\"\n", []string{":1:", `"imaps.listen"`, `"imap.listen"`}},
		// Zero would silently mean "no limit" and "7 days" respectively.
		{"[dns]\ntimeout = \"0s\"\n", []string{"dns.timeout"}},
		{"[dkim]\nverification_window = \"0s\"\n", []string{"dkim.verification_window"}},
		// A proxy listener needs a balancer to trust; trusted networks
		// parse like relaynets.
		{"[smtp]\nproxy_protocol = true\n", []string{":2:", `"smtp.proxy_protocol"`, "proxy.trusted"}},
		{"[proxy]\ntrusted = [\"10.0.0.0/33\"]\n", []string{`"proxy.trusted[0]"`, "10.0.0.0/33"}},
		{"[proxy]\nheader_timeout = \"0s\"\n", []string{":2:", "proxy.header_timeout"}},
	}
	for _, c := range cases {
		p := writeConfig(t, c.text)
		_, err := LoadConfig(p)
		if err == nil {
			t.Errorf("%q: no error", c.text)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, p) {
			t.Errorf("%q: error %q does not name the file", c.text, msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q: error %q lacks %q", c.text, msg, w)
			}
		}
	}
}

func TestKeyLine(t *testing.T) {
	data := []byte("hostname = \"a\"\nsmtp.listen = \":1\"\n[imap]\n# comment\nlisten = \":2\"\n[[milter]]\naddress = \"x\"\n[[milter]]\naddress = \"y\"\n")
	for key, want := range map[string]int{"hostname": 1, "smtp.listen": 2, "imap.listen": 5, "milter[0].address": 7, "milter[1].address": 9, "http.listen": 0} {
		if got := keyLine(data, key); got != want {
			t.Errorf("keyLine(%q) = %d, want %d", key, got, want)
		}
	}
}
