package imap

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Wire-level checks of fixes found by the imaptest compliance run
// (scripts listext, subscribe, move, search-intdate, expunge).

// lineWith returns the one line containing every part, failing if there
// is none.
func lineWith(t *testing.T, lines []string, parts ...string) string {
	t.Helper()
	for _, l := range lines {
		if has([]string{l}, parts...) {
			return l
		}
	}
	t.Fatalf("no line with %q in:\n%s", parts, strings.Join(lines, "\n"))
	return ""
}

// RFC 3501 §6.3.6 / RFC 9051 §6.3.7: the subscription list holds names;
// DELETE keeps a subscription, and LIST (SUBSCRIBED) shows such a name
// \NonExistent (RFC 5258 §3.1), LSUB plainly.
func TestSubscriptionsIndependentOfMailboxes(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.expectOK("CREATE a/b")
	r.expectOK("CREATE a/c")
	r.expectOK("SUBSCRIBE a/b")
	r.expectOK("SUBSCRIBE later") // RFC 9051 §6.3.7: may name no mailbox
	r.expectOK("DELETE a/b")

	u := r.expectOK(`LIST (SUBSCRIBED) "" "*"`)
	for _, name := range []string{`"a/b"`, `"later"`} {
		l := lineWith(t, u, "* LIST (", name)
		if !strings.Contains(l, `\Subscribed`) || !strings.Contains(l, `\NonExistent`) || strings.Contains(l, `\Noselect`) {
			t.Fatalf("deleted subscribed name: %q, want \\Subscribed \\NonExistent", l)
		}
	}
	mustNotHave(t, u, `"a/c"`)
	u = r.expectOK(`LSUB "" "*"`)
	mustHave(t, u, `* LSUB () "/" "a/b"`)
	mustHave(t, u, `* LSUB () "/" "later"`)
	mustHave(t, u, `* LSUB () "/" INBOX`)
	u = r.expectOK(`LSUB "" "a/%"`)
	mustHave(t, u, `* LSUB () "/" "a/b"`)
	u = r.expectOK(`LSUB "" "%"`)
	mustHave(t, u, `* LSUB (\Noselect) "/" "a"`)
	mustHave(t, u, `* LSUB () "/" "later"`)
	// A plain LIST shows mailboxes only.
	for _, c := range []string{`LIST "" "*"`, `LIST "" "*" RETURN (SUBSCRIBED)`} {
		u = r.expectOK(c)
		mustNotHave(t, u, `"a/b"`)
		mustNotHave(t, u, `"later"`)
		mustHave(t, u, `"a/c"`)
	}
	// RECURSIVEMATCH: the parent of a subscribed name that does not exist.
	u = r.expectOK(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "a"`)
	mustHave(t, u, `"a"`, `CHILDINFO ("SUBSCRIBED")`)
	// ... but not when that name is listed by the command anyway.
	u = r.expectOK(`LIST (SUBSCRIBED RECURSIVEMATCH) "" ("a" "a/b")`)
	mustNotHave(t, u, `"a"`)
	mustHave(t, u, `"a/b"`)
	u = r.expectOK(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"`)
	mustNotHave(t, u, `CHILDINFO`)

	// Re-creating the mailbox finds it subscribed.
	r.expectOK("CREATE a/b")
	u = r.expectOK(`LIST "" "a/b" RETURN (SUBSCRIBED)`)
	l := lineWith(t, u, `"a/b"`)
	if !strings.Contains(l, `\Subscribed`) || strings.Contains(l, `\NonExistent`) {
		t.Fatalf("re-created mailbox: %q", l)
	}

	// UNSUBSCRIBE of a name without a mailbox, and of one not subscribed,
	// is OK (RFC 9051 §6.3.8).
	r.expectOK("UNSUBSCRIBE later")
	r.expectOK("UNSUBSCRIBE later")
	u = r.expectOK(`LSUB "" "*"`)
	mustNotHave(t, u, `"later"`)

	// RENAME takes the subscriptions of the renamed mailboxes along.
	r.expectOK("RENAME a x")
	u = r.expectOK(`LSUB "" "*"`)
	mustHave(t, u, `* LSUB () "/" "x/b"`)
	mustNotHave(t, u, `"a/b"`)
}

// RFC 6851 §3: MOVE into the selected mailbox is COPY + STORE \Deleted +
// EXPUNGE: COPYUID with new UIDs, EXPUNGE of the old ones, EXISTS for the
// new ones, in that order.
func TestMoveIntoSelectedMailbox(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	r, other := loggedIn(e), loggedIn(e)
	u := r.expectOK("SELECT INBOX")
	var uv uint32
	if _, err := fmt.Sscanf(lineWith(t, u, "UIDVALIDITY"), "* OK [UIDVALIDITY %d]", &uv); err != nil {
		t.Fatalf("UIDVALIDITY in %q: %v", u, err)
	}
	other.expectOK("SELECT INBOX")
	r.expectOK(`STORE 1 +FLAGS.SILENT (\Flagged)`)

	u = r.expectOK("MOVE 1 INBOX")
	want := []string{fmt.Sprintf("* OK [COPYUID %d 1 4] ", uv), "* 1 EXPUNGE", "* 3 EXISTS"}
	if len(u) < 3 || !strings.HasPrefix(u[0], want[0]) || u[1] != want[1] || u[2] != want[2] {
		t.Fatalf("MOVE into the selected mailbox:\n%s\nwant\n%s", strings.Join(u, "\n"), strings.Join(want, "\n"))
	}
	u = r.expectOK("FETCH 1:* (UID FLAGS)")
	mustHave(t, u, "* 3 FETCH (", "UID 4", `\Flagged`)

	u = r.expectOK("UID MOVE 2 inbox")
	want = []string{fmt.Sprintf("* OK [COPYUID %d 2 5] ", uv), "* 1 EXPUNGE", "* 3 EXISTS"}
	if len(u) < 3 || !strings.HasPrefix(u[0], want[0]) || u[1] != want[1] || u[2] != want[2] {
		t.Fatalf("UID MOVE into the selected mailbox:\n%s\nwant\n%s", strings.Join(u, "\n"), strings.Join(want, "\n"))
	}
	u = r.expectOK("UID FETCH 1:* UID")
	if got := strings.Join(u, "|"); got != "* 1 FETCH (UID 3)|* 2 FETCH (UID 4)|* 3 FETCH (UID 5)" {
		t.Fatalf("after the moves: %q", got)
	}

	// Another session sees two expunges and two new messages.
	u = other.expectOK("NOOP")
	mustHave(t, u, "* 1 EXPUNGE")
	mustHave(t, u, "* 3 EXISTS")

	// With QRESYNC: VANISHED for the old UID, and HIGHESTMODSEQ.
	q := loggedIn(e)
	q.expectOK("ENABLE QRESYNC")
	q.expectOK("SELECT INBOX")
	u, st := q.cmd("UID MOVE 5 INBOX")
	if !strings.HasPrefix(st, "OK [HIGHESTMODSEQ ") {
		t.Fatalf("UID MOVE with QRESYNC: %q", st)
	}
	mustHave(t, u, fmt.Sprintf("* OK [COPYUID %d 5 6]", uv))
	mustHave(t, u, "* VANISHED 5")
	mustHave(t, u, "* 3 EXISTS")

	// Read-only stays read-only.
	q.expectOK("EXAMINE INBOX")
	q.expectStatus("MOVE 1 INBOX", "NO")
}

// INTERNALDATE keeps the zone given to APPEND (RFC 9051 §2.3.3), and
// SEARCH BEFORE/ON/SINCE use its calendar date in that zone (§6.4.4),
// as imaptest's search-intdate expects.
func TestInternalDateKeepsZone(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	msg := "Subject: zone\r\n\r\nbody\r\n"
	for _, d := range []string{"24-Mar-2007 23:59:59 +0200", "25-Mar-2007 00:00:00 +0200", "25-Mar-2007 23:30:00 -0430"} {
		r.expectOK(fmt.Sprintf(`APPEND INBOX "%s" {%d+}`+"\r\n%s", d, len(msg), msg))
	}
	r.expectOK("SELECT INBOX")
	u := r.expectOK("FETCH 1:* INTERNALDATE")
	mustHave(t, u, `* 1 FETCH (INTERNALDATE "24-Mar-2007 23:59:59 +0200")`)
	mustHave(t, u, `* 2 FETCH (INTERNALDATE "25-Mar-2007 00:00:00 +0200")`)
	mustHave(t, u, `* 3 FETCH (INTERNALDATE "25-Mar-2007 23:30:00 -0430")`)
	for c, want := range map[string]string{
		"SEARCH BEFORE 25-Mar-2007": "* SEARCH 1",
		"SEARCH ON 24-Mar-2007":     "* SEARCH 1",
		"SEARCH ON 25-Mar-2007":     "* SEARCH 2 3",
		"SEARCH SINCE 25-Mar-2007":  "* SEARCH 2 3",
		"SEARCH SINCE 26-Mar-2007":  "* SEARCH",
		"SEARCH BEFORE 26-Mar-2007": "* SEARCH 1 2 3",
	} {
		u := r.expectOK(c)
		if len(u) != 1 || u[0] != want {
			t.Fatalf("%s: %q, want %q", c, u, want)
		}
	}
	// Mail delivered by SMTP is dated in the server's zone.
	now := time.Now()
	e.deliver(e.aliceID, "", simpleMsg)
	r.expectOK("NOOP")
	u = r.expectOK("FETCH 4 INTERNALDATE")
	mustHave(t, u, `* 4 FETCH (INTERNALDATE "`, now.Format("-0700")+`")`)
}

// RFC 2180 §4.1, §4.2: FETCH and STORE of a message another session
// expunged, before this session has been sent the EXPUNGE.
func TestFetchStoreExpungedByOther(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("SELECT INBOX")
	b.expectOK("ENABLE CONDSTORE")
	b.expectOK("SELECT INBOX")
	b.expectOK(`STORE 3 +FLAGS.SILENT (\Answered)`)
	a.expectOK(`STORE 3 +FLAGS.SILENT (\Deleted)`)
	a.expectOK("EXPUNGE")

	// b has not polled since: the store lacks UID 3, the view still
	// numbers it. UID comes from the view (imaptest "expunge").
	u := b.expectOK("FETCH 3 UID")
	if got := strings.Join(u, "|"); got != "* 3 FETCH (UID 3)" {
		t.Fatalf("FETCH of an expunged message: %q", got)
	}
	// Now the view knows it is gone (held back EXPUNGE). With CONDSTORE
	// the FLAGS carry a MODSEQ (RFC 7162 §3.1).
	u = b.expectOK("FETCH 2:3 (UID FLAGS)")
	mustHave(t, u, "* 2 FETCH (UID 2 FLAGS (")
	mustHave(t, u, "* 3 FETCH (UID 3 FLAGS (", `\Answered`, "MODSEQ (")
	mustNotHave(t, u, "EXPUNGE")
	// Anything else: the others' data, then NO [EXPUNGEISSUED] (RFC 5530).
	u = b.expectStatus("FETCH 2:3 (UID RFC822.SIZE)", "NO [EXPUNGEISSUED]")
	mustHave(t, u, "* 2 FETCH (UID 2 RFC822.SIZE ")
	mustNotHave(t, u, "* 3 FETCH")
	mustNotHave(t, u, "EXPUNGE")
	u = b.expectStatus("UID FETCH 3 BODY.PEEK[]", "NO [EXPUNGEISSUED]")
	mustNotHave(t, u, "FETCH")

	// STORE (RFC 2180 §4.2): .SILENT is OK; otherwise the others are
	// changed and reported, and the answer is NO.
	b.expectOK(`STORE 2:3 +FLAGS.SILENT (\Seen)`)
	u = b.expectStatus(`STORE 3 +FLAGS (\Flagged)`, "NO [EXPUNGEISSUED]")
	mustNotHave(t, u, "FETCH")
	u = b.expectStatus(`STORE 2:3 +FLAGS (\Flagged)`, "NO [EXPUNGEISSUED]")
	mustHave(t, u, "* 2 FETCH (", `\Flagged`)
	mustNotHave(t, u, "* 3 FETCH")

	// Only now is the EXPUNGE sent.
	u = b.expectOK("NOOP")
	mustHave(t, u, "* 3 EXPUNGE")
	b.expectStatus("FETCH 3 UID", "BAD")
}

// STORE of a message expunged since the session's last poll (the view
// does not know yet) is also answered NO.
func TestStoreRacingExpunge(t *testing.T) {
	e := newEnv(t)
	for range 2 {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("SELECT INBOX")
	b.expectOK("SELECT INBOX")
	a.expectOK(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	a.expectOK("EXPUNGE")
	u := b.expectStatus(`STORE 1:2 +FLAGS (\Seen)`, "NO [EXPUNGEISSUED]")
	mustHave(t, u, "* 1 FETCH (", `\Seen`)
	mustNotHave(t, u, "* 2 FETCH")
}

// TestSubscriptionsBounded: names without mailboxes can be subscribed, so
// their number is bounded; re-subscribing and unsubscribing still work at
// the limit.
func TestSubscriptionsBounded(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	u := r.expectOK(`LSUB "" "*"`)
	old := maxSubscriptions
	maxSubscriptions = len(filter(u, "* LSUB")) + 2
	t.Cleanup(func() { maxSubscriptions = old })
	r.expectOK("SUBSCRIBE name1")
	r.expectOK("SUBSCRIBE name2")
	r.expectStatus("SUBSCRIBE one-too-many", "NO [LIMIT]")
	r.expectOK("SUBSCRIBE name2")
	r.expectOK("UNSUBSCRIBE name2")
	r.expectOK("SUBSCRIBE one-too-many")
}
