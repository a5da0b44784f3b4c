package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/migration"
)

func TestLoadConfig(t *testing.T) {
	cfg, err := loadConfig("")
	require.NoError(t, err)
	assert.Equal(t, "./data", cfg.DataDir)

	pw := writeFile(t, "pw", "secret\n")
	path := writeFile(t, "mailserver.toml", `
hostname = "mx.example.com"
data_dir = "/var/lib/mailyard"

[smtp]
listen = ":25"

[migration]
allowlist = ["10.0.0.0/8", "exchange.corp.example"]
host = "exchange.corp.example"
port = 993
tls = "implicit"
auth = "service-exchange"
service = 'CORP\svc-migration'
password_file = "`+pw+`"
exclude = ["Drafts", "Черновики"]
parallel = 4
max_conns_per_host = 8
report_from = "migration@example.com"
submission = "127.0.0.1:2587"
`)
	cfg, err = loadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/mailyard", cfg.DataDir)
	mc := cfg.Migration
	assert.Equal(t, []string{"10.0.0.0/8", "exchange.corp.example"}, mc.Allowlist)
	assert.Equal(t, 4, mc.Parallel)
	assert.Equal(t, 8, mc.MaxConnsPerHost)
	d := mc.defaults()
	assert.Equal(t, migration.Source{Host: "exchange.corp.example", Port: 993, TLS: migration.TLSImplicit}, d.Source)
	assert.Equal(t, migration.AuthServiceExchange, d.Credentials.Mode)
	assert.Equal(t, `CORP\svc-migration`, d.Credentials.Service)
	assert.Equal(t, []string{"Drafts", "Черновики"}, d.Exclude)
	assert.Empty(t, d.Credentials.Password, "the password stays in its file until a run reads it")

	c := &cli{cfg: cfg, env: env{getenv: func(string) string { return "" }}}
	secret, err := c.password("", "MIGRATE_PASSWORD", mc.PasswordFile)
	require.NoError(t, err)
	assert.Equal(t, "secret", secret.Reveal())
}

func TestLoadConfigErrors(t *testing.T) {
	cases := map[string]string{
		"unknown key":       "[migration]\nallow_list = [\"x\"]\n",
		"negative":          "[migration]\nparallel = -1\n",
		"missing pw file":   "[migration]\npassword_file = \"/nonexistent/pw\"\n",
		"syntax":            "[migration\n",
		"data_dir type":     "data_dir = 5\n",
		"section not table": "migration = 5\n",
		"tls mode":          "[migration]\ntls = \"ssl\"\n",
		"auth mode":         "[migration]\nauth = \"ntlm\"\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, "c.toml", content)
			_, err := loadConfig(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), path)
		})
	}
	_, err := loadConfig(writeFile(t, "tls.toml", "[migration]\ntls = \"ssl\"\n"))
	assert.ErrorContains(t, err, `key "tls"`)
	_, err = loadConfig(filepath.Join(t.TempDir(), "missing.toml"))
	assert.Error(t, err)
}

func TestReadSecretFile(t *testing.T) {
	s, err := readSecretFile(writeFile(t, "a", "pass word\r\nsecond line\n"))
	require.NoError(t, err)
	assert.Equal(t, "pass word", s.Reveal())
	_, err = readSecretFile(writeFile(t, "b", "\n"))
	assert.Error(t, err)
	big := make([]byte, 5000)
	p := filepath.Join(t.TempDir(), "big")
	require.NoError(t, os.WriteFile(p, big, 0o600))
	_, err = readSecretFile(p)
	assert.Error(t, err)
}
