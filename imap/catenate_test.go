package imap

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// RFC 4469 Appendix A's example: a draft (a multipart message whose
// first part is text) and a message to forward, in Drafts.
const (
	catBoundary = "------------030308070208000400050907"
	catDraftHdr = "From: Fred Foobar <foobar@example.com>\r\n" +
		"Subject: Fwd: afternoon meeting\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"" + catBoundary + "\"\r\n" +
		"\r\n"
	catPart1MIME = "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
	catPart1Body = "Joe, here is the message about the meeting."
	catDraft     = catDraftHdr + "--" + catBoundary + "\r\n" + catPart1MIME + catPart1Body +
		"\r\n--" + catBoundary + "--\r\n"
)

func (e *env) body(account, mailbox string, uid uint32) string {
	e.t.Helper()
	rc, err := e.st.OpenBody(context.Background(), account, mailbox, uid)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func (e *env) uidValidity(account, mailbox string) uint32 {
	e.t.Helper()
	mb, err := e.st.Mailbox(context.Background(), account, mailbox)
	if err != nil {
		e.t.Fatal(err)
	}
	return mb.UIDValidity
}

// TestCatenateRFCExample: RFC 4469 Appendix A's APPEND, synchronising
// literals each after its continuation request, its URLs with our
// UIDVALIDITY and UIDs: the message is the parts, byte for byte.
func TestCatenateRFCExample(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	mustHave(t, r.expectOK("CAPABILITY"), "CATENATE")
	draft := e.deliver(e.aliceID, "Drafts", catDraft)
	fwd := e.deliver(e.aliceID, "Drafts", multiMsg1)
	base := fmt.Sprintf("/Drafts;UIDVALIDITY=%d/;UID=", e.uidValidity(e.aliceID, "Drafts"))
	text1 := "\r\n--" + catBoundary + "\r\n"
	text3 := "\r\n--" + catBoundary + "--\r\n"
	if len(text1) != 42 || len(text3) != 44 {
		t.Fatalf("literal sizes %d, %d; the RFC's are 42, 44", len(text1), len(text3))
	}
	for _, part := range []string{
		fmt.Sprintf(`A003 APPEND Drafts (\Seen \Draft $MDNSent) CATENATE (URL "%s%d/;section=HEADER" TEXT {42}`+"\r\n", base, draft),
		text1 + fmt.Sprintf(` URL "%s%d/;section=1.MIME" URL "%[1]s%[2]d/;section=1" TEXT {42}`+"\r\n", base, draft),
		text1 + fmt.Sprintf(` URL "%s%d" TEXT {44}`+"\r\n", base, fwd),
	} {
		r.send(part)
		if l := r.line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("got %q, want a continuation request", l)
		}
	}
	r.send(text3 + ")\r\n")
	_, st := r.readUntil("A003")
	want := fmt.Sprintf("OK [APPENDUID %d %d] ", e.uidValidity(e.aliceID, "Drafts"), fwd+1)
	if !strings.HasPrefix(st, want) {
		t.Fatalf("got %q, want %q", st, want)
	}
	got := e.body(e.aliceID, "Drafts", fwd+1)
	if wantBody := catDraftHdr + text1 + catPart1MIME + catPart1Body + text1 + multiMsg1 + text3; got != wantBody {
		t.Fatalf("message is\n%q\nwant\n%q", got, wantBody)
	}
	r.expectOK("SELECT Drafts")
	mustHave(t, r.expectOK(fmt.Sprintf("UID FETCH %d FLAGS", fwd+1)), `\Seen`, `\Draft`, `$MDNSent`)
}

// TestCatenateRefused: URLs this server does not resolve, parts over the
// limits, syntax errors: a tagged NO or BAD, no continuation request for
// the literal after the failure, the data of a non-synchronising one
// skipped (the NOOP after each answers in step), no message kept.
func TestCatenateRefused(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AppendLimit = 1000 })
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 600) + "\r\n"
	own := e.deliver(e.aliceID, "INBOX", big)
	e.deliver(e.bobID, "INBOX", simpleMsg)
	bobs := e.deliver(e.bobID, "INBOX", simpleMsg)
	if bobs <= own {
		t.Fatalf("bob's UID %d must not be in alice's INBOX (last %d)", bobs, own)
	}
	v := e.uidValidity(e.aliceID, "INBOX")
	watcher := loggedIn(e)
	watcher.expectOK("SELECT INBOX")
	r := loggedIn(e)
	ok := fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", v, own)
	for _, c := range []struct{ cmd, answer string }{
		// A missing message, another user's UID, a wrong UIDVALIDITY, a
		// missing mailbox, an absolute URL (another user or server).
		{fmt.Sprintf(`URL "/INBOX;UIDVALIDITY=%d/;UID=99" TEXT {5}`+"\r\n", v), fmt.Sprintf("NO [BADURL /INBOX;UIDVALIDITY=%d/;UID=99]", v)},
		{fmt.Sprintf(`URL "/INBOX/;UID=%d" TEXT {5}`+"\r\n", bobs), fmt.Sprintf("NO [BADURL /INBOX/;UID=%d]", bobs)},
		{fmt.Sprintf(`URL "/INBOX;UIDVALIDITY=%d/;UID=%d" TEXT {5}`+"\r\n", v+1, own), fmt.Sprintf("NO [BADURL /INBOX;UIDVALIDITY=%d/;UID=%d]", v+1, own)},
		{fmt.Sprintf(`URL "/Nowhere/;UID=%d" TEXT {5}`+"\r\n", own), fmt.Sprintf("NO [BADURL /Nowhere/;UID=%d]", own)},
		{fmt.Sprintf(`URL "imap://bob@example.com/INBOX/;UID=%d" TEXT {5}`+"\r\n", bobs), fmt.Sprintf("NO [BADURL imap://bob@example.com/INBOX/;UID=%d]", bobs)},
		{fmt.Sprintf(`URL "%s/;PARTIAL=0.10" TEXT {5}`+"\r\n", ok), "NO [BADURL " + ok + "/;PARTIAL=0.10]"},
		// The refused URL is followed by a non-synchronising literal:
		// its data is skipped, never read as a command.
		{`URL "/INBOX/;UID=99" TEXT {22+}` + "\r\nz NOOP\r\nz NOOP\r\nz NOOP)\r\n", "NO [BADURL /INBOX/;UID=99]"},
		// Over APPENDLIMIT: a TEXT literal (refused before "+"), then
		// two URLs of a 600-byte message (found as the second is read).
		{`TEXT {2000}` + "\r\n", "NO [TOOBIG]"},
		{fmt.Sprintf(`URL "%s" TEXT {500}`+"\r\n", ok), "NO [TOOBIG]"},
		{fmt.Sprintf(`URL "%s" URL "%[1]s")`+"\r\n", ok), "NO [TOOBIG]"},
		// Too many parts.
		{strings.Repeat(`TEXT {1+}`+"\r\nz ", 64) + `TEXT {1}` + "\r\n", "NO [LIMIT]"},
		// Syntax.
		{")\r\n", "BAD"},
		{"FOO bar)\r\n", "BAD"},
		{fmt.Sprintf(`URL "%s"`+"\r\n", ok), "BAD"},
		{fmt.Sprintf(`URL "%s")) junk`+"\r\n", ok), "BAD"},
	} {
		r.send("b APPEND INBOX CATENATE (" + c.cmd)
		refusedInStep(t, r, "b", c.cmd, c.answer)
	}
	mustNotHave(t, watcher.expectOK("NOOP"), "EXISTS")
	if n := e.countMessages("INBOX"); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
	// The limit is the message's: one URL of it and a little text fit.
	r.send(fmt.Sprintf(`c APPEND INBOX CATENATE (URL "%s" TEXT {5+}`+"\r\nhello)\r\n", ok))
	if _, st := r.readUntil("c"); !strings.HasPrefix(st, "OK [APPENDUID ") {
		t.Fatalf("got %q", st)
	}
	if got := e.body(e.aliceID, "INBOX", own+1); got != big+"hello" {
		t.Fatalf("got %q", got)
	}
}

// TestCatenateMultiAppend: CATENATE in a MULTIAPPEND (RFC 4469 §5
// extends append-data, which RFC 3502 repeats); a refused URL in the
// second message takes the first back.
func TestCatenateMultiAppend(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s CATENATE (TEXT {%d+}\r\n%s URL \"/INBOX/;UID=1\")\r\n", len(multiMsg1), multiMsg1, len(multiMsg2), multiMsg2))
	if _, st := r.readUntil("a"); !strings.Contains(st, " 1:2] ") {
		t.Fatalf("got %q", st)
	}
	if got := e.body(e.aliceID, "INBOX", 2); got != multiMsg2+multiMsg1 {
		t.Fatalf("got %q", got)
	}
	r.send(fmt.Sprintf("b APPEND INBOX {%d+}\r\n%s CATENATE (URL \"/INBOX/;UID=9\")\r\n", len(multiMsg1), multiMsg1))
	refusedInStep(t, r, "b", "MULTIAPPEND with a bad URL", "NO [BADURL /INBOX/;UID=9]")
	if n := e.countMessages("INBOX"); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
}

func TestParseCatenateURL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want string // mailbox uidvalidity uid part specifier; "" for an error
	}{
		{"/INBOX;UIDVALIDITY=385759045/;UID=20", "INBOX 385759045 20 [] "},
		{"/INBOX/;uid=20", "INBOX 0 20 [] "},
		{"/Drafts;UIDVALIDITY=1/;UID=20/;section=1.MIME", "Drafts 1 20 [1] MIME"},
		{"/Drafts/;UID=20/;SECTION=2.1.text", "Drafts 0 20 [2 1] TEXT"},
		{"/Drafts/;UID=20/;section=HEADER", "Drafts 0 20 [] HEADER"},
		{"/Caf%C3%A9/;UID=3", "Café 0 3 [] "},
		{"imap://joe@example.com/INBOX/;UID=20", ""},
		{"//example.com/INBOX/;UID=20", ""},
		{";UID=20", ""},
		{"/INBOX", ""},
		{"/INBOX/;UID=0", ""},
		{"/INBOX/;UID=020", ""},
		{"/INBOX/;UID=4294967296", ""},
		{"/INBOX;FOO=1/;UID=1", ""},
		{"/INBOX/;UID=1/;PARTIAL=0.5", ""},
		{"/INBOX/;UID=1/;SECTION=MIME", ""},
		{"/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(To)", ""},
		{"/INBOX/;UID=1/;SECTION=TEXT.1", ""},
		{"/INBOX/;UID=1/;SECTION=1/;PARTIAL=0.5", ""},
		{"/%zz/;UID=1", ""},
	} {
		ref, err := parseCatenateURL(c.url)
		got := ""
		if err == nil {
			got = fmt.Sprintf("%s %d %d", ref.mailbox, ref.uidValidity, ref.uid)
			if ref.section != nil {
				got += fmt.Sprintf(" %v %s", ref.section.Part, ref.section.Specifier)
			} else {
				got += " [] "
			}
		}
		if got != c.want {
			t.Errorf("%q: got %q (%v), want %q", c.url, got, err, c.want)
		}
	}
}

// TestCatenateConnectionCut: the connection ends within a TEXT literal
// after a URL part with a section: no message is kept, and the server
// goes on serving.
func TestCatenateConnectionCut(t *testing.T) {
	e := newEnv(t)
	own := e.deliver(e.aliceID, "INBOX", catDraft)
	r := loggedIn(e)
	r.send(fmt.Sprintf("a APPEND INBOX CATENATE (URL \"/INBOX/;UID=%d/;SECTION=1\" TEXT {100+}\r\nFrom: x", own))
	time.Sleep(50 * time.Millisecond)
	r.conn.Close()
	r2 := loggedIn(e)
	r2.expectOK("NOOP")
	if n := e.countMessages("INBOX"); n != 1 {
		t.Fatalf("%d messages after a cut CATENATE, want 1", n)
	}
	// The section alone, in full, for comparison.
	r2.send(fmt.Sprintf("b APPEND INBOX CATENATE (URL \"/INBOX/;UID=%d/;SECTION=1\")\r\n", own))
	if _, st := r2.readUntil("b"); !strings.HasPrefix(st, "OK [APPENDUID ") {
		t.Fatalf("got %q", st)
	}
	if got := e.body(e.aliceID, "INBOX", own+1); got != catPart1Body {
		t.Fatalf("got %q, want %q", got, catPart1Body)
	}
	// Had the cut message been kept, it would hold UID own+1, or this
	// one would not be the second.
	if n := e.countMessages("INBOX"); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
}
