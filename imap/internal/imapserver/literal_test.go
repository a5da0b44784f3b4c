package imapserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/utf7"
)

// recSession records the commands that reach it in its server's list.
// Any other command calls a method of the nil embedded interface; the
// panic closes the connection and fails the test that sent it.
type recSession struct {
	Session
	ls *literalServer
}

func (s *recSession) record(format string, args ...any) {
	s.ls.mu.Lock()
	s.ls.recorded = append(s.ls.recorded, fmt.Sprintf(format, args...))
	s.ls.mu.Unlock()
}

func (s *recSession) Close() error                   { return nil }
func (s *recSession) Poll(*UpdateWriter, bool) error { return nil }
func (s *recSession) AppendLimit() uint32            { return 1000 }

func (s *recSession) Login(user, pass string) error {
	s.record("LOGIN %s %s", user, pass)
	return nil
}

func (s *recSession) IdleStart(*UpdateWriter) error {
	s.record("IDLE")
	return nil
}

func (s *recSession) IdleStop() error { return nil }

func (s *recSession) Create(name string, _ *imap.CreateOptions) error {
	s.record("CREATE %s", name)
	return nil
}

func (s *recSession) Delete(name string) error {
	s.record("DELETE %s", name)
	return nil
}

func (s *recSession) Rename(old, new string, _ *imap.RenameOptions) error {
	s.record("RENAME %s %s", old, new)
	return nil
}

func (s *recSession) Append(name string, r imap.LiteralReader, _ *imap.AppendOptions) (*imap.AppendData, error) {
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return nil, err
	}
	s.record("APPEND %s %d", name, n)
	return nil, nil
}

// literalServer serves recSessions on a loopback port with LITERAL+, the
// capability of Mailyard's server, and an APPENDLIMIT of 1000 bytes.
type literalServer struct {
	addr     string
	mu       sync.Mutex
	recorded []string // by every session
	logs     []string
}

// Write receives the server's log, one text record per call.
func (ls *literalServer) Write(p []byte) (int, error) {
	ls.mu.Lock()
	ls.logs = append(ls.logs, string(p))
	ls.mu.Unlock()
	return len(p), nil
}

// calls returns what every session recorded.
func (ls *literalServer) calls() []string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return append([]string(nil), ls.recorded...)
}

// logged reports whether one log record contains every part.
func (ls *literalServer) logged(parts ...string) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
next:
	for _, l := range ls.logs {
		for _, part := range parts {
			if !strings.Contains(l, part) {
				continue next
			}
		}
		return true
	}
	return false
}

func newLiteralServer(t testing.TB) *literalServer {
	return serveSessions(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapLiteralPlus: {}},
		func(ls *literalServer) Session { return &recSession{ls: ls} })
}

// serveSessions serves the sessions newSession makes, with caps, and
// keeps the server's log (at every level) in the literalServer.
func serveSessions(t testing.TB, caps imap.CapSet, newSession func(*literalServer) Session) *literalServer {
	ls := &literalServer{}
	srv := New(&Options{
		NewSession: func(*Conn) (Session, *GreetingData, error) {
			return newSession(ls), nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       slog.New(slog.NewTextHandler(ls, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ls.addr = ln.Addr().String()
	return ls
}

// wireClient is a raw connection. Every read must come within
// answerTimeout: a server that waits for more input (for data that was
// refused, or reads the client's next line as this command's) never
// answers. (.ci/interop-literal.sh checks the one-second bound of the
// issue on the real server; here a loaded CI machine gets leeway.)
const answerTimeout = 3 * time.Second

type wireClient struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func (ls *literalServer) dial(t testing.TB) *wireClient {
	nc, err := net.Dial("tcp", ls.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &wireClient{t: t, nc: nc, r: bufio.NewReader(nc)}
	if l := c.line(); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting: %q", l)
	}
	return c
}

func (ls *literalServer) loggedIn(t testing.TB) *wireClient {
	c := ls.dial(t)
	c.send("a LOGIN user pass\r\n")
	c.expect("a OK")
	return c
}

func (c *wireClient) send(s string) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// line reads one line, failing the test if none comes in time or
// it answers an injected command (tag "z").
func (c *wireClient) line() string {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(answerTimeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("no answer within %v: %v (got %q)", answerTimeout, err, l)
	}
	if strings.HasPrefix(l, "z ") {
		c.t.Fatalf("a command inside a literal ran: %q", l)
	}
	return strings.TrimRight(l, "\r\n")
}

// expect reads lines up to the first that starts with tag+" ", which must
// start with prefix; a continuation request on the way fails the test.
func (c *wireClient) expect(prefix string) string {
	c.t.Helper()
	tag := strings.SplitN(prefix, " ", 2)[0]
	for {
		l := c.line()
		if strings.HasPrefix(l, "+") {
			c.t.Fatalf("continuation request while waiting for %q", prefix)
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, prefix) {
				c.t.Fatalf("got %q, want %q", l, prefix)
			}
			return l
		}
	}
}

// expectRefused reads the tagged NO or BAD of tag.
func (c *wireClient) expectRefused(tag string) string {
	c.t.Helper()
	l := c.expect(tag + " ")
	if !strings.HasPrefix(l, tag+" NO") && !strings.HasPrefix(l, tag+" BAD") {
		c.t.Fatalf("got %q, want a tagged NO or BAD", l)
	}
	return l
}

// inStep checks that the server reads the client's next command as one.
func (c *wireClient) inStep() {
	c.t.Helper()
	c.send("p NOOP\r\n")
	c.expect("p OK")
}

// expectBye reads "* BYE" and then the end of the connection.
func (c *wireClient) expectBye() {
	c.t.Helper()
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		c.t.Fatalf("got %q, want * BYE", l)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(answerTimeout))
	if l, err := c.r.ReadString('\n'); !errors.Is(err, io.EOF) {
		c.t.Fatalf("connection still open after BYE: %q %v", l, err)
	}
}

// injected is literal data made of commands, padded to n bytes.
func injected(n int) string {
	s := "foo\r\nz DELETE Victim\r\nz CREATE Evil\r\nz RENAME Victim Gone\r\nz LOGIN user pass\r\n"
	for len(s) < n {
		s += "z DELETE Victim\r\n"
	}
	return s[:n]
}

func checkCalls(t *testing.T, ls *literalServer, want ...string) {
	t.Helper()
	got := ls.calls()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("session calls %q, want %q", got, want)
	}
}

// TestRefusedSyncLiteral: a synchronising literal over a limit gets a
// tagged NO before any "+" and the client's next line is a new command,
// before and after login.
func TestRefusedSyncLiteral(t *testing.T) {
	ls := newLiteralServer(t)
	c := ls.dial(t)
	c.send("a LOGIN {4294967295}\r\n")
	c.expect("a NO [TOOBIG]")
	// The line that would have been LOGIN's arguments is an unknown
	// command: BYE before login (cross-protocol defence).
	c.send("user pass\r\n")
	c.expect("user BAD")
	c.expectBye()

	c = ls.loggedIn(t)
	c.send("c CREATE {5000}\r\n")
	c.expect("c NO [TOOBIG]")
	c.send("d CREATE {3}\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("accepted literal: got %q, want +", l)
	}
	c.send("box\r\n")
	c.expect("d OK")
	c.send("e APPEND INBOX {2000}\r\n")
	c.expect("e NO [TOOBIG]")
	c.inStep()
	checkCalls(t, ls, "LOGIN user pass", "CREATE box")
	if !ls.logged("level=INFO", `msg="imapserver: refused literal"`, "remote=127.0.0.1:", "kind=synchronizing", "size=4294967295") {
		t.Errorf("refusal not logged: %q", ls.logs)
	}
}

// TestRefusedNonSyncLiteral: a non-synchronising literal over a limit is
// refused at once and its data skipped, or the connection is closed when
// it is too large to skip.
func TestRefusedNonSyncLiteral(t *testing.T) {
	ls := newLiteralServer(t)

	// Before login only LITERAL- is announced: more than 4096 bytes is BAD.
	c := ls.dial(t)
	c.send("a LOGIN {5000+}\r\n" + injected(5000) + " pass\r\n")
	c.expect("a BAD [TOOBIG]")
	c.inStep()

	c = ls.loggedIn(t)
	c.send("c UID SEARCH TEXT {5222+}\r\n" + injected(5222) + "\r\n")
	c.expect("c NO [TOOBIG]")
	c.inStep()

	// Over APPENDLIMIT: NO [TOOBIG], the message skipped.
	c.send("e APPEND INBOX {2000+}\r\n" + injected(2000) + "\r\n")
	c.expect("e NO [TOOBIG]")
	c.inStep()

	// Too large to skip: answered, then BYE, without waiting for the data.
	c.send("e APPEND INBOX {52428801+}\r\n" + injected(200))
	c.expect("e NO [TOOBIG]")
	c.expectBye()
	c = ls.loggedIn(t)
	c.send("c CREATE {52428801+}\r\n" + injected(200))
	c.expect("c NO [TOOBIG]")
	c.expectBye()

	checkCalls(t, ls, "LOGIN user pass", "LOGIN user pass")
}

// TestSkipRestOfFailedCommand: after a syntax error the rest of the
// command is skipped with the literals in it; a literal whose size cannot
// be read, or a command that cannot be skipped, closes the connection.
func TestSkipRestOfFailedCommand(t *testing.T) {
	ls := newLiteralServer(t)
	c := ls.loggedIn(t)

	// A syntax error before a non-synchronising literal.
	lit := "z DELETE Victim\r\n"
	c.send(fmt.Sprintf("c CREATE {3+}\r\nabc junk {%d+}\r\n%s\r\n", len(lit), lit))
	c.expect("c BAD")
	c.inStep()

	// ... and before a synchronising one: no "+", the next line is a
	// command.
	c.send("c CREATE abc junk {17}\r\n")
	c.expect("c BAD")
	c.send("d CREATE def\r\n")
	c.expect("d OK")

	// APPEND with something after the literal was answered with nothing;
	// now BAD, and the session never sees the message's end (appendBody).
	c.send("e APPEND INBOX {5+}\r\nhello junk\r\n")
	c.expect("e BAD")

	// A line longer than the limit on a command: skipped to its end.
	pad := strings.Repeat("x", maxCommandSize+1-len("c CREATE "))
	c.send("c CREATE " + pad + "z DELETE Victim\r\n")
	c.expect("c BAD")
	c.inStep()

	// A literal size beyond int64: where the command ends is unknown.
	c.send("c CREATE {99999999999999999999999+}\r\nz DELETE Victim\r\n")
	c.expect("c BAD")
	c.expectBye()

	// A failed command with more than 1 MiB to skip.
	c = ls.loggedIn(t)
	c.send("c CREATE abc junk {2000000+}\r\n" + injected(100))
	c.expect("c BAD")
	c.expectBye()

	checkCalls(t, ls, "LOGIN user pass", "CREATE def", "LOGIN user pass")
}

// TestBufferedLiteralsBounded: a command and the literals it buffers are
// at most maxCommandSize together; the literal that would go beyond is
// refused before it is sent.
func TestBufferedLiteralsBounded(t *testing.T) {
	ls := newLiteralServer(t)
	c := ls.loggedIn(t)
	lit := strings.Repeat("x", 4000)
	c.send("s SEARCH")
	for i := 0; i < 12; i++ { // 48,000 bytes and the command
		c.send(" TEXT {4000}\r\n")
		if l := c.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("literal %d: got %q, want +", i, l)
		}
		c.send(lit)
	}
	c.send(" TEXT {4000}\r\n")
	c.expect("s BAD [TOOBIG]")
	c.inStep()
}

// TestDeepNesting: nesting beyond imapwire.MaxDepth is the client's error,
// answered BAD, in lists and in SEARCH's NOT and OR alike.
func TestDeepNesting(t *testing.T) {
	ls := newLiteralServer(t)
	c := ls.loggedIn(t)
	n := 20000
	c.send("s SEARCH " + strings.Repeat("(", n) + "ALL" + strings.Repeat(")", n) + "\r\n")
	c.expect("s BAD [CLIENTBUG] Syntax error: nested")
	c.send("s SEARCH " + strings.Repeat("NOT ", 12000) + "ALL\r\n")
	c.expect("s BAD [CLIENTBUG] Syntax error: nested")
	c.send("s SEARCH " + strings.Repeat("OR ALL ", 7000) + "ALL\r\n")
	c.expect("s BAD [CLIENTBUG] Syntax error: nested")
	c.send("s SEARCH " + strings.Repeat("(NOT ", 5000) + "ALL" + strings.Repeat(")", 5000) + "\r\n")
	c.expect("s BAD [CLIENTBUG] Syntax error: nested")
	c.inStep()
}

// TestRefusedContinuationLine: the line that should end IDLE and an
// AUTHENTICATE response are not decoded as commands, but one that the
// server refuses is skipped like a failed command: a literal announced at
// its end is skipped with it, never run as commands, and a line longer
// than the read buffer is answered (BAD) and skipped, or answered with BYE
// when it is longer than maxSkip.
func TestRefusedContinuationLine(t *testing.T) {
	ls := newLiteralServer(t)
	idle := func(c *wireClient) {
		t.Helper()
		c.send("i IDLE\r\n")
		if l := c.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("IDLE: got %q, want +", l)
		}
	}
	lit := injected(100)
	c := ls.loggedIn(t)
	idle(c)
	c.send(fmt.Sprintf("DONE {%d+}\r\n%s\r\n", len(lit), lit))
	c.expect("i BAD [CLIENTBUG]")
	c.inStep()
	idle(c)
	c.send(fmt.Sprintf("junk {%d+}\r\n%s junk {%d+}\r\n%s\r\n", len(lit), lit, len(lit), lit))
	c.expect("i BAD [CLIENTBUG]")
	c.inStep()
	idle(c)
	c.send(strings.Repeat("x", 3*maxCommandSize) + "\r\n")
	c.expect("i BAD [CLIENTBUG]")
	c.inStep()
	idle(c)
	c.send(strings.Repeat("x", maxSkip+1) + "\r\n")
	c.expect("i BAD [CLIENTBUG]")
	c.expectBye()

	auth := func() *wireClient {
		t.Helper()
		c := ls.dial(t)
		c.send("a AUTHENTICATE PLAIN\r\n")
		if l := c.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("AUTHENTICATE: got %q, want +", l)
		}
		return c
	}
	c = auth()
	c.send(fmt.Sprintf("{%d+}\r\n%s\r\n", len(lit), lit))
	c.expect("a BAD")
	c.inStep()
	c = auth()
	c.send(fmt.Sprintf("AAAA {%d}\r\n", len(lit))) // synchronising: no data comes
	c.expect("a BAD")
	c.inStep()
	c = auth()
	c.send(strings.Repeat("A", 8192) + fmt.Sprintf(" {%d+}\r\n%s\r\n", len(lit), lit))
	c.expect("a BAD [CLIENTBUG]")
	c.inStep()

	checkCalls(t, ls, "LOGIN user pass", "IDLE", "IDLE", "IDLE", "IDLE")
}

// TestUnreadableCommandSaysBye: a command whose tag or name cannot be read
// (a literal in their place, an empty line) closes the connection, with
// BAD and BYE first; nothing after it runs.
func TestUnreadableCommandSaysBye(t *testing.T) {
	ls := newLiteralServer(t)
	for _, tc := range []struct {
		login     bool
		send, bad string
	}{
		{true, "{5+}\r\nz CREATE Evil\r\n", "* BAD [CLIENTBUG]"},
		{true, "a {5+}\r\nz CREATE Evil\r\n", "a BAD [CLIENTBUG]"},
		{false, "a UID {5}\r\nz LOGIN user pass\r\n", "a BAD [CLIENTBUG]"},
		{false, "\r\nz LOGIN user pass\r\n", "* BAD [CLIENTBUG]"},
	} {
		var c *wireClient
		if tc.login {
			c = ls.loggedIn(t)
		} else {
			c = ls.dial(t)
		}
		c.send(tc.send)
		if l := c.line(); !strings.HasPrefix(l, tc.bad) {
			t.Fatalf("%q: got %q, want %q", tc.send, l, tc.bad)
		}
		if l := c.line(); !strings.HasPrefix(l, "* BYE") {
			t.Fatalf("%q: got %q, want * BYE", tc.send, l)
		}
		// The client's line is still unread when its first byte is
		// wrong; the lingering close makes that an EOF, not a reset.
		_ = c.nc.SetReadDeadline(time.Now().Add(answerTimeout))
		if l, err := c.r.ReadString('\n'); !errors.Is(err, io.EOF) {
			t.Fatalf("%q: want the end of the stream after BYE, got %q %v", tc.send, l, err)
		}
	}

	// After login a command whose tag was read is a failed command like
	// any other: answered and skipped.
	c := ls.loggedIn(t)
	c.send("a UID\r\n")
	c.expect("a BAD [CLIENTBUG]")
	c.send("a UID {15+}\r\nz CREATE Evil\r\n\r\n")
	c.expect("a BAD [CLIENTBUG]")
	c.inStep()
	checkCalls(t, ls, "LOGIN user pass", "LOGIN user pass", "LOGIN user pass")
}

// TestByeSurvivesUnreadInput: a client that keeps sending after a
// command the server cannot read still gets the BAD and the BYE, then the
// end of the stream — not a reset that could discard them (the server
// shuts its write side and drains before it closes).
func TestByeSurvivesUnreadInput(t *testing.T) {
	ls := newLiteralServer(t)
	for range 20 {
		c := ls.loggedIn(t)
		c.send("{5+}\r\n" + strings.Repeat("z NOOP\r\n", 20000))
		if l := c.line(); !strings.HasPrefix(l, "* BAD [CLIENTBUG]") {
			t.Fatalf("got %q, want * BAD [CLIENTBUG]", l)
		}
		if l := c.line(); !strings.HasPrefix(l, "* BYE") {
			t.Fatalf("got %q, want * BYE", l)
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(answerTimeout))
		if l, err := c.r.ReadString('\n'); !errors.Is(err, io.EOF) {
			t.Fatalf("want the end of the stream after BYE, got %q %v", l, err)
		}
	}
}

// TestInvalidDateIsBad: a date that does not exist or does not parse is
// the client's error, BAD [CLIENTBUG] (was NO [SERVERBUG]), and the rest
// of the command is skipped.
func TestInvalidDateIsBad(t *testing.T) {
	ls := newLiteralServer(t)
	c := ls.loggedIn(t)
	for _, date := range []string{"31-Feb-2020", "1-Jan-99999", "x"} {
		c.send("s SEARCH SINCE " + date + "\r\n")
		c.expect("s BAD [CLIENTBUG] Syntax error: date")
	}
	lit := injected(40)
	c.send(fmt.Sprintf("a APPEND INBOX \"99-Xyz-2020 00:00:00 +0000\" {%d+}\r\n%s\r\n", len(lit), lit))
	c.expect("a BAD [CLIENTBUG] Syntax error: date-time")
	c.inStep()
	checkCalls(t, ls, "LOGIN user pass")
}

// fuzzCmd is one command of FuzzCommandReader: a verb with one literal
// argument and what follows the literal.
type fuzzCmd struct {
	verb    int // CREATE, SEARCH TEXT, APPEND INBOX, LOGIN
	size    int64
	nonSync bool
	data    string // what the client sends of the literal's data
	trailer int    // CRLF; junk CRLF; junk non-sync literal; junk sync literal
	junkLit string // the trailing literal's data (trailer 2)
}

var fuzzVerbs = []string{"CREATE", "UID SEARCH TEXT", "APPEND INBOX", "LOGIN"}

// fuzzData is literal data made of the fuzzer's bytes in an alphabet of
// the protocol's delimiters, so that it looks like commands and literals.
func fuzzData(in []byte, n int) string {
	const alphabet = "z DELETE\r\n{5+}(\")a&"
	var sb strings.Builder
	for i := 0; i < n; i++ {
		if len(in) == 0 {
			sb.WriteString(injected(n - i))
			break
		}
		sb.WriteByte(alphabet[int(in[i%len(in)])%len(alphabet)])
	}
	return sb.String()
}

// parseFuzzCmds turns fuzz input into at most 6 commands.
func parseFuzzCmds(in []byte) []fuzzCmd {
	var cmds []fuzzCmd
	for len(in) >= 4 && len(cmds) < 6 {
		b := in[:4]
		in = in[4:]
		c := fuzzCmd{verb: int(b[0]) % len(fuzzVerbs), nonSync: b[2]&1 == 1, trailer: int(b[3]) % 4}
		switch b[1] % 6 {
		case 0:
			c.size = int64(b[2] % 64)
		case 1:
			c.size = maxBufferedLiteral
		case 2:
			c.size = maxBufferedLiteral + 1
		case 3:
			c.size = 5000 + int64(b[2])*4 // over the buffered limit, under maxSkip
		case 4:
			c.size = 1000 + int64(b[2]%3) // around APPENDLIMIT
		case 5:
			c.size = maxSkip + 1 + int64(b[2]) // beyond what is skipped
		}
		n := c.size
		if n > 300 && c.size > maxSkip {
			n = 300 // only the start is sent: the server must not wait for more
		}
		c.data = fuzzData(in, int(n))
		c.junkLit = fuzzData(b, int(b[3]%40))
		cmds = append(cmds, c)
	}
	return cmds
}

// FuzzCommandReader sends commands with literals of every size class,
// synchronising and not, followed by a correct end or by junk, and checks
// the server against a model of where each command ends: every command
// gets exactly its own tagged answer (or BYE and close when its literal is
// too large to skip), a "+" comes exactly when the literal is accepted,
// nothing inside a literal runs as a command, and the session sees
// exactly the commands that the model accepts.
func FuzzCommandReader(f *testing.F) {
	f.Add([]byte{0, 0, 7, 0})
	f.Add([]byte{1, 3, 1, 0, 2, 4, 1, 2, 2, 5, 1, 0})
	f.Add([]byte{3, 0, 3, 0, 0, 3, 1, 0, 2, 0, 1, 2})
	f.Add([]byte{1, 2, 1, 1, 3, 5, 0, 0})
	f.Add([]byte{3, 2, 0, 3, 0, 1, 0, 1, 2, 0, 1, 2})
	f.Add([]byte{0, 0, 9, 2, 0, 3, 2, 3, 2, 4, 0, 0})
	ls := newLiteralServer(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		// The first byte's low bit: start before login.
		authed := len(in) == 0 || in[0]&1 == 0
		cmds := parseFuzzCmds(in)
		before := len(ls.calls())
		var want []string
		c := ls.dial(t)
		if authed {
			c.send("a LOGIN user pass\r\n")
			c.expect("a OK")
			want = append(want, "LOGIN user pass")
		}
		closed := false
		for i, cmd := range cmds {
			tag := fmt.Sprintf("t%d", i)
			var accepted bool
			switch {
			case cmd.verb == 2: // APPEND checks the state first
				accepted = authed && cmd.size <= 1000
			default:
				accepted = cmd.size <= maxBufferedLiteral
			}
			plus := ""
			if cmd.nonSync {
				plus = "+"
			}
			header := fmt.Sprintf("%s %s {%d%s}\r\n", tag, fuzzVerbs[cmd.verb], cmd.size, plus)
			rest := ""
			if cmd.verb == 3 {
				rest = " pass"
			}
			switch cmd.trailer {
			case 0:
				rest += "\r\n"
			case 1:
				rest += " junk\r\n"
			case 2:
				rest += fmt.Sprintf(" junk {%d+}\r\n%s\r\n", len(cmd.junkLit), cmd.junkLit)
			case 3:
				rest += " junk {7}\r\n"
			}
			if !cmd.nonSync {
				c.send(header)
				if !accepted {
					c.expectRefused(tag)
					continue
				}
				if l := c.line(); !strings.HasPrefix(l, "+") {
					t.Fatalf("%s: got %q, want +", header, l)
				}
			}
			if cmd.nonSync {
				c.send(header + cmd.data)
				if !accepted {
					c.expectRefused(tag)
					if cmd.size > maxSkip {
						c.expectBye()
						closed = true
						break
					}
					c.send(rest)
					continue
				}
			} else {
				c.send(cmd.data)
			}
			c.send(rest)
			l := c.expect(tag + " ")
			ok := false
			switch {
			case cmd.verb == 0 && authed:
				if name, err := utf7.Decode(cmd.data); err == nil && cmd.trailer == 0 {
					if strings.EqualFold(name, "INBOX") {
						name = "INBOX"
					}
					want = append(want, "CREATE "+name)
					ok = true
				}
			case cmd.verb == 2 && cmd.trailer == 0:
				// With junk after the message the session's read fails.
				want = append(want, fmt.Sprintf("APPEND INBOX %d", cmd.size))
				ok = true
			case cmd.verb == 3 && !authed && cmd.trailer == 0:
				want = append(want, "LOGIN "+cmd.data+" pass")
				ok = true
				authed = true
			}
			if ok != strings.HasPrefix(l, tag+" OK") {
				t.Fatalf("%q: got %q, want OK: %v", header, l, ok)
			}
		}
		if !closed {
			c.inStep()
		}
		c.nc.Close()
		got := ls.calls()[before:]
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("session calls %q, want %q", got, want)
		}
	})
}
