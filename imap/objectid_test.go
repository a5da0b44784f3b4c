package imap

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

var (
	mailboxIDRe = regexp.MustCompile(`MAILBOXID \(([A-Za-z0-9_-]{1,255})\)`)
	emailIDRe   = regexp.MustCompile(`EMAILID \(([A-Za-z0-9_-]{1,255})\)`)
)

// find returns the first submatch of re in lines, failing the test when
// there is none.
func find(t *testing.T, re *regexp.Regexp, lines ...string) string {
	t.Helper()
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no %s in %q", re, lines)
	return ""
}

// TestObjectIDMailboxes: RFC 8474's example: CREATE answers the
// MAILBOXID, RENAME keeps it, STATUS and SELECT report it; a mailbox
// created again under a deleted one's name gets a new one.
func TestObjectIDMailboxes(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	mustHave(t, r.expectOK("CAPABILITY"), "OBJECTID")
	_, st := r.cmd("create foo")
	foo := find(t, mailboxIDRe, st)
	if !strings.HasPrefix(st, "OK [MAILBOXID (") {
		t.Fatalf("CREATE: %q", st)
	}
	_, st = r.cmd("create bar")
	bar := find(t, mailboxIDRe, st)
	if foo == bar {
		t.Fatalf("foo and bar share MAILBOXID %s", foo)
	}
	r.expectStatus("create foo", "NO")
	r.expectOK("rename foo renamed")
	u := r.expectOK("status renamed (mailboxid)")
	mustHave(t, u, "* STATUS \"renamed\" (MAILBOXID ("+foo+"))")
	u = r.expectOK("STATUS renamed (MESSAGES MAILBOXID UIDNEXT)")
	mustHave(t, u, "* STATUS \"renamed\" (MESSAGES 0 UIDNEXT 1 MAILBOXID ("+foo+"))")
	u = r.expectOK("select renamed")
	mustHave(t, u, "* OK [MAILBOXID ("+foo+")] Ok")
	u = r.expectOK("EXAMINE bar")
	mustHave(t, u, "* OK [MAILBOXID ("+bar+")]")

	r.expectOK("UNSELECT")
	r.expectOK("DELETE renamed")
	_, st = r.cmd("CREATE renamed")
	if again := find(t, mailboxIDRe, st); again == foo || again == bar {
		t.Fatalf("re-created mailbox got the old MAILBOXID %s", again)
	}
	r.expectStatus("STATUS nowhere (MAILBOXID)", "NO")
	// LIST-STATUS (RFC 5819) takes it too, as the RFC's example does.
	u = r.expectOK(`list "" "*" RETURN (STATUS (MAILBOXID))`)
	mustHave(t, u, `* LIST (\HasNoChildren) "/" "bar"`)
	mustHave(t, u, `* STATUS "bar" (MAILBOXID (`+bar+`))`)
	mustHave(t, u, `* STATUS INBOX (MAILBOXID (F`)
}

// TestObjectIDMessages: RFC 8474's example: FETCH EMAILID and
// THREADID (NIL: no threads kept); a copy and a moved message keep
// the EMAILID, another APPEND of the same text gets its own, another
// user's copy of one delivery its own; SEARCH EMAILID and THREADID.
func TestObjectIDMessages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.st.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: e.aliceID}, {Account: e.bobID}}},
		bytes.NewReader([]byte(multiMsg1))); err != nil {
		t.Fatal(err)
	}
	r := loggedIn(e)
	r.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s\r\n", len(multiMsg1), multiMsg1))
	if _, st := r.readUntil("a"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("APPEND: %q", st)
	}
	r.expectOK("SELECT INBOX")
	u := r.expectOK("UID FETCH 1:* (EMAILID THREADID)")
	if len(u) != 2 {
		t.Fatalf("FETCH: %q", u)
	}
	mustHave(t, u, "* 1 FETCH (UID 1 EMAILID (M", ") THREADID NIL)")
	id1, id2 := find(t, emailIDRe, u[0]), find(t, emailIDRe, u[1])
	if id1 == id2 {
		t.Fatalf("two APPENDs share EMAILID %s", id1)
	}

	r.expectOK("COPY 1 Archive")
	r.expectOK("MOVE 2 Trash")
	r.expectOK("EXAMINE Archive")
	if got := find(t, emailIDRe, r.expectOK("FETCH 1 (EMAILID)")...); got != id1 {
		t.Fatalf("copy's EMAILID %s, want %s", got, id1)
	}
	r.expectOK("EXAMINE Trash")
	if got := find(t, emailIDRe, r.expectOK("FETCH 1 (EMAILID)")...); got != id2 {
		t.Fatalf("moved message's EMAILID %s, want %s", got, id2)
	}

	r.expectOK("SELECT INBOX")
	u = r.expectOK("SEARCH EMAILID " + id1)
	if len(u) != 1 || u[0] != "* SEARCH 1" {
		t.Fatalf("SEARCH EMAILID: %q", u)
	}
	for _, c := range []string{"EMAILID " + id2, "THREADID T1", "EMAILID " + id1 + " EMAILID " + id2} {
		if u := r.expectOK("SEARCH " + c); len(u) != 1 || u[0] != "* SEARCH" {
			t.Fatalf("SEARCH %s: %q", c, u)
		}
	}
	r.expectStatus("SEARCH EMAILID M$1", "BAD")
	r.expectStatus("SEARCH EMAILID "+strings.Repeat("M", 256), "BAD")

	// Bob's copy of the same delivery.
	b := e.rawTLS()
	b.expectOK(`LOGIN bob@example.com "battery staple"`)
	b.expectOK("SELECT INBOX")
	if got := find(t, emailIDRe, b.expectOK("FETCH 1 (EMAILID)")...); got == id1 || got == id2 {
		t.Fatalf("bob's copy has alice's EMAILID %s", got)
	}
}
