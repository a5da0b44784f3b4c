package imap

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Tests for CONDSTORE and QRESYNC (RFC 7162) at the wire level.

var (
	highestModSeqRE = regexp.MustCompile(`\[HIGHESTMODSEQ (\d+)\]`)
	modSeqRE        = regexp.MustCompile(`MODSEQ \((\d+)\)`)
	uidValidityRE   = regexp.MustCompile(`\[UIDVALIDITY (\d+)\]`)
)

// number returns the first submatch of re in lines as a number.
func number(t *testing.T, lines []string, re *regexp.Regexp) uint64 {
	t.Helper()
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			n, err := strconv.ParseUint(m[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %v in:\n%s", re, strings.Join(lines, "\n"))
	return 0
}

// fetchModSeq returns the MODSEQ of the FETCH response of message seq.
func fetchModSeq(t *testing.T, lines []string, seq int) uint64 {
	t.Helper()
	return number(t, filter(lines, fmt.Sprintf("* %d FETCH (", seq)), modSeqRE)
}

// fromLine returns lines from the first one that contains part.
func fromLine(t *testing.T, lines []string, part string) []string {
	t.Helper()
	for i, l := range lines {
		if strings.Contains(l, part) {
			return lines[i:]
		}
	}
	t.Fatalf("no %q in:\n%s", part, strings.Join(lines, "\n"))
	return nil
}

// idleStarted sends IDLE and waits for the continuation request.
func (r *raw) idleStarted() string {
	r.t.Helper()
	r.n++
	tag := fmt.Sprintf("t%d", r.n)
	r.send(tag + " IDLE\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		r.t.Fatalf("IDLE: %q", l)
	}
	return tag
}

func TestCondStoreAnnouncedAndEnabled(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	u := r.expectOK("CAPABILITY")
	mustHave(t, u, " CONDSTORE")
	mustHave(t, u, " QRESYNC")
	u = r.expectOK("ENABLE CONDSTORE")
	mustHave(t, u, "* ENABLED CONDSTORE")
	u = r.expectOK("ENABLE QRESYNC")
	mustHave(t, u, "* ENABLED QRESYNC")
}

func TestSelectCondStore(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	e.deliver(e.aliceID, "", simpleMsg)

	// Before a CONDSTORE enabling command, nothing changes.
	plain := loggedIn(e)
	u := plain.expectOK("SELECT INBOX")
	mustNotHave(t, u, "HIGHESTMODSEQ")
	u = plain.expectOK("FETCH 1:* (FLAGS)")
	mustNotHave(t, u, "MODSEQ")

	r := loggedIn(e)
	u = r.expectOK("SELECT INBOX (CONDSTORE)")
	hms := number(t, u, highestModSeqRE)
	mustHave(t, u, "* OK [HIGHESTMODSEQ")
	u = r.expectOK("FETCH 1:* (FLAGS)")
	if m1, m2 := fetchModSeq(t, u, 1), fetchModSeq(t, u, 2); m1 > hms || m2 > hms || m1 == 0 {
		t.Fatalf("MODSEQ %d, %d with HIGHESTMODSEQ %d", m1, m2, hms)
	}
	// Without FLAGS, no MODSEQ unless asked for.
	u = r.expectOK("FETCH 1 (UID)")
	mustNotHave(t, u, "MODSEQ")
	u = r.expectOK("FETCH 1 (MODSEQ)")
	mustHave(t, u, "* 1 FETCH (MODSEQ (")

	// EXAMINE too; the parameter list is case-insensitive.
	u = r.expectOK("EXAMINE INBOX (condstore)")
	mustHave(t, u, "* OK [CLOSED]")
	mustHave(t, u, "* OK [HIGHESTMODSEQ")

	// Unknown select parameters are a client error.
	r.expectStatus("SELECT INBOX (FOO)", "BAD")
	r.expectStatus("SELECT INBOX (CONDSTORE", "BAD")
}

// A CONDSTORE enabling command with a mailbox selected reports the
// mailbox's HIGHESTMODSEQ, and every later FETCH with FLAGS has MODSEQ,
// including STORE's.
func TestCondStoreEnabledBySelectedCommands(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	for _, cmd := range []string{"FETCH 1 (MODSEQ)", "FETCH 1 (FLAGS) (CHANGEDSINCE 1)",
		"STORE 1 (UNCHANGEDSINCE 100000) +FLAGS (\\Answered)", "SEARCH MODSEQ 1", "ENABLE CONDSTORE", "STATUS Trash (HIGHESTMODSEQ)"} {
		r := loggedIn(e)
		r.expectOK("SELECT INBOX")
		u := r.expectOK(cmd)
		mustHave(t, u, "* OK [HIGHESTMODSEQ")
		if strings.HasPrefix(cmd, "STATUS") {
			mustHave(t, u, "* STATUS \"Trash\" (HIGHESTMODSEQ ")
		}
		u = r.expectOK("STORE 1 +FLAGS (\\Flagged)")
		mustHave(t, u, "* 1 FETCH (", "FLAGS (", "MODSEQ (")
		r.expectOK("STORE 1 -FLAGS (\\Flagged \\Answered)")
	}
}

func TestStoreUnchangedSince(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 3; i++ {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	r := loggedIn(e)
	r.expectOK("SELECT INBOX (CONDSTORE)")
	u := r.expectOK("FETCH 1:3 (UID MODSEQ)")
	m1, m2 := fetchModSeq(t, u, 1), fetchModSeq(t, u, 2)
	top := max(m1, m2, fetchModSeq(t, u, 3))

	// Unchanged since: applied, with the new MODSEQ in the FETCH.
	_, st := r.cmd(fmt.Sprintf("STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)", top))
	if st != "OK STORE completed" {
		t.Fatalf("STORE: %q", st)
	}
	u = r.expectOK("FETCH 1 (FLAGS)")
	n1 := fetchModSeq(t, u, 1)
	if n1 <= top {
		t.Fatalf("MODSEQ %d after change, was %d", n1, m1)
	}

	// Changed since: refused for that message, applied to the others, and
	// named in MODIFIED (sequence numbers for STORE, RFC 7162 §3.1.3).
	u, st = r.cmd(fmt.Sprintf("STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)", top))
	if st != "OK [MODIFIED 1] Conditional STORE failed" {
		t.Fatalf("conditional STORE: %q (untagged %q)", st, u)
	}
	mustHave(t, u, "* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ (")
	mustNotHave(t, u, "* 1 FETCH")
	u = r.expectOK("FETCH 1:2 (FLAGS)")
	mustHave(t, u, "* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ")
	if got := fetchModSeq(t, u, 2); got <= m2 {
		t.Fatalf("message 2 MODSEQ %d, was %d", got, m2)
	}

	// UID STORE names UIDs (message 1 is UID 1 here; UID 3 is unchanged).
	_, st = r.cmd(fmt.Sprintf("UID STORE 1,3 (UNCHANGEDSINCE %d) -FLAGS (\\Flagged)", top))
	if st != "OK [MODIFIED 1] Conditional STORE failed" {
		t.Fatalf("conditional UID STORE: %q", st)
	}

	// UNCHANGEDSINCE 0 always fails (RFC 7162 §3.1.3).
	u, st = r.cmd("STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS (\\Deleted)")
	if st != "OK [MODIFIED 1:3] Conditional STORE failed" {
		t.Fatalf("UNCHANGEDSINCE 0: %q", st)
	}
	mustNotHave(t, u, "FETCH")

	// .SILENT still reports the new MODSEQ of the changed messages, without
	// FLAGS (RFC 7162 §3.1.3).
	u = r.expectOK("FETCH 3 (MODSEQ)")
	m3 := fetchModSeq(t, u, 3)
	u = r.expectOK(fmt.Sprintf("STORE 3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Answered)", m3))
	mustHave(t, u, "* 3 FETCH (UID 3 MODSEQ (")
	mustNotHave(t, u, "FLAGS")
	n3 := fetchModSeq(t, u, 3)

	// A STORE that changes nothing keeps the MODSEQ (RFC 7162 §3.1: adding
	// a flag already there SHOULD NOT change it).
	u = r.expectOK("STORE 3 +FLAGS (\\Answered)")
	if got := fetchModSeq(t, u, 3); got != n3 {
		t.Fatalf("no-op STORE changed MODSEQ %d -> %d", n3, got)
	}
	u = r.expectOK("STORE 3 +FLAGS.SILENT (\\Answered)")
	mustNotHave(t, u, "FETCH")
	// A conditional STORE reports the MODSEQ even then.
	u = r.expectOK(fmt.Sprintf("STORE 3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Answered)", n3))
	if len(u) != 1 || u[0] != fmt.Sprintf("* 3 FETCH (UID 3 MODSEQ (%d))", n3) {
		t.Fatalf("no-op conditional STORE: %q", u)
	}

	// Syntax errors.
	r.expectStatus("STORE 1 (UNCHANGEDSINCE 5 UNCHANGEDSINCE 6) +FLAGS (\\Seen)", "BAD")
	r.expectStatus("STORE 1 (FOO 5) +FLAGS (\\Seen)", "BAD")
	r.expectStatus("STORE 1 (UNCHANGEDSINCE 99999999999999999999) +FLAGS (\\Seen)", "BAD")
}

// Flag changes by another session carry MODSEQ in NOOP and IDLE, also a
// change that leaves the flags as they were.
func TestCondStoreOtherSession(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	e.deliver(e.aliceID, "", simpleMsg)
	a, b := loggedIn(e), loggedIn(e)
	hms := number(t, a.expectOK("SELECT INBOX (CONDSTORE)"), highestModSeqRE)
	b.expectOK("SELECT INBOX")

	b.expectOK("STORE 2 +FLAGS (\\Flagged)")
	u := a.expectOK("NOOP")
	mustHave(t, u, "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (")
	m := fetchModSeq(t, u, 2)
	if m <= hms {
		t.Fatalf("MODSEQ %d not above %d", m, hms)
	}
	// Reported once.
	u = a.expectOK("NOOP")
	mustNotHave(t, u, "FETCH")

	// Set and cleared again: same flags, new MODSEQ.
	b.expectOK("STORE 2 +FLAGS (\\Seen)")
	b.expectOK("STORE 2 -FLAGS (\\Seen)")
	u = a.expectOK("NOOP")
	mustHave(t, u, "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (")
	if got := fetchModSeq(t, u, 2); got <= m {
		t.Fatalf("MODSEQ %d not above %d", got, m)
	}

	// A's own changes are not reported again by the poll; STORE's FETCH
	// responses carry the UID (RFC 7162 §3.2.4).
	u = a.expectOK("STORE 1 +FLAGS (\\Answered)")
	if n := len(filter(u, "FETCH")); n != 1 {
		t.Fatalf("own STORE: %q", u)
	}
	mustHave(t, u, "* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent) MODSEQ (")
	u = a.expectOK("NOOP")
	mustNotHave(t, u, "FETCH")

	// IDLE.
	tag := a.idleStarted()
	b.expectOK("STORE 1 +FLAGS (\\Draft)")
	var got []string
	for l := a.line(); ; l = a.line() {
		got = append(got, l)
		if strings.Contains(l, "FETCH") {
			break
		}
	}
	a.send("DONE\r\n")
	if _, st := a.readUntil(tag); !strings.HasPrefix(st, "OK") {
		t.Fatalf("IDLE: %q", st)
	}
	mustHave(t, got, "* 1 FETCH (UID 1 FLAGS (\\Answered \\Draft \\Recent) MODSEQ (")
}

// A .SILENT STORE must not swallow another session's change to the same
// message (RFC 9051 §6.4.6): FLAGS are then reported after all, with the
// MODSEQ, and the next NOOP has nothing left to say.
func TestSilentStoreReportsExternalChange(t *testing.T) {
	for _, condStore := range []bool{false, true} {
		e := newEnv(t)
		e.deliver(e.aliceID, "", simpleMsg)
		a, b := loggedIn(e), loggedIn(e)
		sel := "SELECT INBOX"
		if condStore {
			sel += " (CONDSTORE)"
		}
		a.expectOK(sel)
		b.expectOK("SELECT INBOX")
		b.expectOK("STORE 1 +FLAGS (\\Flagged)")
		u := a.expectOK("STORE 1 +FLAGS.SILENT (\\Seen)")
		mustHave(t, u, "* 1 FETCH (", "FLAGS (\\Flagged \\Seen \\Recent)")
		if condStore {
			mustHave(t, u, "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Seen \\Recent) MODSEQ (")
		}
		// Without another session's change .SILENT stays silent (but for
		// the MODSEQ once CONDSTORE is on).
		u = a.expectOK("STORE 1 -FLAGS.SILENT (\\Seen)")
		mustNotHave(t, u, "FLAGS (")
		u = a.expectOK("NOOP")
		mustNotHave(t, u, "FETCH")
	}
}

// FETCH BODY[] sets \Seen, which is a new MODSEQ; EXAMINE changes nothing.
func TestCondStoreImplicitSeen(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	r := loggedIn(e)
	hms := number(t, r.expectOK("EXAMINE INBOX (CONDSTORE)"), highestModSeqRE)
	u := r.expectOK("FETCH 1 (BODY[])")
	mustNotHave(t, u, "\\Seen")
	mustNotHave(t, u, "MODSEQ")
	u = r.expectOK("FETCH 1 (MODSEQ)")
	if got := fetchModSeq(t, u, 1); got > hms {
		t.Fatalf("EXAMINE changed MODSEQ: %d > %d", got, hms)
	}
	if got := number(t, r.expectOK("EXAMINE INBOX"), highestModSeqRE); got != hms {
		t.Fatalf("HIGHESTMODSEQ %d after EXAMINE, was %d", got, hms)
	}

	r.expectOK("SELECT INBOX")
	u = r.expectOK("FETCH 1 (BODY[])")
	// RFC 7162 §3.2.4: the implicit \Seen comes with UID and MODSEQ.
	mustHave(t, u, "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (")
	seen := fetchModSeq(t, u, 1)
	if seen <= hms {
		t.Fatalf("\\Seen MODSEQ %d not above %d", seen, hms)
	}
	u = r.expectOK("NOOP")
	mustNotHave(t, u, "FETCH")
}

func TestFetchChangedSinceVanished(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("ENABLE QRESYNC")
	hms := number(t, a.expectOK("SELECT INBOX"), highestModSeqRE)
	b.expectOK("SELECT INBOX")
	b.expectOK("STORE 2 +FLAGS (\\Flagged)")
	b.expectOK("STORE 4 +FLAGS (\\Deleted)")
	b.expectOK("EXPUNGE")
	a.expectOK("NOOP")

	// CHANGEDSINCE: only what changed, with MODSEQ.
	u := a.expectOK(fmt.Sprintf("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", hms))
	if len(u) != 1 || !strings.HasPrefix(u[0], "* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (") {
		t.Fatalf("CHANGEDSINCE: %q", u)
	}

	// UID FETCH ... VANISHED: expunged UIDs of the set first, as
	// VANISHED (EARLIER).
	u = a.expectOK(fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", hms))
	if len(u) != 2 || u[0] != "* VANISHED (EARLIER) 4" || !strings.HasPrefix(u[1], "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (") {
		t.Fatalf("CHANGEDSINCE VANISHED: %q", u)
	}
	u = a.expectOK(fmt.Sprintf("UID FETCH 1:3,5 (FLAGS) (CHANGEDSINCE %d VANISHED)", hms))
	mustNotHave(t, u, "VANISHED")

	// RFC 7162 §3.2.6: BAD for FETCH, without CHANGEDSINCE, without QRESYNC.
	a.expectStatus(fmt.Sprintf("FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", hms), "BAD")
	a.expectStatus("UID FETCH 1:* (FLAGS) (VANISHED)", "BAD")
	a.expectStatus("UID FETCH 1:* (FLAGS) (FOO)", "BAD")
	c := loggedIn(e)
	c.expectOK("SELECT INBOX (CONDSTORE)")
	c.expectStatus(fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", hms), "BAD")
	u = c.expectOK(fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", hms))
	mustHave(t, u, "UID 2 FLAGS (\\Flagged) MODSEQ (")
}

func TestSearchModSeq(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 3; i++ {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	u := r.expectOK("STORE 2 +FLAGS (\\Flagged)")
	mustNotHave(t, u, "MODSEQ")
	u = r.expectOK("SEARCH MODSEQ 1")
	mustHave(t, u, "* OK [HIGHESTMODSEQ")
	u = r.expectOK("FETCH 2 (MODSEQ)")
	m := fetchModSeq(t, u, 2)

	u = r.expectOK(fmt.Sprintf("SEARCH MODSEQ %d", m))
	mustHave(t, u, fmt.Sprintf("* SEARCH 2 (MODSEQ %d)", m))
	// Entry name and type are accepted; the MODSEQ is per message.
	u = r.expectOK(fmt.Sprintf(`SEARCH MODSEQ "/flags/\\flagged" all %d`, m))
	mustHave(t, u, fmt.Sprintf("* SEARCH 2 (MODSEQ %d)", m))
	u = r.expectOK(fmt.Sprintf("SEARCH MODSEQ %d", m+1))
	if len(u) != 1 || u[0] != "* SEARCH" {
		t.Fatalf("no match: %q", u)
	}
	u = r.expectOK(fmt.Sprintf("SEARCH NOT MODSEQ %d", m))
	mustHave(t, u, "* SEARCH 1 3 (MODSEQ ")
	u = r.expectOK(fmt.Sprintf("UID SEARCH RETURN (ALL COUNT) MODSEQ %d", m))
	mustHave(t, u, fmt.Sprintf("* ESEARCH (TAG \"t%d\") UID ALL 2 COUNT 1 MODSEQ %d", r.n, m))
	// MIN alone: the MODSEQ of that message (RFC 7162 §3.1.10).
	u = r.expectOK("SEARCH RETURN (MIN) MODSEQ 1")
	u2 := r.expectOK("FETCH 1 (MODSEQ)")
	mustHave(t, u, fmt.Sprintf("MIN 1 MODSEQ %d", fetchModSeq(t, u2, 1)))
	// Without the MODSEQ key, no MODSEQ in the result.
	u = r.expectOK("SEARCH ALL")
	if len(u) != 1 || u[0] != "* SEARCH 1 2 3" {
		t.Fatalf("SEARCH ALL: %q", u)
	}
	r.expectStatus(`SEARCH MODSEQ "/flags/\\seen" bogus 1`, "BAD")
}

// With QRESYNC, expunges are VANISHED: from other sessions (NOOP, IDLE),
// EXPUNGE and UID EXPUNGE (with [HIGHESTMODSEQ] in the tagged OK) and
// MOVE; CLOSE reports nothing.
func TestQResyncVanished(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 8; i++ {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	a, b := loggedIn(e), loggedIn(e)
	u := a.expectOK("ENABLE QRESYNC")
	mustHave(t, u, "* ENABLED QRESYNC")
	a.expectOK("SELECT INBOX")
	b.expectOK("SELECT INBOX")

	b.expectOK("STORE 2,3 +FLAGS.SILENT (\\Deleted)")
	b.expectOK("EXPUNGE")
	u = a.expectOK("FETCH 2 (UID MODSEQ)")
	expectKinds(t, "FETCH after another session's EXPUNGE", u, "2 FETCH", "OK") // VANISHED held back during FETCH
	// Meanwhile HIGHESTMODSEQ stays below the expunges (RFC 7162 §3.2).
	held := number(t, u, highestModSeqRE)
	expectUntagged(t, "NOOP after another session's EXPUNGE", a.expectOK("NOOP"), "* VANISHED 2:3")
	u = b.expectOK("STATUS INBOX (HIGHESTMODSEQ)")
	if now := number(t, u, regexp.MustCompile(`HIGHESTMODSEQ (\d+)\)`)); held >= now {
		t.Fatalf("HIGHESTMODSEQ %d while expunges were held back, now %d", held, now)
	}

	// IDLE.
	b.expectOK("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
	u = a.expectOK("NOOP")
	expectKinds(t, "NOOP after another session's STORE", u, "2 FETCH")
	mustHave(t, u, "* 2 FETCH (UID 4 FLAGS (\\Deleted")
	tag := a.idleStarted()
	b.expectOK("EXPUNGE")
	if l := a.line(); l != "* VANISHED 4" {
		t.Fatalf("in IDLE: %q", l)
	}
	a.send("DONE\r\n")
	a.readUntil(tag)

	// Own EXPUNGE and UID EXPUNGE.
	a.expectOK("UID STORE 5:6 +FLAGS.SILENT (\\Deleted)")
	u, st := a.cmd("UID EXPUNGE 5")
	if len(u) != 1 || u[0] != "* VANISHED 5" || !strings.HasPrefix(st, "OK [HIGHESTMODSEQ ") {
		t.Fatalf("UID EXPUNGE: %q %q", u, st)
	}
	hms := number(t, []string{st}, highestModSeqRE)
	u, st = a.cmd("EXPUNGE")
	if len(u) != 1 || u[0] != "* VANISHED 6" || !strings.HasPrefix(st, "OK [HIGHESTMODSEQ ") {
		t.Fatalf("EXPUNGE: %q %q", u, st)
	}
	if got := number(t, []string{st}, highestModSeqRE); got <= hms {
		t.Fatalf("HIGHESTMODSEQ %d after EXPUNGE, was %d", got, hms)
	}
	// Nothing expunged: a plain OK.
	_, st = a.cmd("EXPUNGE")
	if st != "OK EXPUNGE completed" {
		t.Fatalf("empty EXPUNGE: %q", st)
	}

	// MOVE.
	// COPYUID before the VANISHED (RFC 9051 §6.4.8, RFC 7162 §3.2.10).
	u, st = a.cmd("UID MOVE 7 Trash")
	expectUntagged(t, "UID MOVE", u, fmt.Sprintf("* OK [COPYUID %d 7 1] COPY completed", uidValidity(t, e, "Trash")), "* VANISHED 7")
	if !strings.HasPrefix(st, "OK [HIGHESTMODSEQ ") {
		t.Fatalf("UID MOVE: %q", st)
	}

	// CLOSE: silent, and no HIGHESTMODSEQ (RFC 7162 §3.2.8).
	a.expectOK("STORE 1 +FLAGS.SILENT (\\Deleted)")
	u, st = a.cmd("CLOSE")
	if len(u) != 0 || st != "OK CLOSE completed" {
		t.Fatalf("CLOSE: %q %q", u, st)
	}
	// b has not enabled QRESYNC: EXPUNGE, highest sequence number first
	// (UIDs 7, 6, 5 and 1 of its view).
	expectUntagged(t, "NOOP without QRESYNC", b.expectOK("NOOP"), "* 4 EXPUNGE", "* 3 EXPUNGE", "* 2 EXPUNGE", "* 1 EXPUNGE")
}

// A client reconnecting with QRESYNC learns what vanished and what
// changed since its HIGHESTMODSEQ, within the SELECT.
func TestQResyncSelect(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 6; i++ {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	first := loggedIn(e)
	first.expectOK("ENABLE QRESYNC")
	u := first.expectOK("SELECT INBOX")
	uv := number(t, u, uidValidityRE)
	hms := number(t, u, highestModSeqRE)
	first.expectOK("LOGOUT")

	other := loggedIn(e)
	other.expectOK("SELECT INBOX")
	other.expectOK("STORE 2 +FLAGS (\\Flagged $Work)")
	other.expectOK("STORE 3,4 +FLAGS (\\Deleted)")
	other.expectOK("EXPUNGE")
	other.expectOK("UID STORE 6 +FLAGS (\\Seen)")

	// QRESYNC without ENABLE QRESYNC is BAD (RFC 7162 §3.2.5).
	r := loggedIn(e)
	r.expectStatus(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d))", uv, hms), "BAD")

	r.expectOK("ENABLE QRESYNC")
	u = r.expectOK(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d 1:6))", uv, hms))
	mustHave(t, u, "* 4 EXISTS")
	now := number(t, u, highestModSeqRE)
	if now <= hms {
		t.Fatalf("HIGHESTMODSEQ %d, was %d", now, hms)
	}
	v := filter(u, "VANISHED")
	if len(v) != 1 || v[0] != "* VANISHED (EARLIER) 3:4" {
		t.Fatalf("VANISHED: %q", u)
	}
	f := filter(u, "FETCH")
	if len(f) != 2 || !strings.HasPrefix(f[0], "* 2 FETCH (UID 2 FLAGS ($Work \\Flagged) MODSEQ (") ||
		!strings.HasPrefix(f[1], "* 4 FETCH (UID 6 FLAGS (\\Seen) MODSEQ (") {
		t.Fatalf("FETCH: %q", u)
	}
	// VANISHED (EARLIER) comes before the FETCH responses, after the
	// HIGHESTMODSEQ (RFC 7162 §3.2.5), and nothing else follows.
	expectKinds(t, "SELECT (QRESYNC) ending", fromLine(t, u, "HIGHESTMODSEQ"), "OK", "VANISHED", "2 FETCH", "4 FETCH")
	// Nothing is reported twice.
	u = r.expectOK("NOOP")
	mustNotHave(t, u, "FETCH")
	mustNotHave(t, u, "VANISHED")

	// Selecting another mailbox closes this one: [CLOSED] (RFC 7162
	// §3.2.11). known-uids limits the report.
	u = r.expectOK(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d 1:3))", uv, hms))
	if len(u) == 0 || u[0] != "* OK [CLOSED] Previous mailbox is now closed" {
		t.Fatalf("[CLOSED] is not the first response: %q", u)
	}
	tail := fromLine(t, u, "HIGHESTMODSEQ")
	expectKinds(t, "SELECT (QRESYNC) with known-uids 1:3", tail, "OK", "VANISHED", "2 FETCH")
	if tail[1] != "* VANISHED (EARLIER) 3" || !strings.Contains(tail[2], "UID 2 ") {
		t.Fatalf("known-uids 1:3: %q", u)
	}

	// seq-match-data: the client's message 3 is UID 5, so it knows that
	// 3 and 4 are gone (RFC 7162 §3.2.5.2); a wrong pair stops the match.
	u = r.expectOK(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d 1:6 (1:3 1,2,5)))", uv, hms))
	mustNotHave(t, u, "VANISHED")
	u = r.expectOK(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d 1:6 (1,3 1,3)))", uv, hms))
	mustHave(t, u, "* VANISHED (EARLIER) 3:4")
	u = r.expectOK(fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d (2 2)))", uv, hms))
	mustHave(t, u, "* VANISHED (EARLIER) 3:4")

	// Another UIDVALIDITY: the cache is void; no VANISHED, no FETCH.
	u = r.expectOK(fmt.Sprintf("EXAMINE INBOX (QRESYNC (%d %d 1:6))", uv+1, hms))
	mustHave(t, u, "* OK [HIGHESTMODSEQ")
	mustNotHave(t, u, "VANISHED")
	mustNotHave(t, u, "FETCH")

	// Up to date: nothing to report.
	u = r.expectOK(fmt.Sprintf("EXAMINE INBOX (QRESYNC (%d %d))", uv, now))
	mustNotHave(t, u, "VANISHED")
	mustNotHave(t, u, "FETCH")

	// Malformed parameters.
	for _, p := range []string{
		fmt.Sprintf("(QRESYNC (%d))", uv),
		fmt.Sprintf("(QRESYNC (%d %d 1:*))", uv, hms),
		fmt.Sprintf("(QRESYNC (%d %d 1:6 (1:3 1,2)))", uv, hms),
		fmt.Sprintf("(QRESYNC (%d %d 1:6 (1:* 1:3)))", uv, hms),
		fmt.Sprintf("(QRESYNC (%d %d) QRESYNC (%d %d))", uv, hms, uv, hms),
		fmt.Sprintf("(QRESYNC (0 %d))", hms),
	} {
		r.expectStatus("SELECT INBOX "+p, "BAD")
	}
}
