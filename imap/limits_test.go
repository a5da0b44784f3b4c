package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// refusedInStep reads the answer to the command tagged tag, what the
// test sent, which must be a tagged one of answers ("NO", "BAD") with no
// continuation request, BYE or answer to an injected command (tag "z")
// before it, and checks that the client's next line is read as a command.
// A synchronising literal the server will not take is refused before the
// client sends it (RFC 9051 §4.3, §7.1); the rest of a refused line is
// skipped, not run (imap/internal/imapwire).
func refusedInStep(t *testing.T, r *raw, tag, what string, answers ...string) {
	t.Helper()
	for {
		l := r.line()
		for _, bad := range []string{"+", "* BYE", "z "} {
			if strings.HasPrefix(l, bad) {
				t.Fatalf("%s: got %q, want a tagged %v", what, l, answers)
			}
		}
		if !strings.HasPrefix(l, tag+" ") {
			continue
		}
		for _, a := range answers {
			if strings.HasPrefix(l, tag+" "+a+" ") {
				r.expectOK("NOOP")
				return
			}
		}
		t.Fatalf("%s: got %q, want a tagged %v", what, l, answers)
	}
}

func TestLineAndLiteralLimits(t *testing.T) {
	e := newEnv(t)
	// Before login: a 100 KiB command line.
	r := e.rawTLS()
	r.send("a LOGIN " + strings.Repeat("x", 100<<10) + " y\r\n")
	refusedInStep(t, r, "a", "oversized command", "NO", "BAD")

	// Before login: a literal beyond 4 KiB is refused before it is read.
	r = e.rawTLS()
	r.send("b LOGIN {100000}\r\n")
	refusedInStep(t, r, "b", "oversized command", "NO", "BAD")

	// After login: the same bounds hold.
	r = loggedIn(e)
	r.send("c SELECT " + strings.Repeat("x", 100<<10) + "\r\n")
	refusedInStep(t, r, "c", "oversized command", "NO", "BAD")
	r = loggedIn(e)
	r.send("d CREATE {100000}\r\n")
	refusedInStep(t, r, "d", "oversized command", "NO", "BAD")

	// APPEND beyond APPENDLIMIT: NO [TOOBIG] before any byte is read.
	e2 := newEnv(t, func(o *Options) { o.AppendLimit = 1000 })
	r = loggedIn(e2)
	r.expectStatus("APPEND INBOX {2000}", "NO [TOOBIG]")
	r.expectOK("NOOP")
	msgs, err := e2.st.ListMessages(context.Background(), e2.aliceID, "INBOX", nil)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("refused APPEND stored %d messages (%v)", len(msgs), err)
	}
}

func TestConnectionLimitPerClient(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxConnsPerIP = 2 })
	e.raw()
	e.raw()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "* BYE [UNAVAILABLE]") {
		t.Fatalf("third connection got %q", b)
	}
}

func TestShutdownSaysBye(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.tlsSrv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if l := r.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("got %q, want BYE", l)
	}
	if err := e.tlsSrv.Shutdown(ctx); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", e.tlsAddr, time.Second); err == nil {
		t.Fatal("listener still accepts after Shutdown")
	}
}

// TestAuthenticateBadResponses: an AUTHENTICATE response line that does
// not fit the read buffer, a malformed one and "*" are the client's
// errors, answered with a tagged BAD (RFC 9051 §6.2.2); nothing of such a
// line runs as a command, and the connection is still not authenticated.
func TestAuthenticateBadResponses(t *testing.T) {
	e := newEnv(t)
	// What follows the first 4 KiB of a response (the read buffer) would
	// log in if it were read as a command.
	inject := "z LOGIN " + alice + " \"correct horse\"\r\n"
	steps := []struct{ name, send string }{
		{"response over the read buffer", strings.Repeat("A", 4096) + inject},
		{"response far over the read buffer", strings.Repeat("A", 40000) + "\r\n"},
		{"response not base64", "!!!\r\n"},
		{"cancelled", "*\r\n"},
	}
	r := e.rawTLS()
	for _, s := range steps {
		r.send("a AUTHENTICATE PLAIN\r\n")
		if l := r.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("%s: got %q, want a continuation request", s.name, l)
		}
		r.send(s.send)
		refusedInStep(t, r, "a", s.name, "BAD")
	}

	// The initial response (SASL-IR, RFC 4959) over the command's limit or
	// malformed: BAD, and the rest of the line is skipped.
	r.send("b AUTHENTICATE PLAIN " + strings.Repeat("A", 100<<10) + " " + inject)
	refusedInStep(t, r, "b", "initial response over the limit", "BAD")
	r.send("b AUTHENTICATE PLAIN !!!\r\n")
	refusedInStep(t, r, "b", "initial response not base64", "BAD")

	// Still not authenticated: LOGIN is valid only now.
	r.expectOK("LOGIN " + alice + " \"correct horse\"")
}

// TestAuthenticateResponseBeyondSkip: a response line too long to skip is
// answered BAD, then BYE, and the connection is closed. The line is as
// long as the server reads (the read buffer's 4 KiB and 1 MiB skipped,
// in buffer-sized steps), so that it closes with nothing unread.
func TestAuthenticateResponseBeyondSkip(t *testing.T) {
	e := newEnv(t)
	r := e.rawTLS()
	r.send("a AUTHENTICATE PLAIN\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("got %q, want a continuation request", l)
	}
	r.send(strings.Repeat("A", 4096+(1<<20)+4096))
	if l := r.line(); !strings.HasPrefix(l, "a BAD") {
		t.Fatalf("got %q, want a BAD", l)
	}
	if l := r.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("got %q, want * BYE", l)
	}
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := r.r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("connection still open after BYE: %q %v", l, err)
	}
}

// TestAppendJunkAfterLiteral: an APPEND whose line does not end right
// after the message is answered BAD and changes nothing: no message, no
// UID used, no blob left, no update to a session that has the mailbox
// selected (RFC 9051 §6.3.12: the message is appended only when the
// command succeeds).
func TestAppendJunkAfterLiteral(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before, err := e.st.Mailbox(ctx, e.aliceID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	watcher := loggedIn(e)
	watcher.expectOK("SELECT INBOX")

	r := loggedIn(e)
	r.send("a APPEND INBOX {5}\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("got %q, want a continuation request", l)
	}
	r.send("hello junk\r\n")
	refusedInStep(t, r, "a", "synchronising literal and junk", "BAD")
	for _, bad := range []string{
		"b APPEND INBOX {5+}\r\nhello junk\r\n",
		"b APPEND INBOX {5+}\r\nhello z DELETE INBOX\r\n",
		"b APPEND INBOX (\\Seen) {5+}\r\nhello (\\Seen) junk\r\n", // MULTIAPPEND: the next message is read before this one is committed
		"b APPEND INBOX UTF8 (~{5+}\r\nhello\r\n",                 // no ")"
		"b APPEND INBOX UTF8 (~{5+}\r\nhello) junk\r\n",
	} {
		r.send(bad)
		refusedInStep(t, r, "b", fmt.Sprintf("%q", bad), "BAD")
	}

	msgs, err := e.st.ListMessages(ctx, e.aliceID, "INBOX", nil)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("APPEND answered BAD stored %d messages (%v)", len(msgs), err)
	}
	after, err := e.st.Mailbox(ctx, e.aliceID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if after.UIDNext != before.UIDNext || after.HighestModSeq != before.HighestModSeq {
		t.Fatalf("mailbox changed: UIDNEXT %d -> %d, HIGHESTMODSEQ %d -> %d",
			before.UIDNext, after.UIDNext, before.HighestModSeq, after.HighestModSeq)
	}
	if p, err := e.st.Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("store check: %v %+v", err, p)
	}
	mustNotHave(t, watcher.expectOK("NOOP"), "EXISTS")

	// A good APPEND gets the UID the refused ones did not use.
	u, st := r.cmd("APPEND INBOX {5+}\r\nhello")
	if want := fmt.Sprintf("OK [APPENDUID %d %d]", before.UIDValidity, before.UIDNext); !strings.HasPrefix(st, want) {
		t.Fatalf("APPEND: got %q (untagged %q), want %q", st, u, want)
	}
	mustHave(t, watcher.expectOK("NOOP"), "* 1 EXISTS")
}

// TestAppendCutShort: a client that goes away within an APPEND literal
// stores nothing; the end of the connection is not the end of a shorter
// message.
func TestAppendCutShort(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.send("a APPEND INBOX {100+}\r\nhello")
	if err := r.conn.(*tls.Conn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The server answers (or not) and closes once its session has
	// returned from the store.
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		l, err := r.r.ReadString('\n')
		if strings.HasPrefix(l, "a OK") {
			t.Fatalf("cut-short APPEND: got %q", l)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	msgs, err := e.st.ListMessages(context.Background(), e.aliceID, "INBOX", nil)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("cut-short APPEND stored %d messages (%v)", len(msgs), err)
	}
}
