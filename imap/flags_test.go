package imap

import (
	"fmt"
	"strings"
	"testing"
)

// index returns the position of the first line that contains every one
// of parts, or -1.
func index(lines []string, parts ...string) int {
	for i, l := range lines {
		if has([]string{l}, parts...) {
			return i
		}
	}
	return -1
}

// mustPrecede fails unless a line with first comes before the first line
// with then (which must be there).
func mustPrecede(t *testing.T, lines []string, first, then []string) {
	t.Helper()
	i, j := index(lines, first...), index(lines, then...)
	if j < 0 {
		t.Fatalf("no line with %q in:\n%s", then, strings.Join(lines, "\n"))
	}
	if i < 0 || i > j {
		t.Fatalf("no line with %q before the line with %q in:\n%s", first, then, strings.Join(lines, "\n"))
	}
}

// A keyword new to the mailbox is announced in FLAGS and PERMANENTFLAGS
// before any FETCH response (or new message) carries it (RFC 9051
// §7.3.5: FLAGS lists the flags in use; §6.4.6: STORE's FETCH responses
// report the new flags), however it came in: STORE in this session,
// STORE in another one seen by NOOP or IDLE, APPEND and COPY.
func TestNewKeywordAnnouncedBeforeUse(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	e.deliver(e.aliceID, "", simpleMsg)
	a, b, ro := loggedIn(e), loggedIn(e), loggedIn(e)
	a.expectOK("SELECT INBOX")
	b.expectOK("SELECT INBOX")
	ro.expectOK("EXAMINE INBOX")

	newFlags := func(kw string) []string { return []string{"* FLAGS (", kw} }
	newPerm := func(kw string) []string { return []string{"* OK [PERMANENTFLAGS (", kw + ` \*)]`} }

	u := a.expectOK("STORE 1 +FLAGS ($Apple)")
	mustPrecede(t, u, newFlags("$Apple"), []string{"* 1 FETCH (", "$Apple"})
	mustPrecede(t, u, newPerm("$Apple"), []string{"* 1 FETCH (", "$Apple"})
	u = a.expectOK("NOOP")
	mustNotHave(t, u, "FLAGS")

	u = b.expectOK("NOOP")
	mustPrecede(t, u, newFlags("$Apple"), []string{"* 1 FETCH (", "$Apple"})
	mustPrecede(t, u, newPerm("$Apple"), []string{"* 1 FETCH (", "$Apple"})
	// A read-only session is told of the keyword, but its PERMANENTFLAGS
	// stay empty (RFC 9051 §6.3.3: EXAMINE permits no changes).
	u = ro.expectOK("NOOP")
	mustPrecede(t, u, newFlags("$Apple"), []string{"* 1 FETCH (", "$Apple"})
	mustNotHave(t, u, "PERMANENTFLAGS")

	// Another session's STORE, seen during IDLE.
	tag := b.idleStarted()
	a.expectOK("STORE 2 +FLAGS.SILENT ($Banana)")
	var got []string
	for !has(got, "* 2 FETCH (") {
		got = append(got, b.line())
	}
	b.send("DONE\r\n")
	if _, st := b.readUntil(tag); !strings.HasPrefix(st, "OK") {
		t.Fatalf("IDLE: %q", st)
	}
	mustPrecede(t, got, newFlags("$Banana"), []string{"* 2 FETCH (", "$Banana"})
	mustPrecede(t, got, newPerm("$Banana"), []string{"* 2 FETCH (", "$Banana"})

	// APPEND of a message with a new keyword into the selected mailbox:
	// FLAGS comes before the EXISTS that lets the client fetch it.
	u = a.expectOK(fmt.Sprintf("APPEND INBOX ($Cherry) {%d+}\r\n%s", len(simpleMsg), simpleMsg))
	mustPrecede(t, u, newFlags("$Cherry"), []string{"* 3 EXISTS"})
	u = b.expectOK("NOOP")
	mustPrecede(t, u, newFlags("$Cherry"), []string{"* 3 EXISTS"})
	mustPrecede(t, u, newPerm("$Cherry"), []string{"* 3 EXISTS"})

	// COPY of a message with a new keyword into the selected mailbox.
	a.expectOK(fmt.Sprintf("APPEND Archive ($Date) {%d+}\r\n%s", len(simpleMsg), simpleMsg))
	a.expectOK("SELECT Archive")
	a.expectOK("COPY 1 INBOX")
	u = b.expectOK("NOOP")
	mustPrecede(t, u, newFlags("$Date"), []string{"* 4 EXISTS"})
	mustPrecede(t, u, newPerm("$Date"), []string{"* 4 EXISTS"})
	u = b.expectOK("FETCH 4 FLAGS")
	mustHave(t, u, "* 4 FETCH (FLAGS (", "$Date")

	// FETCH FLAGS gives the store's current flags: a keyword another
	// session set since the last poll is announced first.
	a.expectOK("SELECT INBOX")
	a.expectOK("STORE 1 +FLAGS.SILENT ($Elder)")
	u = b.expectOK("FETCH 1:2 FLAGS")
	mustPrecede(t, u, newFlags("$Elder"), []string{"* 1 FETCH (", "$Elder"})
	mustPrecede(t, u, newPerm("$Elder"), []string{"* 1 FETCH (", "$Elder"})
}
