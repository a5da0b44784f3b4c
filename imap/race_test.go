package imap

import (
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// raceMsg is a message big enough that a FETCH of 200 of them fills the
// socket buffers, so the server is still writing the FETCH responses
// (with bodies yet to be opened) while the other session's EXPUNGE
// commits.
var raceMsg = "From: carol@example.org\r\nTo: alice@example.com\r\nSubject: race\r\n\r\n" +
	strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!?\r\n", 300)

var (
	bodyLiteralRE = regexp.MustCompile(`BODY\[\] \{(\d+)\}`)
	fetchSeq      = regexp.MustCompile(`^\* (\d+) FETCH `)
)

// checkRacedFetch checks a FETCH that raced an expunge by another
// session: every message still in the store when its body was opened is
// answered with its whole body, the others not at all, and the command
// ends OK or NO [EXPUNGEISSUED] (RFC 2180 §4.1.2, RFC 5530), never with
// another code and never with an empty body.
func checkRacedFetch(t *testing.T, cmd string, untagged []string, status string, want int) (bodies map[int]bool) {
	t.Helper()
	bodies = make(map[int]bool)
	for _, l := range untagged {
		if strings.Contains(l, "EXPUNGE") && !strings.Contains(l, "FETCH") {
			t.Fatalf("%s: EXPUNGE during FETCH (RFC 9051 §7.5.1): %q", cmd, l)
		}
		m := bodyLiteralRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n != want {
			t.Fatalf("%s: body of %d octets, want %d: %.200q", cmd, n, want, l)
		}
		seq, _ := strconv.Atoi(fetchSeq.FindStringSubmatch(l)[1])
		bodies[seq] = true
	}
	if !strings.HasPrefix(status, "OK") && !strings.HasPrefix(status, "NO [EXPUNGEISSUED]") {
		t.Fatalf("%s ended %q", cmd, status)
	}
	return bodies
}

// TestFetchRacingExpunge: one session fetches 200 messages while another
// expunges 150 of them (issue 12, item 5). The FETCH is sent and its
// responses left unread while the EXPUNGE runs, so the server is blocked
// mid-FETCH when the expunge commits and frees the blobs.
func TestFetchRacingExpunge(t *testing.T) {
	for _, items := range []string{"(BODY[] FLAGS)", "(FLAGS BODY.PEEK[HEADER] BODY.PEEK[])", "(ENVELOPE BODY.PEEK[])"} {
		t.Run(items, func(t *testing.T) {
			e := newEnvIn(t, memDir(t))
			a, b := loggedIn(e), loggedIn(e)
			rounds := 6
			if testing.Short() {
				rounds = 2
			}
			for round := range rounds {
				n := countMessages(t, a)
				for range 200 - n {
					e.deliver(e.aliceID, "", raceMsg)
				}
				a.expectOK("SELECT INBOX")
				b.expectOK("SELECT INBOX")
				b.expectOK(`STORE 1:150 +FLAGS.SILENT (\Deleted)`)

				a.n++
				tag := "f" + strconv.Itoa(a.n)
				cmd := "FETCH 1:200 " + items
				a.send(tag + " " + cmd + "\r\n")
				// Let the FETCH start on the server: its first response
				// arrives before the expunge is sent (from round 1 on;
				// round 0 leaves the order to chance).
				if round > 0 {
					if _, err := a.r.Peek(1); err != nil {
						t.Fatal(err)
					}
				}
				b.expectOK("EXPUNGE")
				u, st := a.readUntil(tag)
				bodies := checkRacedFetch(t, cmd, u, st, len(raceMsg))
				for seq := 151; seq <= 200; seq++ {
					if !bodies[seq] {
						t.Fatalf("round %d: no body for message %d, which was not expunged", round, seq)
					}
				}
				if len(bodies) < 200 && !strings.HasPrefix(st, "NO [EXPUNGEISSUED]") {
					t.Fatalf("round %d: %d of 200 bodies, status %q", round, len(bodies), st)
				}
				t.Logf("round %d: %d of 200 bodies, %s", round, len(bodies), st)
				b.expectOK("CLOSE")
				a.expectOK("CLOSE")
			}
		})
	}
}

// selectNewTmp creates alice's mailbox Tmp holding n copies of msg and
// selects it in r.
func selectNewTmp(t *testing.T, e *env, r *raw, msg string, n int) {
	t.Helper()
	r.expectOK("CREATE Tmp")
	for range n {
		if _, err := e.st.Append(context.Background(), e.aliceID, "Tmp", strings.NewReader(msg), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r.expectOK("SELECT Tmp")
}

// countMessages returns the number of messages in INBOX.
func countMessages(t *testing.T, r *raw) int {
	t.Helper()
	u := r.expectOK("STATUS INBOX (MESSAGES)")
	for _, l := range u {
		if i := strings.Index(l, "MESSAGES "); i >= 0 {
			n, err := strconv.Atoi(strings.TrimRight(l[i+len("MESSAGES "):], ")"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no STATUS in %q", u)
	return 0
}

// TestFetchRacingDelete: the selected mailbox is deleted by another
// session while a FETCH of it runs. Its messages are expunged (RFC 2180
// §3), so the FETCH ends OK or NO [EXPUNGEISSUED] with whole bodies only
// (not NO [NONEXISTENT], NO [SERVERBUG] or an empty literal), and the
// next command reports every message expunged.
func TestFetchRacingDelete(t *testing.T) {
	e := newEnvIn(t, memDir(t))
	a, b := loggedIn(e), loggedIn(e)
	selectNewTmp(t, e, a, raceMsg, 200)
	a.n++
	tag := "f" + strconv.Itoa(a.n)
	a.send(tag + " FETCH 1:200 (FLAGS BODY.PEEK[])\r\n")
	if _, err := a.r.Peek(1); err != nil {
		t.Fatal(err)
	}
	b.expectOK("DELETE Tmp")
	u, st := a.readUntil(tag)
	bodies := checkRacedFetch(t, "FETCH 1:200 (FLAGS BODY.PEEK[])", u, st, len(raceMsg))
	if len(bodies) < 200 && !strings.HasPrefix(st, "NO [EXPUNGEISSUED]") {
		t.Fatalf("%d of 200 bodies, status %q", len(bodies), st)
	}
	t.Logf("%d of 200 bodies, %s", len(bodies), st)
	u = a.expectOK("NOOP")
	if n := len(filter(u, "EXPUNGE")); n != 200 {
		t.Fatalf("NOOP after DELETE: %d EXPUNGE responses, want 200", n)
	}
}

// openGate is a Backend whose first OpenBody waits until the test opens
// the gate: the command that called it has looked its messages up and
// not yet read a body, so another session's EXPUNGE committed meanwhile
// lands exactly in between.
type openGate struct {
	Backend
	once     sync.Once
	opened   chan struct{} // closed when the first OpenBody waits
	release  chan struct{}
	released sync.Once
}

// gatedEnv is an env whose servers use an openGate over the store. The
// gate is opened when the test ends, whatever happened.
func gatedEnv(t *testing.T) (*env, *openGate) {
	g := &openGate{opened: make(chan struct{}), release: make(chan struct{})}
	e := newEnvIn(t, memDir(t), func(o *Options) { g.Backend, o.Backend = o.Backend, g })
	t.Cleanup(g.open) // before the servers close: they wait for it
	return e, g
}

func (g *openGate) OpenBody(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, error) {
	g.once.Do(func() {
		close(g.opened)
		<-g.release
	})
	return g.Backend.OpenBody(ctx, account, mailbox, uid)
}

func (g *openGate) open() { g.released.Do(func() { close(g.release) }) }

// waitOpened waits until a command is held at the gate.
func (g *openGate) waitOpened(t *testing.T) {
	t.Helper()
	select {
	case <-g.opened:
	case <-time.After(10 * time.Second):
		t.Fatal("no message body was opened")
	}
}

// TestSearchRacingExpunge: SEARCH with keys that read the message
// (BODY, TEXT, HEADER) while another session expunges 15 of the 20
// messages, after the search has listed them and before it reads the
// first. The search ends OK and, as RFC 2180 §4.3 allows, leaves the
// expunged messages out: they are not there to match. It used to end
// NO [NONEXISTENT] "No such mailbox" for a mailbox that exists.
func TestSearchRacingExpunge(t *testing.T) {
	for _, key := range []string{`BODY "xyz"`, `TEXT "xyz"`, `HEADER Subject "race"`, `OR SEEN BODY "xyz"`} {
		t.Run(key, func(t *testing.T) {
			e, g := gatedEnv(t)
			for range 20 {
				e.deliver(e.aliceID, "", raceMsg)
			}
			a, b := loggedIn(e), loggedIn(e)
			a.expectOK("SELECT INBOX")
			b.expectOK("SELECT INBOX")
			b.expectOK(`STORE 1:15 +FLAGS.SILENT (\Deleted)`)

			a.n++
			tag := "s" + strconv.Itoa(a.n)
			a.send(tag + " SEARCH " + key + "\r\n")
			g.waitOpened(t)
			b.expectOK("EXPUNGE")
			g.open()
			u, st := a.readUntil(tag)
			if !strings.HasPrefix(st, "OK") {
				t.Fatalf("SEARCH %s ended %q", key, st)
			}
			mustHave(t, u, "* SEARCH 16 17 18 19 20")
			// The next command may report the expunges.
			if n := len(filter(a.expectOK("NOOP"), "EXPUNGE")); n != 15 {
				t.Fatalf("NOOP after the SEARCH: %d EXPUNGE responses, want 15", n)
			}
		})
	}
}

// TestSearchRacingDelete: the selected mailbox is deleted by another
// session, once while a SEARCH BODY of it is between listing and
// reading its messages, once before the SEARCH. Its messages count as
// expunged (RFC 2180 §3), so the SEARCH ends OK with no results (RFC
// 2180 §4.3), as FETCH treats them (TestFetchRacingDelete); CLOSE then
// leaves the deleted mailbox.
func TestSearchRacingDelete(t *testing.T) {
	e, g := gatedEnv(t)
	a, b := loggedIn(e), loggedIn(e)
	for _, during := range []bool{true, false} {
		selectNewTmp(t, e, a, raceMsg, 5)
		a.n++
		tag := "s" + strconv.Itoa(a.n)
		if during {
			a.send(tag + " SEARCH BODY \"xyz\"\r\n")
			g.waitOpened(t)
			b.expectOK("DELETE Tmp")
			g.open()
		} else {
			b.expectOK("DELETE Tmp")
			a.send(tag + " SEARCH BODY \"xyz\"\r\n")
		}
		u, st := a.readUntil(tag)
		if !strings.HasPrefix(st, "OK") {
			t.Fatalf("SEARCH (deleted during it: %v) ended %q", during, st)
		}
		mustHave(t, u, "* SEARCH")
		mustNotHave(t, u, "* SEARCH ")
		a.expectOK("CLOSE")
	}
}

// TestSelectedMailboxDeleted: commands on a selected mailbox that
// another session deleted since the last poll. Its messages are
// expunged (RFC 2180 §3): what needs their data or changes them is NO
// [EXPUNGEISSUED] (RFC 5530 §3; STORE .SILENT is OK, RFC 2180 §4.2.1),
// SEARCH finds nothing (§4.3), EXPUNGE and CLOSE succeed, and nothing is
// copied. COPY and MOVE used to say NO [TRYCREATE] "No such mailbox:
// INBOX" of a destination that exists, inviting the client to create
// it; STORE, EXPUNGE and CLOSE said NO [NONEXISTENT].
func TestSelectedMailboxDeleted(t *testing.T) {
	e := newEnvIn(t, memDir(t))
	a, b := loggedIn(e), loggedIn(e)
	for _, c := range []struct{ cmd, status string }{
		{"COPY 1 INBOX", "NO [EXPUNGEISSUED]"},
		{"MOVE 1 INBOX", "NO [EXPUNGEISSUED]"},
		{"UID COPY 1:* INBOX", "NO [EXPUNGEISSUED]"},
		{"UID MOVE 1:* INBOX", "NO [EXPUNGEISSUED]"},
		{"FETCH 1 BODY.PEEK[]", "NO [EXPUNGEISSUED]"},
		{`STORE 1 +FLAGS (\Seen)`, "NO [EXPUNGEISSUED]"},
		{`STORE 1 +FLAGS.SILENT (\Seen)`, "OK"},
		{"SEARCH ALL", "OK"},
		{"EXPUNGE", "OK"},
		{"CLOSE", "OK"},
	} {
		selectNewTmp(t, e, a, simpleMsg, 1)
		b.expectOK("DELETE Tmp")
		u, st := a.cmd(c.cmd)
		if !strings.HasPrefix(st, c.status) {
			t.Errorf("%s: %q, want %s", c.cmd, st, c.status)
		}
		switch c.cmd {
		case "SEARCH ALL":
			mustHave(t, u, "* SEARCH")
			mustNotHave(t, u, "* SEARCH ")
		case "EXPUNGE":
			mustHave(t, u, "* 1 EXPUNGE")
		}
		if n := countMessages(t, a); n != 0 {
			t.Fatalf("%s: INBOX holds %d messages, want 0", c.cmd, n)
		}
		if c.cmd != "CLOSE" {
			a.expectOK("CLOSE")
		}
	}

	// UID FETCH (CHANGEDSINCE VANISHED) looks up VANISHED (EARLIER)
	// first (RFC 7162 §3.2.6): it ends OK, and its poll reports the
	// message VANISHED.
	a.expectOK("ENABLE QRESYNC")
	selectNewTmp(t, e, a, simpleMsg, 1)
	b.expectOK("DELETE Tmp")
	u := a.expectOK("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
	mustHave(t, u, "VANISHED 1")
}

// TestAccountDeletedUnderSession: the account of a logged-in session is
// deleted. Its commands fail NO [NONEXISTENT] naming the account: not
// "No such mailbox" for CREATE, and not NO [TRYCREATE] for APPEND,
// which would send the client to create a mailbox it cannot.
func TestAccountDeletedUnderSession(t *testing.T) {
	e := newEnvIn(t, memDir(t))
	a := loggedIn(e)
	if err := e.st.DeleteAccount(context.Background(), e.aliceID); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"CREATE Tmp", "STATUS INBOX (MESSAGES)", "SELECT INBOX", "APPEND INBOX {5+}\r\nhello"} {
		if _, st := a.cmd(cmd); st != "NO [NONEXISTENT] No such account" {
			t.Fatalf("%q after the account was deleted: %q", cmd, st)
		}
	}
}
