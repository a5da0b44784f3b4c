package imap

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/store"
)

// FuzzMailboxName checks the mapping of client mailbox names (already
// decoded from modified UTF-7 by the library) to store names: no panic;
// an accepted name is valid UTF-8 without controls, canonical (mapping it
// again changes nothing), lists under itself, and its implied parents are
// listed too.
func FuzzMailboxName(f *testing.F) {
	for _, s := range []string{"INBOX", "inbox", "Inbox/Sub", "Отчёты", "Отчёты/2024 & Планы", "&BB4EQgRHBFEEQgRL-",
		"a//b", "/a", "a/", "", "a\x00b", "\xff", "日本語/メール", "a*b", "%", strings.Repeat("x", 1100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		clean, err := mailboxName(name)
		if err != nil {
			return
		}
		if !utf8.ValidString(clean) || strings.ContainsAny(clean, "\x00\r\n") {
			t.Fatalf("%q accepted as %q", name, clean)
		}
		again, err := mailboxName(clean)
		if err != nil || again != clean {
			t.Fatalf("%q -> %q -> %q, %v: not canonical", name, clean, again, err)
		}
		if !strings.ContainsAny(clean, "*%") && !imapserver.MatchList(clean, '/', "", canonicalInbox(name)) {
			t.Fatalf("LIST %q does not match mailbox %q", name, clean)
		}
		nodes := listTree([]store.Mailbox{{Name: clean}}, nil)
		for p := clean; ; {
			n := nodes[p]
			if n == nil {
				t.Fatalf("listTree of %q lacks %q", clean, p)
			}
			i := strings.LastIndex(p, "/")
			if i < 0 {
				break
			}
			p = p[:i]
			if !nodes[p].children {
				t.Fatalf("parent %q of %q has no children", p, clean)
			}
		}
	})
}

// fuzzServer is one logged-in connection to a server with two messages,
// shared by all iterations of FuzzCommand in a process.
type fuzzServer struct {
	e    *env
	conn net.Conn
	r    *bufio.Reader
}

func (fs *fuzzServer) dial(t *testing.T) {
	c, err := tls.Dial("tcp", fs.e.tlsAddr, fs.e.client)
	if err != nil {
		t.Fatal(err)
	}
	fs.conn, fs.r = c, bufio.NewReader(c)
	fs.readLine(t) // greeting
	fs.roundTrip(t, `l LOGIN alice@example.com "correct horse"`, "l")
	fs.roundTrip(t, "s SELECT INBOX", "s")
}

func (fs *fuzzServer) readLine(t *testing.T) (string, bool) {
	_ = fs.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := fs.r.ReadString('\n')
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("server did not answer within 10s")
		}
		return "", false
	}
	return l, true
}

// roundTrip sends one line and returns the tagged status, or "" when the
// server closed the connection.
func (fs *fuzzServer) roundTrip(t *testing.T, line, tag string) string {
	if _, err := fs.conn.Write([]byte(line + "\r\n")); err != nil {
		return ""
	}
	for {
		l, ok := fs.readResponse(t)
		if !ok {
			return ""
		}
		if strings.HasPrefix(l, tag+" ") {
			return strings.TrimSpace(strings.TrimPrefix(l, tag+" "))
		}
	}
}

// literalAtEnd matches a line ending in a literal's announcement, {n}.
var literalAtEnd = regexp.MustCompile(`\{(\d+)\}\r\n$`)

// readResponse reads one whole response: its first line, and after each
// literal it announces the literal's bytes and the line that goes on after
// them. It returns the first line, so a literal whose content looks like
// a tagged status ("c OK ...") is never taken for one.
func (fs *fuzzServer) readResponse(t *testing.T) (string, bool) {
	first, ok := fs.readLine(t)
	l := first
	for ok {
		m := literalAtEnd.FindStringSubmatch(l)
		if m == nil {
			break
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatalf("literal size in %q: %v", l, err)
		}
		if _, err := io.CopyN(io.Discard, fs.r, int64(n)); err != nil {
			return "", false
		}
		l, ok = fs.readLine(t)
	}
	return first, ok
}

// FuzzCommand sends one arbitrary command line to a logged-in session with
// a mailbox selected: SEARCH keys (the criteria mapping and evaluation),
// mailbox names (modified UTF-7 decoding and our name rules), FETCH
// sections, STORE flags. Every line must get a tagged OK, NO or BAD (or a
// BYE and close) within 10s, and the server must go on serving.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{
		"SEARCH OR (FROM carol) NOT BODY fox",
		"UID SEARCH 1:* UNDELETED SENTBEFORE 1-Jan-2030 LARGER 10",
		"SEARCH RETURN (MIN MAX COUNT SAVE) TEXT giraffe",
		"SEARCH CHARSET UTF-8 HEADER Subject \"hello\"",
		"SEARCH NOT NOT NOT OR OR ALL ALL ALL",
		"FETCH 1:* (BODYSTRUCTURE ENVELOPE BODY.PEEK[2.HEADER]<0.10> BINARY.PEEK[1])",
		"FETCH $ (UID)",
		"CREATE &BB4EQgRHBFEEQgRL-/2024",
		"CREATE \"Отчёты\"",
		"LIST \"\" \"*\" RETURN (STATUS (MESSAGES SIZE) CHILDREN)",
		"LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"",
		"LSUB \"\" \"%\"",
		"STORE 1:* +FLAGS ($Fuzz \\Seen)",
		"COPY 1 Archive",
		"MOVE 2 Trash",
		"RENAME INBOX Old",
		"STATUS INBOX (MESSAGES RECENT DELETED-STORAGE HIGHESTMODSEQ)",
		"EXAMINE INBOX",
		"EXPUNGE",
		"FETCH 1:* (EMAILID THREADID SAVEDATE PREVIEW (LAZY))",
		"FETCH 1 (PREVIEW UID PREVIEW (lazy) FLAGS)",
		"FETCH 1 PREVIEW (CHANGEDSINCE 1)",
		"SEARCH SAVEDON 1-Jan-2030 OR EMAILID M1 THREADID T1 NOT SAVEDATESUPPORTED",
		"STATUS INBOX (MAILBOXID MESSAGES)",
		"LIST \"\" \"*\" RETURN (STATUS (MAILBOXID))",
		"SETMETADATA INBOX (/private/comment \"c\" /shared/vendor/x NIL)",
		"GETMETADATA (MAXSIZE 10 DEPTH infinity) \"\" (/shared /private/comment)",
		"GETMETADATA INBOX (DEPTH 1) /private",
		"LIST \"\" \"*\" RETURN (STATUS (MESSAGES) METADATA (/private/comment MAXSIZE 0))",
		"LIST \"\" % RETURN (METADATA ((MAXSIZE 3) (/shared/comment)))",
		"NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER]) MessageExpunge FlagChange)) (personal (MailboxName SubscriptionChange MailboxMetadataChange))",
		"NOTIFY SET (subtree (INBOX \"a\") (MessageNew MessageExpunge)) (mailboxes x NONE) (inboxes (ServerMetadataChange))",
		"NOTIFY NONE",
		"SEARCH RETURN (COUNT UPDATE (UID FLAGS)) ALL",
		"SEARCH CHARSET \"0\xff\xffcect h", // open quote: the library reads on
	} {
		f.Add(s)
	}
	e := newEnvIn(f, memDir(f))
	e.deliver(e.aliceID, "", simpleMsg)
	e.deliver(e.aliceID, "", multipartMsg)
	fs := &fuzzServer{e: e}
	f.Cleanup(func() {
		if fs.conn != nil {
			fs.conn.Close()
		}
	})
	f.Fuzz(func(t *testing.T, line string) {
		if fs.conn == nil {
			fs.dial(t)
		}
		line = strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, line)
		up := strings.ToUpper(strings.TrimSpace(line))
		// Commands that wait for more client input (literals, IDLE,
		// AUTHENTICATE) or end the session are exercised elsewhere.
		for _, p := range []string{"IDLE", "AUTHENTICATE", "STARTTLS", "LOGOUT", "UID IDLE", "APPEND", "UNAUTHENTICATE"} {
			if strings.HasPrefix(up, p) {
				return
			}
		}
		if strings.Contains(line, "{") {
			return
		}
		if openQuote(line) {
			// go-imap reads a quoted string across CRLF until its closing
			// quote, waiting for more input; close it so that the line
			// is one command.
			line += `x"` // x also ends a trailing backslash escape
		}
		st := fs.roundTrip(t, "f "+line, "f")
		if st == "" {
			fs.conn.Close()
			fs.conn = nil
			return
		}
		if !strings.HasPrefix(st, "OK") && !strings.HasPrefix(st, "NO") && !strings.HasPrefix(st, "BAD") {
			t.Fatalf("%q: tagged %q", line, st)
		}
		if st := fs.roundTrip(t, "n NOOP", "n"); st != "" && !strings.HasPrefix(st, "OK") {
			t.Fatalf("NOOP after %q: %q", line, st)
		}
	})
}

// openQuote reports whether line ends inside a quoted string.
func openQuote(line string) bool {
	in := false
	for i := 0; i < len(line); i++ {
		switch {
		case in && line[i] == '\\':
			i++
		case line[i] == '"':
			in = !in
		}
	}
	return in
}

// FuzzMessage delivers arbitrary message bytes and fetches and searches
// them: ENVELOPE, BODYSTRUCTURE, sections and SEARCH TEXT must answer OK
// or NO (never drop the connection or hang), and BODY[] must return the
// bytes exactly.
func FuzzMessage(f *testing.F) {
	f.Add(simpleMsg)
	f.Add(multipartMsg)
	f.Add("Content-Type: multipart/mixed\r\n\r\nx")
	f.Add("Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\nFrom: a@b\r\n\r\nx\r\n--b--\r\n")
	f.Add("Content-Transfer-Encoding: base64\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n8NLJ18XU\r\n")
	f.Add("Subject: a\x00b\r\n\r\nx\x00y\r\n")
	e := newEnvIn(f, memDir(f))
	fs := &fuzzServer{e: e}
	f.Cleanup(func() {
		if fs.conn != nil {
			fs.conn.Close()
		}
	})
	f.Fuzz(func(t *testing.T, msg string) {
		if len(msg) == 0 || len(msg) > 64<<10 {
			return
		}
		if fs.conn == nil {
			fs.dial(t)
		}
		uid := e.deliverTo(t, e.aliceID, "", msg)
		if st := fs.roundTrip(t, "n NOOP", "n"); !strings.HasPrefix(st, "OK") {
			t.Fatalf("NOOP: %q", st)
		}
		for _, c := range []string{
			"UID FETCH %d (ENVELOPE BODYSTRUCTURE BODY.PEEK[1.1] BODY.PEEK[2.HEADER] BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
			"UID FETCH %d (PREVIEW EMAILID SAVEDATE)",
			"UID SEARCH UID %d TEXT zebra",
			"UID SEARCH UID %d HEADER Subject a SENTBEFORE 1-Jan-2000",
		} {
			st := fs.roundTrip(t, "c "+fmt.Sprintf(c, uid), "c")
			if !strings.HasPrefix(st, "OK") && !strings.HasPrefix(st, "NO") {
				t.Fatalf("%s on %q: %q", c, msg, st)
			}
		}
		// BODY[] is the stored bytes, exactly, but for NUL, sent as 0x80
		// (a literal carries no NUL, RFC 9051 §4.3).
		if _, err := fs.conn.Write([]byte(fmt.Sprintf("b UID FETCH %d BODY.PEEK[]\r\n", uid))); err != nil {
			t.Fatal(err)
		}
		l, _ := fs.readLine(t)
		want := fmt.Sprintf("BODY[] {%d}\r\n", len(msg))
		if !strings.HasSuffix(l, want) {
			t.Fatalf("BODY[] header %q, want suffix %q", l, want)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(fs.r, buf); err != nil || string(buf) != strings.ReplaceAll(msg, "\x00", "\x80") {
			t.Fatalf("BODY[] = %q, %v; want %q", buf, err, msg)
		}
		for {
			l, ok := fs.readLine(t)
			if !ok || strings.HasPrefix(l, "b ") {
				break
			}
		}
		fs.roundTrip(t, fmt.Sprintf("d UID STORE %d +FLAGS.SILENT (\\Deleted)", uid), "d")
		fs.roundTrip(t, fmt.Sprintf("x UID EXPUNGE %d", uid), "x")
	})
}
