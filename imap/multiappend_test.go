package imap

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// RFC 3502 §6.3.11's example messages.
const (
	multiMsg1 = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n" +
		"From: Fred Foobar <foobar@Blurdybloop.example.COM>\r\n" +
		"Subject: afternoon meeting\r\n" +
		"To: mooch@owatagu.example.net\r\n" +
		"Message-Id: <B27397-0100000@Blurdybloop.example.COM>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n" +
		"\r\n" +
		"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
	multiMsg2 = "Date: Mon, 7 Feb 1994 22:43:04 -0800 (PST)\r\n" +
		"From: Joe Mooch <mooch@OWaTaGu.example.net>\r\n" +
		"Subject: Re: afternoon meeting\r\n" +
		"To: foobar@blurdybloop.example.com\r\n" +
		"Message-Id: <a0434793874930@OWaTaGu.example.net>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n" +
		"\r\n" +
		"3:30 is fine with me.\r\n"
)

func (e *env) countMessages(mailbox string) int {
	e.t.Helper()
	msgs, err := e.st.ListMessages(context.Background(), e.aliceID, mailbox, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(msgs)
}

// sendRFC3502Example sends RFC 3502 §6.3.11's command with synchronising
// literals, each after its continuation request.
func sendRFC3502Example(t *testing.T, r *raw, tag, mailbox string) {
	t.Helper()
	for _, part := range []string{
		fmt.Sprintf("%s APPEND %s (\\Seen) {%d}\r\n", tag, mailbox, len(multiMsg1)),
		multiMsg1 + fmt.Sprintf(" (\\Seen) \" 7-Feb-1994 22:43:04 -0800\" {%d}\r\n", len(multiMsg2)),
	} {
		r.send(part)
		if l := r.line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("got %q, want a continuation request", l)
		}
	}
	r.send(multiMsg2 + "\r\n")
}

// TestMultiAppendRFCExample: RFC 3502 §6.3.11's example, with
// synchronising literals, then its failing variant (TRYCREATE).
func TestMultiAppendRFCExample(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	mustHave(t, r.expectOK("CAPABILITY"), "MULTIAPPEND")
	r.expectOK("CREATE saved-messages")
	sendRFC3502Example(t, r, "A003", "saved-messages")
	_, st := r.readUntil("A003")
	if !strings.HasPrefix(st, "OK [APPENDUID ") || !strings.Contains(st, " 1:2] ") {
		t.Fatalf("got %q", st)
	}
	u := r.expectOK("EXAMINE saved-messages")
	mustHave(t, u, "* 2 EXISTS")
	u = r.expectOK("FETCH 1:2 (FLAGS INTERNALDATE RFC822.SIZE)")
	mustHave(t, u, "* 2 FETCH", `\Seen`, `" 7-Feb-1994 22:43:04 -0800"`, fmt.Sprintf("RFC822.SIZE %d", len(multiMsg2)))
	mustHave(t, u, "* 1 FETCH", `\Seen`, fmt.Sprintf("RFC822.SIZE %d", len(multiMsg1)))

	// The same into a mailbox that does not exist: NO [TRYCREATE].
	// The store finds that out as it commits the first message; by then
	// the second was asked for, and is read and dropped.
	sendRFC3502Example(t, r, "A004", "nowhere")
	refusedInStep(t, r, "A004", "MULTIAPPEND to a missing mailbox", "NO [TRYCREATE]")
}

// TestMultiAppendAllOrNothing: when a later message fails, none of the
// command's messages is kept.
func TestMultiAppendAllOrNothing(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AppendLimit = 1000 })
	watcher := loggedIn(e)
	watcher.expectOK("SELECT INBOX")
	r := loggedIn(e)
	// Two non-synchronising literals: OK, APPENDUID of both.
	r.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n", len(multiMsg1), multiMsg1, len(multiMsg2), multiMsg2))
	if _, st := r.readUntil("a"); !strings.Contains(st, " 1:2] ") {
		t.Fatalf("got %q", st)
	}
	mustHave(t, watcher.expectOK("NOOP"), "* 2 EXISTS")
	// The second over APPENDLIMIT, junk after the first: found before
	// the first message is committed. A flag the store refuses: found
	// after, and the first is removed again.
	for _, bad := range []struct{ cmd, answer string }{
		{fmt.Sprintf("b APPEND INBOX {%d+}\r\n%s {2000}\r\n", len(multiMsg1), multiMsg1), "NO [TOOBIG]"},
		{fmt.Sprintf("b APPEND INBOX {%d+}\r\n%s junk\r\n", len(multiMsg1), multiMsg1), "BAD"},
		{fmt.Sprintf("b APPEND INBOX {%d+}\r\n%s (\\Bogus) {3+}\r\nabc\r\n", len(multiMsg1), multiMsg1), "NO [CANNOT]"},
	} {
		r.send(bad.cmd)
		refusedInStep(t, r, "b", bad.cmd[:30], bad.answer)
	}
	u := watcher.expectOK("NOOP")
	mustNotHave(t, u, "EXISTS")
	if n := e.countMessages("INBOX"); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
	// The second message ends with junk: the first was committed by
	// then and is removed again.
	r.send(fmt.Sprintf("c APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s junk\r\n", len(multiMsg1), multiMsg1, len(multiMsg2), multiMsg2))
	refusedInStep(t, r, "c", "junk after the second message", "BAD")
	if n := e.countMessages("INBOX"); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
	// The connection ends within the third message: the first two go.
	r.send(fmt.Sprintf("d APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s {100+}\r\nFrom: x", len(multiMsg1), multiMsg1, len(multiMsg2), multiMsg2))
	time.Sleep(50 * time.Millisecond)
	r.conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for e.countMessages("INBOX") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages after a cut MULTIAPPEND, want 2", e.countMessages("INBOX"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The watcher is told of none of the messages taken back.
	u = watcher.expectOK("NOOP")
	mustNotHave(t, u, "EXISTS")
	mustNotHave(t, u, "EXPUNGE")
}
