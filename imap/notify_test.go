package imap

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// until reads responses the server sends on its own, without a command,
// up to and including the first line that contains every one of parts.
func (r *raw) until(parts ...string) []string {
	r.t.Helper()
	var lines []string
	for {
		l := r.line()
		lines = append(lines, l)
		if has([]string{l}, parts...) {
			return lines
		}
	}
}

func (e *env) createMailbox(name string) {
	e.t.Helper()
	if _, err := e.st.CreateMailbox(context.Background(), e.aliceID, name, store.SpecialNone); err != nil {
		e.t.Fatal(err)
	}
}

func TestNotifyCapability(t *testing.T) {
	e := newEnv(t)
	r := e.rawTLS()
	mustNotHave(t, r.expectOK("CAPABILITY"), "NOTIFY")
	// Not before login (RFC 5465 §8: command-auth).
	r.expectStatus("NOTIFY NONE", "BAD")
	r.expectOK("LOGIN alice@example.com \"correct horse\"")
	mustHave(t, r.expectOK("CAPABILITY"), "NOTIFY")
}

// TestNotifyStatusBetweenCommands: a delivery to a watched mailbox that
// is not selected gives a STATUS response while the client is between
// commands (RFC 5465 §5.2), NOTIFY SET STATUS gives the watched
// mailboxes' STATUS before its OK (§3.1), and a mailbox deleted and
// created again is reported with its new UIDVALIDITY.
func TestNotifyStatusBetweenCommands(t *testing.T) {
	e := newEnv(t)
	e.createMailbox("Lists/imap")
	e.createMailbox("misc")
	e.deliver(e.aliceID, "", simpleMsg)
	a := loggedIn(e)
	a.expectOK("ENABLE IMAP4rev2") // no \Recent, no RECENT
	a.expectOK("SELECT INBOX")
	u := a.expectOK("NOTIFY SET STATUS (selected (MessageNew MessageExpunge)) (subtree Lists (MessageNew MessageExpunge)) (mailboxes misc (MessageNew MessageExpunge))")
	expectUntaggedSet(t, "NOTIFY SET STATUS", u,
		fmt.Sprintf("* STATUS \"Lists\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY %d UNSEEN 0)", e.uidValidity(e.aliceID, "Lists")),
		fmt.Sprintf("* STATUS \"Lists/imap\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY %d UNSEEN 0)", e.uidValidity(e.aliceID, "Lists/imap")),
		fmt.Sprintf("* STATUS \"misc\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY %d UNSEEN 0)", e.uidValidity(e.aliceID, "misc")))

	e.deliver(e.aliceID, "Lists/imap", simpleMsg)
	got := a.line()
	want := fmt.Sprintf("* STATUS \"Lists/imap\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY %d UNSEEN 1)", e.uidValidity(e.aliceID, "Lists/imap"))
	if got != want {
		t.Fatalf("between commands: got %q, want %q", got, want)
	}
	// The selected mailbox's new message: EXISTS, without a command.
	e.deliver(e.aliceID, "", simpleMsg)
	if got := a.line(); got != "* 2 EXISTS" {
		t.Fatalf("selected mailbox: got %q", got)
	}

	// Deleted and created again: a new UIDVALIDITY (§5.1).
	if err := e.st.DeleteMailbox(context.Background(), e.aliceID, "misc"); err != nil {
		t.Fatal(err)
	}
	e.createMailbox("misc")
	e.deliver(e.aliceID, "misc", simpleMsg)
	lines := a.until(`* STATUS "misc" (MESSAGES 1 `)
	mustHave(t, lines, fmt.Sprintf("UIDVALIDITY %d", e.uidValidity(e.aliceID, "misc")))
	// With CONDSTORE enabled, HIGHESTMODSEQ comes too (§5.2).
	a.expectOK("ENABLE CONDSTORE")
	e.deliver(e.aliceID, "misc", simpleMsg)
	mustHave(t, a.until(`* STATUS "misc" (MESSAGES 2 `), "HIGHESTMODSEQ")
}

// TestNotifySelectedEvents: with SELECTED, another session's flag change
// gives FETCH (UID FLAGS) (RFC 5465 §5.1), a new message EXISTS and the
// FETCH of MessageNew's attributes (§5.2), and an expunge EXPUNGE (§5.3),
// all while no command is in progress.
func TestNotifySelectedEvents(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("ENABLE IMAP4rev2")
	a.expectOK("SELECT INBOX")
	b.expectOK("SELECT INBOX")
	a.expectOK("NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (Subject)]) MessageExpunge FlagChange))")

	b.expectOK(`STORE 1 +FLAGS (\Flagged)`)
	if got := a.line(); got != `* 1 FETCH (UID 1 FLAGS (\Flagged))` {
		t.Fatalf("flag change: got %q", got)
	}
	e.deliver(e.aliceID, "", simpleMsg)
	if got := a.line(); got != "* 2 EXISTS" {
		t.Fatalf("new message: got %q", got)
	}
	if got := a.line(); !strings.HasPrefix(got, `* 2 FETCH (UID 2 BODY[HEADER.FIELDS ("Subject")] {`) {
		t.Fatalf("MessageNew FETCH: got %q", got)
	}
	if got := a.line(); got != "Subject: hello there" {
		t.Fatalf("MessageNew FETCH literal: got %q", got)
	}
	a.line() // the empty line that ends the header block
	if got := a.line(); got != ")" {
		t.Fatalf("MessageNew FETCH end: got %q", got)
	}
	b.expectOK(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	if got := a.line(); got != `* 1 FETCH (UID 1 FLAGS (\Deleted \Flagged))` {
		t.Fatalf("flag change: got %q", got)
	}
	b.expectOK("EXPUNGE")
	if got := a.line(); got != "* 1 EXPUNGE" {
		t.Fatalf("expunge: got %q", got)
	}
	u := a.expectOK("NOOP")
	expectUntagged(t, "NOOP", u)
}

// TestNotifySelectedDelayed: SELECTED-DELAYED holds expunges back until a
// command that allows them (RFC 5465 §6.1), while flag changes still go
// out between commands.
func TestNotifySelectedDelayed(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	e.deliver(e.aliceID, "", simpleMsg)
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("ENABLE IMAP4rev2")
	a.expectOK("SELECT INBOX")
	b.expectOK("SELECT INBOX")
	a.expectOK("NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))")
	b.expectOK(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	if got := a.line(); got != `* 1 FETCH (UID 1 FLAGS (\Deleted))` {
		t.Fatalf("flag change: got %q", got)
	}
	b.expectOK("EXPUNGE")
	// The expunge must not come on its own: a flag change after it
	// does, and its sequence number is still the one before the
	// expunge.
	b.expectOK(`STORE 1 +FLAGS.SILENT (\Seen)`)
	if got := a.line(); got != `* 2 FETCH (UID 2 FLAGS (\Seen))` {
		t.Fatalf("after a held expunge: got %q", got)
	}
	u := a.expectOK("NOOP")
	expectUntagged(t, "NOOP", u, "* 1 EXPUNGE")
}

// TestNotifyMailboxNames: CREATE, RENAME, DELETE and SUBSCRIBE by another
// session give LIST responses, RENAME's with OLDNAME (RFC 5465 §5.4,
// §5.5); NOTIFY NONE stops them.
func TestNotifyMailboxNames(t *testing.T) {
	e := newEnv(t)
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("NOTIFY SET (personal (MailboxName SubscriptionChange))")
	b.expectOK("CREATE foo")
	if got := a.line(); got != `* LIST (\HasNoChildren) "/" "foo"` {
		t.Fatalf("create: got %q", got)
	}
	b.expectOK("SUBSCRIBE foo")
	if got := a.line(); got != `* LIST (\HasNoChildren \Subscribed) "/" "foo"` {
		t.Fatalf("subscribe: got %q", got)
	}
	b.expectOK("RENAME foo bar")
	if got := a.line(); got != `* LIST (\HasNoChildren \Subscribed) "/" "bar" (OLDNAME ("foo"))` {
		t.Fatalf("rename: got %q", got)
	}
	b.expectOK("DELETE bar")
	// The name stays subscribed (RFC 9051 §6.3.5).
	if got := a.line(); got != `* LIST (\NonExistent \HasNoChildren \Subscribed) "/" "bar"` {
		t.Fatalf("delete: got %q", got)
	}
	// The session's own changes are not reported to it (§5): a later
	// change by another session is, and nothing before it.
	for _, c := range []string{"CREATE own", "CREATE own/child", "RENAME own mine", "DELETE mine/child"} {
		expectUntagged(t, c, a.expectOK(c))
	}
	b.expectOK("CREATE other")
	if lines := a.until(`"/" "other"`); len(lines) != 1 {
		t.Fatalf("own changes reported: %q", lines)
	}

	a.expectOK("NOTIFY NONE")
	b.expectOK("CREATE quiet")
	// A witness with NOTIFY sees a later change, so the first one has
	// been handed to every session by then.
	w := loggedIn(e)
	w.expectOK("NOTIFY SET (personal (MailboxName))")
	b.expectOK("CREATE later")
	w.until(`"/" "later"`)
	u := a.expectOK("NOOP")
	expectUntagged(t, "NOOP after NOTIFY NONE", u)
}

// TestNotifyMetadata: SETMETADATA by another session gives METADATA
// responses naming the changed entries (RFC 5465 §5.6, §5.7, RFC 5464
// §4.4.2).
func TestNotifyMetadata(t *testing.T) {
	e := newEnv(t)
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("NOTIFY SET (personal (MailboxMetadataChange ServerMetadataChange))")
	b.expectOK(`SETMETADATA INBOX (/private/comment "hello")`)
	if got := a.line(); got != `* METADATA INBOX (/private/comment)` {
		t.Fatalf("mailbox metadata: got %q", got)
	}
	b.expectOK(`SETMETADATA "" (/shared/admin "mailto:a@example.com")`)
	if got := a.line(); got != `* METADATA "" (/shared/admin)` {
		t.Fatalf("server metadata: got %q", got)
	}
}

// TestNotifyIdle: in IDLE, the events NOTIFY asked for (RFC 5465 §4).
func TestNotifyIdle(t *testing.T) {
	e := newEnv(t)
	e.createMailbox("Lists")
	a := loggedIn(e)
	a.expectOK("SELECT INBOX")
	a.expectOK("NOTIFY SET (personal (MessageNew MessageExpunge))")
	a.send("i1 IDLE\r\n")
	if got := a.line(); !strings.HasPrefix(got, "+ ") {
		t.Fatalf("IDLE: got %q", got)
	}
	e.deliver(e.aliceID, "Lists", simpleMsg)
	if got := a.line(); !strings.HasPrefix(got, `* STATUS "Lists" (MESSAGES 1 UIDNEXT 2 `) {
		t.Fatalf("in IDLE: got %q", got)
	}
	a.send("DONE\r\n")
	if u, st := a.readUntil("i1"); !strings.HasPrefix(st, "OK") || len(u) != 0 {
		t.Fatalf("IDLE end: %q %q", u, st)
	}
}

// TestNotifyRefusals: unsupported events are NO [BADEVENT] listing the
// supported ones (RFC 5465 §3.1), and NOTIFY over more mailboxes than
// the limit is NO [NOTIFICATIONOVERFLOW]; either leaves the NOTIFY in
// effect as it was.
func TestNotifyRefusals(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxNotifyMailboxes = 2 })
	e.createMailbox("one")
	a := loggedIn(e)
	a.expectOK("NOTIFY SET (mailboxes one (MessageNew MessageExpunge))")
	for _, c := range []string{
		"NOTIFY SET (personal (MessageNew MessageExpunge AnnotationChange))",
		"NOTIFY SET (personal (Frobnicate))",
	} {
		u, st := a.cmd(c)
		if len(u) != 0 || st != "NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange)] "+
			map[bool]string{true: "Unsupported NOTIFY event AnnotationChange", false: "Unsupported NOTIFY event Frobnicate"}[strings.Contains(c, "Annotation")] {
			t.Fatalf("%s: got %q %q", c, u, st)
		}
	}
	e.createMailbox("two")
	e.createMailbox("three")
	a.expectStatus("NOTIFY SET (personal (MessageNew MessageExpunge))", "NO [NOTIFICATIONOVERFLOW]")
	a.expectStatus("NOTIFY SET (mailboxes (a b c) (MailboxName))", "NO [NOTIFICATIONOVERFLOW]")
	e.deliver(e.aliceID, "one", simpleMsg)
	if got := a.line(); !strings.HasPrefix(got, `* STATUS "one" (MESSAGES 1 `) {
		t.Fatalf("after refusals: got %q", got)
	}
}

// TestNotifyMalformed sends malformed NOTIFY commands from a raw socket:
// each is BAD, and the NOTIFY in effect stays as it was.
func TestNotifyMalformed(t *testing.T) {
	e := newEnv(t)
	e.createMailbox("one")
	a := loggedIn(e)
	a.expectOK("NOTIFY SET (mailboxes one (MessageNew MessageExpunge))")
	for _, c := range []string{
		"NOTIFY",
		"NOTIFY SET",
		"NOTIFY FOO",
		"NOTIFY NONE extra",
		"NOTIFY SET STATUS",
		"NOTIFY SET (personal)",
		"NOTIFY SET (personal ())",
		"NOTIFY SET (personal NONE",
		"NOTIFY SET (bogus (MailboxName))",
		"NOTIFY SET (subtree (MailboxName))",
		"NOTIFY SET (subtree () (MailboxName))",
		"NOTIFY SET (personal (MessageNew))",
		"NOTIFY SET (personal (MessageExpunge FlagChange))",
		"NOTIFY SET (personal (FlagChange))",
		"NOTIFY SET (selected (MailboxName))",
		"NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew MessageExpunge))",
		"NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
		"NOTIFY SET (selected (MessageNew () MessageExpunge))",
		"NOTIFY SET (selected (MessageNew (BOGUS) MessageExpunge))",
		"NOTIFY SET (selected (MessageNew (ALL) MessageExpunge))",
		"NOTIFY SET (personal (MailboxName)) junk",
		`NOTIFY SET ("personal" (MailboxName))`,
	} {
		u, st := a.cmd(c)
		if !strings.HasPrefix(st, "BAD") || len(u) != 0 {
			t.Fatalf("%s: want BAD, got %q (untagged %q)", c, st, u)
		}
	}
	e.deliver(e.aliceID, "one", simpleMsg)
	if got := a.line(); !strings.HasPrefix(got, `* STATUS "one" (MESSAGES 1 `) {
		t.Fatalf("after malformed NOTIFYs: got %q", got)
	}
}

// TestNotifyOverflow: while the client keeps a command going (an APPEND
// whose literal it does not send), notifications wait; past the queue's
// bound they are dropped, the session gets OK [NOTIFICATIONOVERFLOW] and
// no more notifications (RFC 5465 §5.8). The queue never holds more
// than its bound.
func TestNotifyOverflow(t *testing.T) {
	defer func(n int) { maxNotifyQueueBytes = n }(maxNotifyQueueBytes)
	maxNotifyQueueBytes = 4 << 10
	e := newEnvIn(t, memDir(t))
	a := loggedIn(e)
	a.expectOK("NOTIFY SET (personal (MailboxName))")
	sess := notifySessionOf(t, e.tlsSrv)
	msg := "From: x\r\n\r\nhello\r\n"
	a.send(fmt.Sprintf("t99 APPEND INBOX {%d}\r\n", len(msg)))
	if got := a.line(); !strings.HasPrefix(got, "+ ") {
		t.Fatalf("APPEND: got %q", got)
	}
	long := strings.Repeat("x", 200)
	for i := range 100 {
		e.createMailbox(fmt.Sprintf("%s%03d", long, i))
		sess.idleMu.Lock()
		if n := sess.notify; n != nil && n.queueBytes > maxNotifyQueueBytes {
			t.Fatalf("queue holds %d bytes, over its bound %d", n.queueBytes, maxNotifyQueueBytes)
		}
		over := sess.notify != nil && sess.notify.overflow
		sess.idleMu.Unlock()
		if over {
			break
		}
	}
	a.send(msg + "\r\n")
	u, st := a.readUntil("t99")
	if !strings.HasPrefix(st, "OK") {
		t.Fatalf("APPEND: %q", st)
	}
	mustHave(t, u, "* OK [NOTIFICATIONOVERFLOW]")
	mustNotHave(t, u, "* LIST")
	// Notifications stay off: a witness sees a later change, and a NOOP
	// then reports nothing.
	w := loggedIn(e)
	w.expectOK("NOTIFY SET (personal (MailboxName))")
	e.createMailbox("after1")
	e.createMailbox("after2")
	w.until(`"/" "after2"`)
	expectUntagged(t, "NOOP after overflow", a.expectOK("NOOP"))
}

// notifySessionOf returns the one session on srv with a NOTIFY.
func notifySessionOf(t *testing.T, srv *Server) *session {
	t.Helper()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for s := range srv.sessions {
		s.idleMu.Lock()
		on := s.notify != nil
		s.idleMu.Unlock()
		if on {
			return s
		}
	}
	t.Fatal("no session with NOTIFY")
	return nil
}

// TestNotifyUpdateFetch: with NOTIFY announced, UPDATE takes fetch
// attributes (RFC 5465 §7, its example): a new message that joins the
// result gets EXISTS, then the FETCH, then ADDTO; one that joins it by a
// flag change gets no FETCH.
func TestNotifyUpdateFetch(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	a := loggedIn(e)
	a.expectOK("ENABLE IMAP4rev2")
	a.expectOK("SELECT INBOX")
	u := a.expectTagged("B1", `SEARCH RETURN (COUNT UPDATE (UID BODY.PEEK[HEADER.FIELDS (Subject)])) UNSEEN FROM "carol"`, "OK")
	expectUntagged(t, "SEARCH", u, `* ESEARCH (TAG "B1") COUNT 1`)
	e.deliver(e.aliceID, "", simpleMsg)
	u = a.expectOK("NOOP")
	if len(u) != 3 || u[0] != "* 2 EXISTS" || !strings.HasPrefix(u[1], "* 2 FETCH (UID 2 BODY[HEADER.FIELDS (") ||
		!strings.Contains(u[1], "Subject: hello there") || u[2] != `* ESEARCH (TAG "B1") ADDTO (0 2)` {
		t.Fatalf("NOOP after delivery: %q", u)
	}
	mustHave(t, a.expectOK(`STORE 1 +FLAGS.SILENT (\Seen)`), `* ESEARCH (TAG "B1") REMOVEFROM (0 1)`)
	u = a.expectOK(`STORE 1 -FLAGS.SILENT (\Seen)`)
	mustHave(t, u, `* ESEARCH (TAG "B1") ADDTO (0 1)`)
	mustNotHave(t, u, "BODY[")
	// The same syntax without NOTIFY's extension is BAD elsewhere: a
	// fetch list after another return option is not taken.
	a.expectStatus(`SEARCH RETURN (COUNT (UID)) ALL`, "BAD")
}

// TestNotifySubscribed: "subscribed" watches the subscribed mailboxes,
// and is evaluated again when the subscriptions change (RFC 5465 §6.4);
// "inboxes" is taken as "personal" (§6.3).
func TestNotifySubscribed(t *testing.T) {
	e := newEnv(t)
	e.createMailbox("in")
	e.createMailbox("out")
	a, b := loggedIn(e), loggedIn(e)
	b.expectOK("SUBSCRIBE in")
	a.expectOK("NOTIFY SET (subscribed (MessageNew MessageExpunge))")
	e.deliver(e.aliceID, "out", simpleMsg)
	e.deliver(e.aliceID, "in", simpleMsg)
	mustNotHave(t, a.until(`* STATUS "in" (MESSAGES 1 `), `"out"`)

	b.expectOK("SUBSCRIBE out")
	b.expectOK("UNSUBSCRIBE in")
	// The subscription events reach a's session before the deliveries'
	// changes, which come through the store's feed after them.
	expectUntagged(t, "NOOP", a.expectOK("NOOP"))
	e.deliver(e.aliceID, "in", simpleMsg)
	e.deliver(e.aliceID, "out", simpleMsg)
	mustNotHave(t, a.until(`* STATUS "out" (MESSAGES 2 `), `"in"`)

	a.expectOK("NOTIFY SET (inboxes (MessageNew MessageExpunge))")
	e.deliver(e.aliceID, "in", simpleMsg)
	a.until(`* STATUS "in" (MESSAGES 3 `)
}
