package imap

import (
	"context"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

func loggedIn(e *env) *raw {
	r := e.rawTLS()
	r.expectOK("LOGIN alice@example.com \"correct horse\"")
	return r
}

func TestSelectUntaggedResponses(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	uid := e.deliver(e.aliceID, "", multipartMsg)
	if _, err := e.st.StoreFlags(context.Background(), e.aliceID, store.Inbox, store.StoreFlagsRequest{
		UIDs: store.UIDSet{{Start: uid, Stop: uid}}, Op: store.FlagsAdd, Flags: []string{"$Work"}}); err != nil {
		t.Fatal(err)
	}

	r := loggedIn(e)
	u := r.expectStatus("SELECT INBOX", "OK [READ-WRITE]")
	mustHave(t, u, "* 2 EXISTS")
	mustHave(t, u, "* 2 RECENT") // RFC 3501 §7.3.2, IMAP4rev1 client
	mustHave(t, u, "* OK [UNSEEN 1]")
	mustHave(t, u, "* OK [UIDVALIDITY ")
	mustHave(t, u, "* OK [UIDNEXT 3]")
	// FLAGS and PERMANENTFLAGS include the keyword in use.
	mustHave(t, u, "* FLAGS (", `\Seen`, "$Work")
	mustHave(t, u, "* OK [PERMANENTFLAGS (", "$Work", `\*`)
	u = r.expectOK("FETCH 1:* (FLAGS)")
	mustHave(t, u, "* 1 FETCH (FLAGS (\\Recent))")
	mustHave(t, u, "* 2 FETCH (FLAGS ($Work \\Recent))")

	// \Recent belongs to the first session only (RFC 3501 §2.3.2).
	r2 := loggedIn(e)
	u = r2.expectOK("SELECT INBOX")
	mustHave(t, u, "* 0 RECENT")

	// EXAMINE is read-only and enforced.
	r3 := loggedIn(e)
	u = r3.expectStatus("EXAMINE INBOX", "OK [READ-ONLY]")
	mustHave(t, u, "* OK [PERMANENTFLAGS ()]")
	r3.expectStatus("STORE 1 +FLAGS (\\Deleted)", "NO")
	r3.expectStatus("EXPUNGE", "NO")
	r3.expectStatus("MOVE 1 Trash", "NO")
	r3.expectOK("FETCH 1 BODY[]")
	u = r3.expectOK("FETCH 1 FLAGS")
	mustNotHave(t, u, `\Seen`)
	r3.expectOK("CLOSE")

	// IMAP4rev2 clients get neither RECENT nor \Recent.
	r4 := loggedIn(e)
	r4.expectOK("ENABLE IMAP4rev2")
	u = r4.expectOK("SELECT INBOX")
	mustNotHave(t, u, "RECENT")
	u = r4.expectOK("FETCH 1:* FLAGS")
	mustNotHave(t, u, `\Recent`)

	r.expectStatus("SELECT nosuch", "NO")
}

func TestStatusAndAppend(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.send("a APPEND Drafts (\\Draft $Todo) \"02-Jan-2006 15:04:05 -0700\" {" + itoa(len(simpleMsg)) + "+}\r\n" + simpleMsg + "\r\n")
	_, st := r.readUntil("a")
	if !strings.HasPrefix(st, "OK [APPENDUID ") {
		t.Fatalf("APPEND: %q", st)
	}
	// Durable: the store has it now.
	msgs, err := e.st.ListMessages(context.Background(), e.aliceID, "Drafts", nil)
	if err != nil || len(msgs) != 1 || !hasFlag(msgs[0].Flags, "$Todo") {
		t.Fatalf("after APPEND OK the store holds %v, %v", msgs, err)
	}
	u := r.expectOK("STATUS Drafts (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT APPENDLIMIT)")
	mustHave(t, u, `* STATUS "Drafts" (`, "MESSAGES 1", "UIDNEXT 2", "UNSEEN 1", "DELETED 0", "SIZE "+itoa(len(simpleMsg)), "RECENT 1", "APPENDLIMIT 52428800")
	r.expectStatus("APPEND nosuch {3+}\r\nabc", "NO [TRYCREATE]")
	r.expectStatus("STATUS nosuch (MESSAGES)", "NO [NONEXISTENT]")
	// A keyword that is no atom and \Recent in APPEND.
	r.expectOK("APPEND INBOX (\\Recent) {3+}\r\nabc")
}

func itoa(n int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + intString(n))
}

func intString(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestFetchItems(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	e.deliver(e.aliceID, "", multipartMsg)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")

	u := r.expectOK("FETCH 1 (UID RFC822.SIZE ENVELOPE)")
	mustHave(t, u, "UID 1", "RFC822.SIZE "+itoa(len(simpleMsg)), `"hello there"`, `(("Carol" NIL "carol" "example.org"))`, `"<1@example.org>"`)

	// Partial fetch of the whole message, streamed (RFC 9051 §6.4.5).
	u = r.expectOK("FETCH 1 BODY.PEEK[]<6.5>")
	mustHave(t, u, "BODY[]<6> {5}\nCarol")
	u = r.expectOK("FETCH 1 BODY.PEEK[]<100000.5>")
	mustHave(t, u, "BODY[]<100000> {0}")
	u = r.expectOK("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
	mustHave(t, u, "Subject: hello there")

	// Multipart: parts, nested message/rfc822, BODYSTRUCTURE.
	u = r.expectOK("FETCH 2 BODY.PEEK[1]")
	mustHave(t, u, "Sch=C3=B6ne")
	u = r.expectOK("FETCH 2 BODY.PEEK[2.HEADER]")
	mustHave(t, u, "Subject: inner subject")
	u = r.expectOK("FETCH 2 BINARY.PEEK[1]")
	mustHave(t, u, "Schöne Grüße")
	u = r.expectOK("FETCH 2 BODYSTRUCTURE")
	mustHave(t, u, `("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable"`, `"message" "rfc822"`, `"mixed" ("boundary" "b1")`)
	u = r.expectOK("FETCH 2 BODY[9]")
	mustHave(t, u, "BODY[9] {0}")

	// BODY[] without PEEK sets \Seen and reports it (RFC 3501 §6.4.5).
	u = r.expectOK("FETCH 1 BODY[]")
	mustHave(t, u, `\Seen`)
	r.expectStatus("FETCH 3 FLAGS", "BAD")
	// Client syntax errors are BAD (RFC 9051 §7.1.5) and the session goes
	// on: a malformed set, an unknown SEARCH key, a quoted string left
	// open at the end of the line (which must not swallow the next
	// command). A name that is not valid modified UTF-7 is no syntax
	// error but names no mailbox (mailboxname_test.go).
	r.expectStatus("FETCH 0 FLAGS", "BAD")
	r.expectStatus("FETCH 1:x FLAGS", "BAD")
	r.expectStatus("SEARCH NOSUCHKEY", "BAD")
	r.expectStatus("STATUS &Jjo- (MESSAGES)", "NO") // valid mUTF-7, no such mailbox
	r.expectStatus("STATUS &Jjo (MESSAGES)", "NO [NONEXISTENT]")
	r.expectStatus(`SEARCH SUBJECT "open`, "BAD")
	r.expectOK("NOOP")
	u = r.expectOK("UID FETCH 3:* FLAGS") // "*" is the last UID: 2
	mustHave(t, u, "UID 2")
}

func TestSearchKeys(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	e.deliver(e.aliceID, "", multipartMsg)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	r.expectOK("STORE 2 +FLAGS (\\Flagged $Work)")
	cases := []struct{ q, want string }{
		{"ALL", "* SEARCH 1 2"},
		{"FLAGGED", "* SEARCH 2"},
		{"UNFLAGGED", "* SEARCH 1"},
		{"KEYWORD $work", "* SEARCH 2"},
		{"UNKEYWORD $Work", "* SEARCH 1"},
		{"RECENT", "* SEARCH 1 2"},
		{"NEW", "* SEARCH 1 2"},
		{"FROM carol", "* SEARCH 1"},
		{"TO ALICE", "* SEARCH 1 2"},
		{"CHARSET UTF-8 SUBJECT {7+}\r\nGrüße", "* SEARCH 2"},
		{"HEADER Message-ID example.org", "* SEARCH 1"},
		{`HEADER Message-ID ""`, "* SEARCH 1"},
		{"BODY fox", "* SEARCH 1"},
		{"BODY zebra", "* SEARCH 2"},                        // inside quoted-printable
		{"BODY GIRAFFE", "* SEARCH 2"},                      // inside message/rfc822
		{"CHARSET UTF-8 BODY {7+}\r\nSCHöNE", "* SEARCH 2"}, // decoded UTF-8, folded
		{"BODY carol", "* SEARCH"},                          // header is not body
		{"TEXT carol", "* SEARCH 1"},                        // TEXT includes the header
		{"SENTBEFORE 1-Jan-2010", "* SEARCH 1"},
		{"SENTON 2-Jan-2006", "* SEARCH 1"},
		{"SENTSINCE 10-Mar-2020", "* SEARCH 2"},
		{"SINCE 1-Jan-2000", "* SEARCH 1 2"},
		{"BEFORE 1-Jan-2000", "* SEARCH"},
		{"LARGER " + itoa(len(simpleMsg)), "* SEARCH 2"},
		{"SMALLER " + itoa(len(simpleMsg)+1), "* SEARCH 1"},
		{"UID 2", "* SEARCH 2"},
		{"2:*", "* SEARCH 2"},
		{"NOT 1", "* SEARCH 2"},
		{"OR FROM carol FLAGGED", "* SEARCH 1 2"},
		{"NOT OR FROM carol FLAGGED", "* SEARCH"},
		{"OR (FROM nobody) (NOT (OR BODY fox BODY zebra))", "* SEARCH"},
		{"CHARSET UTF-8 BODY zebra", "* SEARCH 2"},
	}
	for _, c := range cases {
		u := r.expectOK("SEARCH " + c.q)
		found := false
		for _, l := range u {
			if l == c.want {
				found = true
			}
		}
		if !found {
			t.Errorf("SEARCH %s: want %q, got %q", c.q, c.want, u)
		}
	}
	r.expectStatus("SEARCH CHARSET KOI8-R BODY x", "NO [BADCHARSET")
	r.expectStatus("SEARCH FOO", "BAD")
	u := r.expectOK("UID SEARCH RETURN (MIN MAX COUNT) ALL")
	mustHave(t, u, "* ESEARCH", "UID", "MIN 1", "MAX 2", "COUNT 2")
	// SEARCHRES (RFC 5182).
	r.expectOK("SEARCH RETURN (SAVE) FLAGGED")
	u = r.expectOK("FETCH $ UID")
	mustHave(t, u, "* 2 FETCH (UID 2)")
	mustNotHave(t, u, "* 1 FETCH")
	// Deep nesting is refused, not a stack overflow.
	r.expectStatus("SEARCH "+strings.Repeat("NOT ", 200)+"ALL", "BAD")
}

// TestMalformedMIME: messages the MIME parser cannot make sense of still
// get a valid ENVELOPE and BODYSTRUCTURE (RFC 9051 §7.5.2 best effort),
// never a dropped connection.
func TestMalformedMIME(t *testing.T) {
	e := newEnv(t)
	bad := []string{
		"Content-Type: multipart/mixed\r\n\r\nno boundary at all\r\n",
		"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nunterminated",
		"this is not a header\r\n\r\nbody\r\n",
		"Content-Type: message/rfc822\r\n\r\n",
		"From: =?bogus?q?x?= <a@b\r\nDate: yesterday\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64!!!\r\n",
		"\x00\xff\xfe binary junk",
		"Content-Type: multipart/alternative; boundary=\"q\"\r\n\r\n--q\r\n\r\n--q--\r\n",
	}
	for _, m := range bad {
		e.deliver(e.aliceID, "", m)
	}
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	u := r.expectOK("FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[TEXT] BINARY.PEEK[1] BINARY.SIZE[1])")
	if n := len(filter(u, "BODYSTRUCTURE (")); n != len(bad) {
		t.Fatalf("%d BODYSTRUCTUREs for %d messages:\n%s", n, len(bad), strings.Join(u, "\n"))
	}
	mustHave(t, u, `* 1 FETCH (ENVELOPE`, `(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0`, `"mixed"`)
	u = r.expectOK("SEARCH BODY zzz")
	mustHave(t, u, "* SEARCH")
}
