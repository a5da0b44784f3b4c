package imap

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/dovecottest"
)

// deepMessage is a multipart message nested levels deep, every level with
// its own boundary ("x<level>x": none is a prefix of another), closed
// properly: the hostile message of issue 12, about 70 bytes a level.
func deepMessage(levels int) string {
	var sb strings.Builder
	sb.WriteString("From: mallory@example.net\r\nTo: alice@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"x0x\"\r\n\r\n")
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&sb, "--x%dx\r\nContent-Type: multipart/mixed; boundary=\"x%dx\"\r\n\r\n", i-1, i)
	}
	fmt.Fprintf(&sb, "--x%dx\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n", levels-1)
	for i := levels - 1; i >= 0; i-- {
		fmt.Fprintf(&sb, "--x%dx--\r\n", i)
	}
	return sb.String()
}

// TestHostileDeepMessageIsFlattened: a 700 KB message nested 10000
// levels deep, which anyone can send through the MX, does not stop
// UID FETCH 1:* BODYSTRUCTURE: every message is answered, and the deep
// one is described down to 100 levels, the part at the 100th as
// application/octet-stream of its whole body, as Dovecot 2.3 does
// (message-parser.h MESSAGE_PARSER_DEFAULT_MAX_NESTED_MIME_PARTS).
// Its sections stay fetchable, also past that depth.
func TestHostileDeepMessageIsFlattened(t *testing.T) {
	e := newEnv(t)
	deep := deepMessage(10000)
	if len(deep) < 700_000 {
		t.Fatalf("hostile message is %d bytes", len(deep))
	}
	e.deliver(e.aliceID, "", simpleMsg)
	e.deliver(e.aliceID, "", deep)
	e.deliver(e.aliceID, "", multipartMsg)
	// A sink session: the deep sections take seconds under -race.
	send := sinkSession(t, e)
	u, _ := send("UID FETCH 1:* BODYSTRUCTURE")
	if n := len(filter(u, "BODYSTRUCTURE (")); n != 3 {
		t.Fatalf("%d BODYSTRUCTUREs for 3 messages", n)
	}
	mustHave(t, u, "* 3 FETCH", `"mixed"`, `"rfc822"`)

	// The part with boundary x99x is at depth 100 (path 1.1...1, 99
	// ones): its body runs from after its header to the CRLF before its
	// parent's closing delimiter.
	start := strings.Index(deep, "boundary=\"x99x\"\r\n\r\n") + len("boundary=\"x99x\"\r\n\r\n")
	end := strings.Index(deep, "\r\n--x98x--")
	flat := fmt.Sprintf(`("application" "octet-stream" ("boundary" "x99x") NIL NIL "7bit" %d NIL NIL NIL NIL) "mixed" ("boundary" "x98x")`, end-start)
	mustHave(t, u, "* 2 FETCH", flat)
	if got := strings.Count(bodyStructureOf(t, u, "* 2 FETCH"), `"mixed"`); got != 99 {
		t.Fatalf("%d multiparts described, want 99", got)
	}

	path := strings.TrimSuffix(strings.Repeat("1.", 99), ".")
	u, _ = send("FETCH 2 (BODY.PEEK[" + path + "] BINARY.SIZE[" + path + "] BODY.PEEK[" + path + ".MIME])")
	mustHave(t, u, fmt.Sprintf("BODY[%s] {%d}\n%s", path, end-start, deep[start:start+40]))
	mustHave(t, u, fmt.Sprintf("BINARY.SIZE[%s] %d", path, end-start))
	mustHave(t, u, "MIME] {", "Content-Type: multipart/mixed; boundary=\"x99x\"\r\n\r\n")
	deeper := strings.TrimSuffix(strings.Repeat("1.", 500), ".")
	u, _ = send("FETCH 2 BODY.PEEK[" + deeper + "]")
	mustHave(t, u, fmt.Sprintf("BODY[%s] {%d}", deeper, end-start))
	u, _ = send("FETCH 2 BODY.PEEK[1.1.1.2]")
	mustHave(t, u, "BODY[1.1.1.2] {0}")
	u, _ = send("FETCH 2 BODY.PEEK[]")
	mustHave(t, u, fmt.Sprintf("BODY[] {%d}", len(deep)))
}

// deepRFC822 is a message/rfc822 holding a message/rfc822 ... levels deep.
func deepRFC822(levels int) string {
	var sb strings.Builder
	for i := 0; i < levels; i++ {
		fmt.Fprintf(&sb, "Subject: level %d\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n", i)
	}
	sb.WriteString("Subject: bottom\r\n\r\nbottom text\r\n")
	return sb.String()
}

// bodyStructureOf returns the line of u that starts with prefix.
func bodyStructureOf(t *testing.T, u []string, prefix string) string {
	t.Helper()
	for _, l := range u {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no %q in responses", prefix)
	return ""
}

// TestFetchNULs: a NUL never reaches a literal (RFC 9051 §4.3: CHAR8
// excludes NUL). As Dovecot 2.3 does, NUL is sent as 0x80 in BODY
// sections (the literal's length stays what RFC822.SIZE says) and as
// U+FFFD in ENVELOPE strings; BINARY sends the part as it is in a
// literal8 (RFC 3516 §4.2), where NUL is allowed.
func TestFetchNULs(t *testing.T) {
	e := newEnv(t)
	msg := "From: A\x00B <a\x00b@example.org>\r\nTo: bob@example.com\r\nSubject: hi\x00there\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbody\x00nul\r\n"
	e.deliver(e.aliceID, "", msg)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	for _, utf8 := range []bool{false, true} {
		if utf8 {
			r.expectOK("ENABLE UTF8=ACCEPT")
		}
		u := r.expectOK("FETCH 1 (ENVELOPE BODY.PEEK[] BODY.PEEK[1] BODY.PEEK[TEXT] BODY.PEEK[HEADER] BODYSTRUCTURE)")
		for _, l := range u {
			if i := strings.IndexByte(l, 0); i >= 0 {
				t.Fatalf("utf8=%v: NUL at %d in %q", utf8, i, l)
			}
		}
		mustHave(t, u, fmt.Sprintf("BODY[] {%d}\n%s", len(msg), strings.ReplaceAll(msg, "\x00", "\x80")))
		mustHave(t, u, "BODY[1] {10}\nbody\x80nul\r\n")
		mustHave(t, u, "BODY[TEXT] {10}\nbody\x80nul\r\n")
		mustHave(t, u, "Subject: hi\x80there\r\n")
		if utf8 {
			mustHave(t, u, "hi\uFFFDthere", "a\uFFFDb")
		} else {
			mustHave(t, u, "=?utf-8?q?hi=EF=BF=BDthere?=", "a\uFFFDb")
		}
	}
	u := r.expectOK("FETCH 1 BINARY.PEEK[1]")
	mustHave(t, u, "BINARY[1] ~{10}\nbody\x00nul\r\n")
}

// TestFetchSectionMemory: a FETCH of a section of a large message
// streams it from the store; the server does not hold the section (nor
// the message) in memory. The section is 20 MiB; the budget, for
// everything the process allocates during the command, a few MiB.
func TestFetchSectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("delivers a 40 MiB message")
	}
	e := newEnv(t)
	const size = 20 << 20
	line := strings.Repeat("0123456789abcdef", 4) + "\r\n" // 66 bytes
	text := strings.Repeat(line, size/len(line))
	msg := "From: carol@example.org\r\nTo: alice@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n" +
		"--big\r\nContent-Type: text/plain\r\n\r\n" + text +
		"\r\n--big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + text +
		"\r\n--big--\r\n"
	e.deliver(e.aliceID, "", msg)
	e.indexText() // the store's background indexer would allocate beside the FETCHes measured
	text = ""
	msg = ""
	send := sinkSession(t, e)
	send("FETCH 1 BODY.PEEK[HEADER]") // caches what the session keeps
	for _, tc := range []struct {
		cmd  string
		want int64
	}{
		{"FETCH 1 BODY.PEEK[1]", size / 66 * 66},
		{"FETCH 1 BODY.PEEK[2]", size / 66 * 66},
		{"FETCH 1 BODY.PEEK[TEXT]", -1},
		{"FETCH 1 BINARY.PEEK[2]", -1},
		{"FETCH 1 BINARY.SIZE[2]", 0},
		{"FETCH 1 BODY.PEEK[1]<1000.10000000>", 10000000},
		{"FETCH 1 BODYSTRUCTURE", 0},
		{"FETCH 1 BODY.PEEK[]", -1},
	} {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, n := send(tc.cmd)
		runtime.ReadMemStats(&after)
		if tc.want >= 0 && n != tc.want {
			t.Errorf("%s: %d bytes of literal, want %d", tc.cmd, n, tc.want)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 && !raceEnabled {
			t.Errorf("%s: %d MiB allocated", tc.cmd, alloc>>20)
		}
	}
}

// sinkSession logs alice in over TLS and returns a function that runs a
// command, expects OK, and returns the untagged lines and the total
// length of the literals, which it reads into a sink but for their first
// 64 bytes, added to the line after a "\n": a client that holds
// (almost) nothing, for tests that count what the server allocates. It
// waits a minute for a line.
func sinkSession(t *testing.T, e *env) func(cmd string) (lines []string, literals int64) {
	t.Helper()
	c, err := tls.Dial("tcp", e.tlsAddr, e.client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReaderSize(c, 64<<10)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	send := func(cmd string) (lines []string, literals int64) {
		t.Helper()
		if _, err := io.WriteString(c, "t "+cmd+"\r\n"); err != nil {
			t.Fatal(err)
		}
		for {
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if strings.HasPrefix(l, "t ") {
				if !strings.HasPrefix(l, "t OK") {
					t.Fatalf("%s: %s", cmd, l)
				}
				return lines, literals
			}
			lines = append(lines, strings.TrimSpace(l))
			if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}\r\n") {
				var n int64
				if _, err := fmt.Sscanf(l[i:], "{%d}", &n); err == nil {
					literals += n
					head := make([]byte, min(n, 64))
					if _, err := io.ReadFull(br, head); err != nil {
						t.Fatal(err)
					}
					lines[len(lines)-1] += "\n" + string(head)
					if _, err := io.CopyN(io.Discard, br, n-int64(len(head))); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	send("LOGIN " + alice + " \"" + alicePW + "\"")
	send("SELECT INBOX")
	return send
}

// TestDeepMessageLikeDovecot: for messages nested to and past the depth
// limit (multiparts and message/rfc822 parts), a multipart cut short,
// and a message with NUL bytes in its bodies, our FETCH answers are
// Dovecot's, byte for byte: the same flattened BODYSTRUCTURE, the same
// sections at and past the limit, the same NUL replacement. Both get the same messages; the
// responses are compared after the FETCH's sequence number.
func TestDeepMessageLikeDovecot(t *testing.T) {
	dv := dovecottest.Start(t, dovecottest.Options{Users: map[string]string{"alice": "alice-pw"}})
	e := newEnv(t)
	msgs := []string{
		deepMessage(99), deepMessage(100), deepMessage(101), deepMessage(2000), deepRFC822(150),
		// A multipart cut short: no close delimiter, the last part
		// without its line end.
		"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n" +
			"--q\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--q\r\nContent-Type: text/plain\r\n\r\nsecond, cut",
		// NUL in bodies only: ENVELOPE strings differ on purpose (8-bit
		// text goes to clients without UTF8=ACCEPT as encoded-words,
		// Dovecot sends it raw); TestFetchNULs checks them.
		"From: a@example.org\r\nSubject: nul\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n" +
			"--q\r\nContent-Type: text/plain\r\n\r\nA\x00B\r\n--q\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nC\x00D\r\n--q--\r\n",
	}
	c, err := net.Dial("tcp", dv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	theirs := &raw{t: t, conn: c, r: bufio.NewReader(c)}
	theirs.line()
	theirs.expectOK("LOGIN alice alice-pw")
	for _, m := range msgs {
		theirs.expectOK(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(m), m))
		e.deliver(e.aliceID, "", m)
	}
	ours := loggedIn(e)
	ours.expectOK("SELECT INBOX")
	theirs.expectOK("SELECT INBOX")
	path := func(n int) string { return strings.TrimSuffix(strings.Repeat("1.", n), ".") }
	for _, cmd := range []string{
		"FETCH 1:* BODYSTRUCTURE",
		"FETCH 1:* BODY",
		// Not a multipart part's body (BODY[1.1...] short of the limit):
		// Dovecot counts the CRLF after its close-delimiter in it, we
		// (go-message) give it to the enclosing delimiter (RFC 2046
		// §5.1.1).
		// (One item per FETCH: Dovecot orders the items its own way.)
		"FETCH 1:4 BODY.PEEK[" + path(99) + "]",
		"FETCH 1:4 BODY.PEEK[" + path(100) + "]",
		"FETCH 1:4 BINARY.SIZE[" + path(99) + "]",
		"FETCH 1:4 BODY.PEEK[" + path(99) + "]<10.40>",
		"FETCH 1:4 BODY.PEEK[" + path(99) + ".MIME]",
		"FETCH 5 BODY.PEEK[" + path(98) + ".TEXT]",
		"FETCH 5 BODY.PEEK[" + path(99) + "]",
		"FETCH 5 BODY.PEEK[" + path(100) + "]",
		"FETCH 6 BODY.PEEK[1]",
		"FETCH 6 BODY.PEEK[2]",
		"FETCH 6 BINARY.SIZE[2]",
		"FETCH 7 BODY.PEEK[]",
		"FETCH 7 BODY.PEEK[1]",
		"FETCH 7 BODY.PEEK[2]",
		"FETCH 7 BODY.PEEK[2.TEXT]",
		"FETCH 7 BINARY.PEEK[1]",
	} {
		want := theirs.expectOK(cmd)
		got := ours.expectOK(cmd)
		if len(got) != len(want) {
			t.Fatalf("%s: %d responses, Dovecot %d", cmd, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				d := 0
				for d < min(len(got[i]), len(want[i])) && got[i][d] == want[i][d] {
					d++
				}
				t.Errorf("%s: from byte %d:\n ours    %.300q\n Dovecot %.300q", cmd[:min(len(cmd), 60)], d, got[i][max(0, d-100):], want[i][max(0, d-100):])
			}
		}
	}
}
