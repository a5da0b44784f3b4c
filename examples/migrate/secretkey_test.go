package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testConfigDir is the user configuration directory of the tests, so the
// default key file (os.UserConfigDir()/mailyard/migration.key) never
// lands in the real home.
var testConfigDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "migrate-test-config-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// os.UserConfigDir: XDG_CONFIG_HOME on Unix, $HOME/Library/Application
	// Support on macOS, %AppData% on Windows.
	for _, k := range []string{"XDG_CONFIG_HOME", "HOME", "AppData"} {
		os.Setenv(k, dir)
	}
	testConfigDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestSecretKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "migration.key")
	key, err := loadSecretKey(path)
	require.NoError(t, err)
	assert.Len(t, key, secretKeyBytes)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	if runtime.GOOS != "windows" {
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "owner only")
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, hex.EncodeToString(key)+"\n", string(b))
	again, err := loadSecretKey(path)
	require.NoError(t, err)
	assert.Equal(t, key, again, "created once, then read")

	// The default is in the user's configuration directory.
	def, err := defaultSecretKeyFile()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(def, testConfigDir), "default key %s outside the test's config dir", def)
	assert.Equal(t, filepath.Join("mailyard", "migration.key"), strings.TrimPrefix(def, testConfigDir+string(filepath.Separator)))

	for name, content := range map[string]string{
		"short":  strings.Repeat("ab", 16) + "\n",
		"nothex": strings.Repeat("zz", 32) + "\n",
	} {
		_, err := loadSecretKey(writeFile(t, name, content))
		assert.ErrorContains(t, err, "secret key", name)
	}
}

func TestRunSealsPasswordsWithKeyFile(t *testing.T) {
	const pw = "alice-Key-File-pw"
	f := newFixture(t, map[string]string{"alice@example.com": pw})
	f.fill("alice@example.com", "INBOX", 2, 100)
	keyFile := filepath.Join(t.TempDir(), "migration.key")
	conf := writeFile(t, "mailserver.toml", "[migration]\nsecret_key_file = \""+filepath.ToSlash(keyFile)+"\"\n")
	list := writeFile(t, "list.csv", "target,password\nalice@example.com,"+pw+"\n")
	args := append([]string{"run", "--csv", list}, f.sourceFlags()...)

	res := f.migrate(t.Context(), nil, append([]string{"-config", conf}, args...)...)
	require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Equal(t, int64(2), f.count("alice@example.com", "INBOX"))
	_, err := os.Stat(keyFile)
	require.NoError(t, err, "key file created on first use")
	// A copy of the data directory reveals no password.
	_ = filepath.WalkDir(f.data, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.False(t, bytes.Contains(b, []byte(pw)), "%s holds the password", path)
		return nil
	})

	// Status needs no key; a run resuming the collector with another key
	// (here the default one) names what to configure.
	status := f.migrate(t.Context(), nil, "status", "alice@example.com")
	require.Equal(t, exitOK, status.code, status.stderr)
	res = f.migrate(t.Context(), nil, args...)
	assert.NotEqual(t, exitOK, res.code)
	assert.Contains(t, res.stdout+res.stderr, "secret key")
	assert.Contains(t, res.stdout+res.stderr, "config")
}
