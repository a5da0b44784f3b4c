package imap

import (
	"strings"
	"testing"
)

// A mailbox name that is not valid modified UTF-7 (RFC 9051 §5.1.3) is
// still a well-formed astring: it names no mailbox, so commands on it
// fail with NO, not BAD, and LIST matches nothing (as Dovecot answers:
// "NO Mailbox name is not valid mUTF-7", LIST an empty OK). A name that
// must exist gets NO [NONEXISTENT]; a name to be created NO [CANNOT]
// (RFC 5530 §3: the operation can never succeed).
func TestInvalidModifiedUTF7MailboxName(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.expectOK("CREATE Projects")

	for _, c := range []string{
		`SELECT "x&Jjo"`,
		`EXAMINE x&Jjo`,
		`STATUS "x&Jjo" (MESSAGES)`,
		`DELETE "x&Jjo"`,
		`RENAME "x&Jjo" Other`,
		`SELECT "a&-b&AAA"`,
		`UNSUBSCRIBE "x&Jjo"`,
		`APPEND "x&Jjo" {3}`, // refused before the literal is asked for
	} {
		u := r.expectStatus(c, "NO [NONEXISTENT]")
		mustNotHave(t, u, "+ ")
	}
	r.expectStatus(`CREATE "x&Jjo"`, "NO [CANNOT]")
	r.expectStatus(`CREATE "a&-b&AAA/c"`, "NO [CANNOT]")
	r.expectStatus(`RENAME Projects "x&Jjo"`, "NO [CANNOT]")
	u := r.expectOK(`LIST "" "*"`)
	mustHave(t, u, `"Projects"`)

	for _, c := range []string{`LIST "" "x&Jjo"`, `LIST "" "x&Jjo*"`, `LIST "x&Jjo" "*"`, `LSUB "" "x&Jjo"`,
		`LIST (SUBSCRIBED) "" ("x&Jjo" "y&Jjo")`} {
		u := r.expectOK(c)
		if len(u) != 0 {
			t.Fatalf("%s: %q", c, u)
		}
	}
	// The valid patterns of a list still match.
	u = r.expectOK(`LIST "" ("x&Jjo" "Proj*")`)
	if len(u) != 1 || !strings.Contains(u[0], `"Projects"`) {
		t.Fatalf("LIST with one invalid pattern: %q", u)
	}

	// Syntax errors stay BAD, and the session goes on.
	r.expectStatus(`SELECT "open`, "BAD")
	r.expectStatus(`LIST ""`, "BAD")
	r.expectStatus(`LIST "" ()`, "BAD")
	r.expectOK("SELECT Archive")
	r.expectStatus(`COPY 1:x "x&Jjo"`, "BAD")
	r.expectOK("NOOP")
}
