package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/ldaptest"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

const ldapPeople = `dn: uid=lena,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: lena
cn: Lena Lang
givenName: Lena
sn: Lang
mail: lena@example.test
userPassword: lena-pw

dn: uid=max,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: max
cn: Max Moss
sn: Moss
mail: max@example.test
userPassword: max-pw

dn: cn=team,ou=groups,dc=example,dc=com
objectClass: groupOfNames
objectClass: group
cn: team
mail: team@example.test
member: uid=lena,ou=people,dc=example,dc=com
member: uid=max,ou=people,dc=example,dc=com

`

func ldapSection(url, passwordFile string) string {
	return fmt.Sprintf(`
[[directory.ldap]]
name = "corp"
preset = "openldap"
servers = [{ url = "ldap://127.0.0.1:1", priority = 0 }, { url = %q, priority = 1 }]
bind_dn = %q
bind_password_file = %q
base_dn = "dc=example,dc=com"
user_base = "ou=people,dc=example,dc=com"
group_base = "ou=groups,dc=example,dc=com"
login_attribute = "uid"
tenant = "default"
timeout = "5s"
dial_timeout = "1s"
sync_interval = "1h"

[directory.ldap.attributes]
title = "employeeType"
`, url, ldaptest.AdminDN, passwordFile)
}

func TestDirectoryConfigErrors(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := ldapSection("ldap://127.0.0.1:389", pw)
	cfg, err := LoadConfig(writeConfig(t, good))
	if err != nil {
		t.Fatalf("valid section refused: %v", err)
	}
	if cfg.Directory == nil || len(cfg.Directory.LDAP) != 1 || cfg.Directory.LDAP[0].Attributes["title"] != "employeeType" {
		t.Fatalf("section not decoded: %+v", cfg.Directory)
	}
	lc, err := cfg.Directory.LDAP[0].connection(true)
	if err != nil || lc.BindPassword != "secret" || lc.Mapping.Title != "employeeType" || lc.Mapping.ID != "entryUUID" {
		t.Fatalf("connection: %v %+v", err, lc.Mapping)
	}
	cases := []struct{ text, want string }{
		{strings.Replace(good, `preset = "openldap"`, `preset = "novell"`, 1), "novell"},
		{strings.Replace(good, `ldap://127.0.0.1:389`, `http://127.0.0.1`, 1), "scheme"},
		{strings.Replace(good, `title = "employeeType"`, `colour = "x"`, 1), "colour"},
		{strings.Replace(good, `tenant = "default"`, `tenant = ""`, 1), "tenant"},
		{strings.Replace(good, `tenant = "default"`, "tenant = \"default\"\nbind_password = \"x\"", 1), "bind_password_file"},
		{strings.Replace(good, `login_attribute = "uid"`, `login_atribute = "uid"`, 1), "login_atribute"},
		{good + good, "used twice"},
	}
	for _, c := range cases {
		_, err := LoadConfig(writeConfig(t, c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error with %q, got %v", c.want, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// startDirectory starts slapd with ldapPeople and returns it, a data
// directory hosting example.test and a configuration syncing from it.
func startDirectory(t *testing.T) (*ldaptest.Server, string, string) {
	t.Helper()
	srv := ldaptest.Start(t, ldapPeople)
	d := newDataDir(t)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(ldaptest.AdminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := writeConfig(t, ldapSection(srv.URL, pw))
	mustCLI(t, d, "domain", "add", "example.test")
	return srv, d, conf
}

func TestDirectorySyncAndAuthRouting(t *testing.T) {
	srv, d, conf := startDirectory(t)
	mustCLI(t, d, "user", "add", "local@example.test", "-password", "local-pw")

	code, out, errs := cli(t, d, "", "-config", conf, "directory", "status")
	if code != 0 || !strings.Contains(out, "never synced") {
		t.Fatalf("status before any sync: %d %q %q", code, out, errs)
	}
	out = mustCLI(t, d, "-config", conf, "directory", "sync")
	if !strings.Contains(out, "corp: success (full sync") || !strings.Contains(out, "added 3") {
		t.Fatalf("sync output: %q", out)
	}
	out = mustCLI(t, d, "-config", conf, "directory", "status", "-log", "corp")
	if !strings.Contains(out, "user lena@example.test added") || strings.Contains(out, ldaptest.AdminPassword) {
		t.Fatalf("status: %q", out)
	}
	if out := mustCLI(t, d, "user", "list"); !strings.Contains(out, "lena@example.test") || !strings.Contains(out, "Lena Lang") {
		t.Fatalf("synced users not listed: %q", out)
	}
	if code, _, errs := cli(t, d, "", "-config", conf, "directory", "sync", "nope"); code == 0 || !strings.Contains(errs, "nope") {
		t.Fatalf("unknown connection: %d %q", code, errs)
	}

	// The server's authenticator: directory users bind at slapd (by
	// address or uid), built-in users use their local hash.
	cfg, err := LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, d, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := builtin.New(st, builtin.Options{Accounts: st})
	sources, err := newLDAPSources(cfg, dir, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	auth := newAuthenticator(dir, sources)
	for _, c := range []struct {
		login, pw string
		ok        bool
	}{
		{"lena@example.test", "lena-pw", true},
		{"lena", "lena-pw", true},
		{"lena@example.test", "wrong", false},
		{"local@example.test", "local-pw", true},
		{"local@example.test", "lena-pw", false},
		{"max", "lena-pw", false},
	} {
		_, err := auth.Authenticate(ctx, c.login, c.pw, directory.ProtoSMTP)
		if (err == nil) != c.ok {
			t.Errorf("%s/%s: %v", c.login, c.pw, err)
		}
	}
	// Routing sees the synced group even with slapd gone.
	srv.Stop()
	e, err := auth.LookupAddress(ctx, "team@example.test")
	if err != nil || e.Kind != directory.KindGroup || len(e.Group.Members) != 2 {
		t.Fatalf("group: %v %+v", err, e)
	}
	code, _, errs = cli(t, d, "", "-config", conf, "directory", "sync")
	if code == 0 || !strings.Contains(errs, "no server available") {
		t.Fatalf("sync without server: %d %q", code, errs)
	}
	out = mustCLI(t, d, "-config", conf, "directory", "status")
	if !strings.Contains(out, "corp: error") {
		t.Fatalf("status after failed sync: %q", out)
	}
}

// The commented-out [[directory.ldap]] example in mailserver.example.toml
// must stay a valid configuration: uncommented, it loads.
func TestExampleDirectorySectionLoads(t *testing.T) {
	data, err := os.ReadFile("mailserver.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "# [[directory.ldap]]")
	if i < 0 {
		t.Fatal("example has no [[directory.ldap]] section")
	}
	var b strings.Builder
	for _, line := range strings.Split(text[i:], "\n") {
		if line == "" {
			break // the end of the directory example
		}
		line = strings.TrimPrefix(line, "# ")
		if strings.HasPrefix(line, "# ") || line == "#" {
			continue // a comment inside the example
		}
		b.WriteString(line + "\n")
	}
	cfg, err := LoadConfig(writeConfig(t, b.String()))
	if err != nil {
		t.Fatalf("uncommented example does not load: %v\n%s", err, b.String())
	}
	if len(cfg.Directory.LDAP) != 1 || cfg.Directory.LDAP[0].Name != "corp" || cfg.Directory.LDAP[0].Attributes["phone"] != "ipPhone" {
		t.Fatalf("example decoded wrongly: %+v", cfg.Directory)
	}
}

// A user removed from the directory is disabled by the sync with its
// mail kept and listed by `directory status`; `user delete` removes it
// with its mailbox.
func TestDirectoryVanishedUserAndUserDelete(t *testing.T) {
	srv, d, conf := startDirectory(t)
	mustCLI(t, d, "-config", conf, "directory", "sync")

	ctx := context.Background()
	st, err := sqlite.Open(ctx, d, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := builtin.New(st, builtin.Options{Accounts: st})
	maxUser, err := dir.UserByAddress(ctx, "max@example.test")
	if err == nil {
		_, err = st.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: maxUser.ID}}}, strings.NewReader("Subject: hi\r\n\r\nkeep\r\n"))
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	admin, err := goldap.DialURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Bind(ldaptest.AdminDN, ldaptest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	if err := admin.Del(goldap.NewDelRequest("uid=max,ou=people,dc=example,dc=com", nil)); err != nil {
		t.Fatal(err)
	}
	// One of two users is more than the guard's share.
	if code, _, errs := cli(t, d, "", "-config", conf, "directory", "sync", "-full"); code == 0 || !strings.Contains(errs, "safety guard") {
		t.Fatalf("guarded sync: %d %q", code, errs)
	}
	out := mustCLI(t, d, "-config", conf, "directory", "sync", "-full", "-force")
	if !strings.Contains(out, "disabled 1, deleted 0") || !strings.Contains(out, "vanished: max@example.test (disabled, mail kept") {
		t.Fatalf("sync output: %q", out)
	}
	if out := mustCLI(t, d, "-config", conf, "directory", "status"); !strings.Contains(out, "1 vanished users kept") || !strings.Contains(out, "vanished: max@example.test") {
		t.Fatalf("status: %q", out)
	}
	if out := mustCLI(t, d, "user", "list"); !strings.Contains(out, "max@example.test") || !strings.Contains(out, "disabled") {
		t.Fatalf("user list: %q", out)
	}
	if out := mustCLI(t, d, "mail", "list", "max@example.test"); strings.Count(out, "\n") != 1 {
		t.Fatalf("mail of the vanished user: %q", out)
	}
	if code, _, errs := cli(t, d, "", "user", "enable", "max@example.test"); code == 0 || !strings.Contains(errs, "vanished") {
		t.Fatalf("enable of a vanished user: %d %q", code, errs)
	}

	code, out, errs := cli(t, d, "", "user", "delete", "max@example.test")
	if code != 0 || !strings.Contains(out, "user max@example.test deleted with its mailbox") || !strings.Contains(errs, "user deleted") {
		t.Fatalf("user delete: %d %q %q", code, out, errs)
	}
	if out := mustCLI(t, d, "user", "list"); strings.Contains(out, "max@example.test") {
		t.Fatalf("deleted user listed: %q", out)
	}
	if out := mustCLI(t, d, "check"); !strings.Contains(out, "store ok") || strings.Contains(out, "completed") {
		t.Fatalf("check: %q", out)
	}
	// A user the directory still lists comes back with the next sync.
	if out := mustCLI(t, d, "user", "delete", "lena@example.test"); !strings.Contains(out, "its next sync creates it again") {
		t.Fatalf("delete of a listed user: %q", out)
	}
	if code, _, _ := cli(t, d, "", "user", "delete", "nobody@example.test"); code == 0 {
		t.Fatal("delete of an unknown user succeeded")
	}
}
