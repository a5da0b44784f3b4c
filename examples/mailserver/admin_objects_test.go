package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// mustFail runs a command that must fail with exit code 1 and an error
// that contains want (and no package prefixes).
func mustFail(t *testing.T, dataDir, stdin, want string, args ...string) {
	t.Helper()
	code, out, errs := cli(t, dataDir, stdin, args...)
	if code != 1 || !strings.Contains(errs, want) {
		t.Fatalf("%v: exit %d, stdout %q, stderr %q; want %q", args, code, out, errs, want)
	}
	for _, internal := range []string{"directory:", "store:", "sqlite:", "strconv"} {
		if strings.Contains(errs, internal) {
			t.Fatalf("%v: error %q shows %q", args, errs, internal)
		}
	}
}

// decode parses a -json output.
func decode[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return v
}

// An administrator creates, inspects, changes and deletes every object
// type from the command line: domains, users (with their aliases),
// aliases and groups.
func TestAdminObjectLifecycle(t *testing.T) {
	d := newDataDir(t)

	// Domains.
	mustCLI(t, d, "domain", "add", "example.test", "example-alt.test")
	mustCLI(t, d, "domain", "add", "spare.test")
	mustFail(t, d, "", "domain example.test already exists", "domain", "add", "example.test")
	if out := mustCLI(t, d, "domain", "list"); !regexp.MustCompile(`^DOMAIN +ALTERNATIVE NAMES +CREATED\n`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^spare\.test +- +\d{4}-`).MatchString(out) {
		t.Fatalf("domain list: %q", out)
	}
	doms := decode[[]domainView](t, mustCLI(t, d, "domain", "list", "-json"))
	if len(doms) != 2 || doms[0].Name != "example.test" || doms[0].AlternativeNames[0] != "example-alt.test" {
		t.Fatalf("domain list -json: %+v", doms)
	}
	mustFail(t, d, "", "no domain nowhere.test", "domain", "show", "nowhere.test")

	// Users: create, inspect, change.
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "pw1", "-name", "Alice A")
	mustCLI(t, d, "user", "add", "bob@example.test", "-password", "pw2", "-alias", "robert@example.test")
	mustFail(t, d, "", "address alice@example.test is already in use", "user", "add", "alice@example.test", "-password", "x")
	if out := mustCLI(t, d, "user", "list", "example.test"); !regexp.MustCompile(`^ADDRESS +ID +STATE +NAME +ALIASES\n`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^bob@example\.test +\w+ +enabled +- +robert@example\.test$`).MatchString(out) {
		t.Fatalf("user list: %q", out)
	}
	mustCLI(t, d, "user", "set", "alice@example.test", "-name", "Alice Archer", "-quota-bytes", "5000", "-quota-messages", "10", "-protocols", "imap,smtp")
	mustCLI(t, d, "user", "alias", "add", "alice@example.test", "a.archer@example.test", "aa@example-alt.test")
	mustCLI(t, d, "user", "alias", "remove", "alice@example.test", "aa@example.test")
	u := decode[userView](t, mustCLI(t, d, "user", "show", "alice@example.test", "-json"))
	if u.DisplayName != "Alice Archer" || u.QuotaBytes != 5000 || u.QuotaMessages != 10 || len(u.Protocols) != 2 ||
		strings.Join(u.Aliases, ",") != "a.archer@example.test" || u.UsedMessages == nil || *u.UsedMessages != 0 {
		t.Fatalf("user show -json after set: %+v", u)
	}
	if out := mustCLI(t, d, "user", "show", "alice@example.test"); !strings.Contains(out, "quota:     5000 bytes, 10 messages") ||
		!strings.Contains(out, "protocols: imap,smtp") || strings.Contains(out, "argon2") {
		t.Fatalf("user show: %q", out)
	}
	// The store account has the new quota too.
	st, err := sqlite.Open(context.Background(), d, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	_, q, err := st.Usage(context.Background(), u.ID)
	st.Close()
	if err != nil || q.MaxBytes != 5000 || q.MaxMessages != 10 {
		t.Fatalf("account quota %+v, %v", q, err)
	}
	mustCLI(t, d, "user", "set", "alice@example.test", "-protocols", "all", "-quota-bytes", "0")
	if u := decode[userView](t, mustCLI(t, d, "user", "show", "alice@example.test", "--json")); len(u.Protocols) != 0 || u.QuotaBytes != 0 || u.QuotaMessages != 10 {
		t.Fatalf("user set -protocols all: %+v", u)
	}
	mustFail(t, d, "", `user alice@example.test: unknown protocol "pop3"`, "user", "set", "alice@example.test", "-protocols", "pop3")
	mustFail(t, d, "", "user alice@example.test: negative quota", "user", "set", "alice@example.test", "-quota-bytes", "-1")
	mustFail(t, d, "", "no user nobody@example.test", "user", "show", "nobody@example.test")

	// Aliases.
	mustCLI(t, d, "alias", "add", "info@example.test", "alice@example.test", "someone@elsewhere.test")
	if out := mustCLI(t, d, "alias", "list"); !regexp.MustCompile(`^ADDRESS +TARGETS\ninfo@example\.test +alice@example\.test,someone@elsewhere\.test\n$`).MatchString(out) {
		t.Fatalf("alias list: %q", out)
	}
	if out := mustCLI(t, d, "alias", "show", "info@example.test"); !strings.Contains(out, "targets: alice@example.test, someone@elsewhere.test") {
		t.Fatalf("alias show: %q", out)
	}
	mustFail(t, d, "", "no alias nothing@example.test", "alias", "show", "nothing@example.test")
	mustCLI(t, d, "alias", "target", "add", "info@example.test", "bob@example.test")
	mustCLI(t, d, "alias", "target", "remove", "info@example.test", "someone@elsewhere.test")
	if out := mustCLI(t, d, "alias", "show", "info@example.test"); !strings.Contains(out, "targets: alice@example.test, bob@example.test\n") {
		t.Fatalf("alias show after target add/remove: %q", out)
	}

	// Groups.
	mustCLI(t, d, "group", "add", "team@example.test", "alice@example.test", "bob@example.test", "-send-as", "bob@example.test")
	if out := mustCLI(t, d, "group", "list", "example.test"); !regexp.MustCompile(`^ADDRESS +NAME +MEMBERS +SEND AS\nteam@example\.test +- +alice@example\.test,bob@example\.test +bob@example\.test\n$`).MatchString(out) {
		t.Fatalf("group list: %q", out)
	}
	g := decode[groupView](t, mustCLI(t, d, "group", "show", "team@example.test", "-json"))
	if len(g.Members) != 2 || strings.Join(g.SendAs, ",") != "bob@example.test" {
		t.Fatalf("group show -json: %+v", g)
	}
	mustFail(t, d, "", "no group alice@example.test", "group", "show", "alice@example.test")
	mustCLI(t, d, "group", "member", "remove", "team@example.test", "alice@example.test")
	mustCLI(t, d, "group", "member", "add", "team@example.test", "info@example.test")
	if g := decode[groupView](t, mustCLI(t, d, "group", "show", "team@example.test", "-json")); strings.Join(g.Members, ",") != "bob@example.test,info@example.test" {
		t.Fatalf("group members after member add/remove: %+v", g)
	}
	mustFail(t, d, "", "no member carol@example.test of group team@example.test", "group", "member", "remove", "team@example.test", "carol@example.test")
	if v := decode[domainView](t, mustCLI(t, d, "domain", "show", "example.test", "-json")); v.Users == nil || *v.Users != 2 || *v.Aliases != 1 || *v.Groups != 1 {
		t.Fatalf("domain show: %+v", v)
	}

	// Deletion asks first: no answer, or another answer, deletes nothing.
	mustFail(t, d, "", "give --yes", "group", "delete", "team@example.test")
	mustFail(t, d, "n\n", "nothing deleted", "alias", "delete", "info@example.test")
	mustFail(t, d, "", "domain still has addresses", "domain", "delete", "example.test", "-yes")
	mustCLI(t, d, "group", "show", "team@example.test")
	mustCLI(t, d, "alias", "show", "info@example.test")
	if code, out, errs := cli(t, d, "y\n", "group", "delete", "team@example.test"); code != 0 || !strings.Contains(out, "group team@example.test deleted") ||
		!strings.Contains(errs, "delete group team@example.test (2 members)? [y/N]") {
		t.Fatalf("group delete: %d %q %q", code, out, errs)
	}
	mustCLI(t, d, "alias", "delete", "info@example.test", "-yes")
	mustCLI(t, d, "user", "delete", "alice@example.test", "-yes")
	mustCLI(t, d, "user", "delete", "--yes", "bob@example.test")
	mustFail(t, d, "", "example-alt.test is an alternative name of domain example.test", "domain", "delete", "example-alt.test", "-yes")
	mustCLI(t, d, "domain", "delete", "example.test", "-yes")
	mustCLI(t, d, "domain", "delete", "spare.test", "-yes")
	for _, list := range [][]string{{"domain", "list"}, {"user", "list"}, {"alias", "list"}, {"group", "list"}} {
		if out := mustCLI(t, d, append(list, "-json")...); strings.TrimSpace(out) != "[]" {
			t.Fatalf("%v after the deletions: %q", list, out)
		}
		if out := mustCLI(t, d, list...); strings.Count(out, "\n") != 1 {
			t.Fatalf("%v after the deletions: %q", list, out)
		}
	}
	mustFail(t, d, "", "no user alice@example.test", "user", "show", "alice@example.test")
	if out := mustCLI(t, d, "check"); !strings.Contains(out, "store ok") {
		t.Fatalf("check: %q", out)
	}
}

// mail list shows date, from and subject, decoded and without control
// characters; errors about mailboxes and UIDs are in the user's terms.
func TestMailListShowsFromAndSubject(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "bob@example.test", "-password", "pw")
	st, err := sqlite.Open(context.Background(), d, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	u := decode[userView](t, mustCLI(t, d, "user", "show", "bob@example.test", "-json"))
	msg := "From: =?utf-8?q?J=C3=BCrgen?= <j@elsewhere.test>\r\nSubject: hello\tthere\x1b[31m\r\n\r\nbody\r\n"
	date := time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)
	if _, err := st.Append(context.Background(), u.ID, "INBOX", strings.NewReader(msg), store.AppendOptions{Flags: []string{`\Seen`}, InternalDate: date}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out := mustCLI(t, d, "mail", "list", "bob@example.test")
	if !regexp.MustCompile(`^UID +SIZE +DATE +FLAGS +FROM +SUBJECT\n1 +\d+ +2026-03-04 05:06 \+0000 +\\Seen +Jürgen <j@elsewhere\.test> +hello there \[31m\n$`).MatchString(out) {
		t.Fatalf("mail list: %q", out)
	}
	ms := decode[[]mailView](t, mustCLI(t, d, "mail", "list", "bob@example.test", "INBOX", "-json"))
	if len(ms) != 1 || ms[0].Subject != "hello there [31m" || ms[0].UID != 1 {
		t.Fatalf("mail list -json: %+v", ms)
	}
	mustFail(t, d, "", "no mailbox NoSuchBox", "mail", "list", "bob@example.test", "NoSuchBox")
	mustFail(t, d, "", "no mailbox NoSuchBox", "mail", "cat", "bob@example.test", "NoSuchBox", "1")
	mustFail(t, d, "", `UID "x" is not a message number`, "mail", "cat", "bob@example.test", "INBOX", "x")
	mustFail(t, d, "", "no message with UID 7 in INBOX", "mail", "cat", "bob@example.test", "INBOX", "7")
}
