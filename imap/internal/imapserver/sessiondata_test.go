package imapserver

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// dataSession answers SELECT, STATUS, SEARCH, FETCH and LIST with what
// the test gives it: values a session may return by mistake, which the
// connection must turn into NO [SERVERBUG] rather than a panic.
type dataSession struct {
	recSession
	selectData *imap.SelectData
	statusData *imap.StatusData
	searchData *imap.SearchData
	bs         imap.BodyStructure
	listData   *imap.ListData
	fetchPanic bool
}

func (s *dataSession) Select(string, *imap.SelectOptions) (*imap.SelectData, error) {
	return s.selectData, nil
}

func (s *dataSession) Unselect() error { return nil }

func (s *dataSession) Status(string, *imap.StatusOptions) (*imap.StatusData, error) {
	return s.statusData, nil
}

func (s *dataSession) Search(NumKind, *imap.SearchCriteria, *imap.SearchOptions) (*imap.SearchData, error) {
	return s.searchData, nil
}

func (s *dataSession) Fetch(w *FetchWriter, _ imap.NumSet, _ *imap.FetchOptions) error {
	if s.fetchPanic {
		panic("dataSession: fetch")
	}
	rw := w.CreateMessage(1)
	rw.WriteUID(1)
	rw.WriteBodyStructure(s.bs)
	return rw.Close()
}

func (s *dataSession) List(w *ListWriter, _ string, _ []string, _ *imap.ListOptions) error {
	return w.WriteList(s.listData)
}

// serveData serves one connection whose session is ds, logged in and,
// if ds can select, with INBOX selected.
func serveData(t *testing.T, ds *dataSession) (*literalServer, *wireClient) {
	t.Helper()
	ls := serveSessions(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapESearch: {}},
		func(ls *literalServer) Session { ds.ls = ls; return ds })
	c := ls.loggedIn(t)
	if ds.selectData != nil {
		c.send("s SELECT INBOX\r\n")
		c.expect("s OK")
	}
	return ls, c
}

var selectedBox = &imap.SelectData{NumMessages: 1, UIDNext: 2, UIDValidity: 1}

// expectLines reads lines up to tag's and compares them with want.
func (c *wireClient) expectLines(tag string, want ...string) {
	c.t.Helper()
	var got []string
	for {
		l := c.line()
		got = append(got, l)
		if strings.HasPrefix(l, tag+" ") {
			break
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		c.t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSearchDataFromSession: SEARCH results that cannot be written are
// an internal error answered before any of the response; no result is
// an empty one. Upstream panicked (nil data, nil set under ESEARCH) or
// wrote half a "* SEARCH" line followed by the tagged NO.
func TestSearchDataFromSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		data *imap.SearchData
		cmd  string
		want []string
	}{
		{"no set", &imap.SearchData{}, "a SEARCH ALL", []string{"* SEARCH", "a OK SEARCH completed"}},
		{"no set, ESEARCH", &imap.SearchData{}, "a SEARCH RETURN (ALL) ALL", []string{`* ESEARCH (TAG "a")`, "a OK SEARCH completed"}},
		{"no data", nil, "a SEARCH ALL", []string{"a NO [SERVERBUG] Internal server error"}},
		{"dynamic set", &imap.SearchData{All: imap.UIDSet{{Start: 1, Stop: 0}}}, "a UID SEARCH ALL", []string{"a NO [SERVERBUG] Internal server error"}},
		{"set", &imap.SearchData{All: imap.SeqSet{{Start: 1, Stop: 1}}}, "a SEARCH ALL", []string{"* SEARCH 1", "a OK SEARCH completed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := serveData(t, &dataSession{selectData: selectedBox, searchData: tc.data})
			c.send(tc.cmd + "\r\n")
			c.expectLines("a", tc.want...)
			c.inStep()
		})
	}
}

// TestBodyStructureFromSession: a body structure that cannot be written
// (RFC 9051 §9: body-type-mpart needs a body) ends FETCH with NO
// [SERVERBUG]; one without extension data is written without it, which
// the grammar allows. Upstream panicked in all three cases.
func TestBodyStructureFromSession(t *testing.T) {
	plain := &imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Text: &imap.BodyStructureText{NumLines: 1}, Size: 3}
	for _, tc := range []struct {
		name string
		bs   imap.BodyStructure
		want []string
	}{
		{"multipart without parts", &imap.BodyStructureMultiPart{Subtype: "mixed", Extended: &imap.BodyStructureMultiPartExt{}},
			[]string{"* 1 FETCH (UID 1)", "a NO [SERVERBUG] Internal server error"}},
		{"nested multipart without parts", &imap.BodyStructureMultiPart{Subtype: "mixed", Children: []imap.BodyStructure{
			plain, &imap.BodyStructureMultiPart{Subtype: "alternative"}}},
			[]string{"* 1 FETCH (UID 1)", "a NO [SERVERBUG] Internal server error"}},
		{"none", nil, []string{"* 1 FETCH (UID 1)", "a NO [SERVERBUG] Internal server error"}},
		{"no extension data", plain,
			[]string{`* 1 FETCH (UID 1 BODYSTRUCTURE ("text" "plain" NIL NIL NIL "7bit" 3 1))`, "a OK FETCH completed"}},
		{"multipart without extension data", &imap.BodyStructureMultiPart{Subtype: "mixed", Children: []imap.BodyStructure{plain}},
			[]string{`* 1 FETCH (UID 1 BODYSTRUCTURE (("text" "plain" NIL NIL NIL "7bit" 3 1) "mixed"))`, "a OK FETCH completed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, c := serveData(t, &dataSession{selectData: selectedBox, bs: tc.bs})
			c.send("a FETCH 1 (UID BODYSTRUCTURE)\r\n")
			c.expectLines("a", tc.want...)
			c.inStep()
			if strings.Contains(tc.want[1], "SERVERBUG") && !ls.logged("level=ERROR", "cmd=FETCH", "body structure") {
				t.Errorf("internal error not logged: %q", ls.logs)
			}
		})
	}
}

// TestMissingDataFromSession: SELECT, STATUS and LIST-STATUS data that a
// session left out is an internal error, not a nil dereference.
func TestMissingDataFromSession(t *testing.T) {
	n := uint32(4)
	t.Run("select", func(t *testing.T) {
		_, c := serveData(t, &dataSession{})
		c.send("a SELECT INBOX\r\n")
		c.expectLines("a", "a NO [SERVERBUG] Internal server error")
		c.inStep()
	})
	t.Run("status", func(t *testing.T) {
		_, c := serveData(t, &dataSession{statusData: &imap.StatusData{Mailbox: "INBOX", NumMessages: &n}})
		c.send("a STATUS INBOX (MESSAGES UNSEEN)\r\n")
		c.expectLines("a", "a NO [SERVERBUG] Internal server error")
		c.send("b STATUS INBOX (MESSAGES)\r\n")
		c.expectLines("b", "* STATUS INBOX (MESSAGES 4)", "b OK STATUS completed")
	})
	t.Run("no status", func(t *testing.T) {
		_, c := serveData(t, &dataSession{})
		c.send("a STATUS INBOX (MESSAGES)\r\n")
		c.expectLines("a", "a NO [SERVERBUG] Internal server error")
		c.inStep()
	})
}

// TestListExtendedItems: CHILDINFO and OLDNAME are written as before
// (RFC 5258 §3.5, RFC 9051 §7.3.1) now that each carries its own writer.
func TestListExtendedItems(t *testing.T) {
	_, c := serveData(t, &dataSession{listData: &imap.ListData{
		Mailbox: "New", Delim: '/', ChildInfo: &imap.ListDataChildInfo{Subscribed: true}, OldName: "Old",
	}})
	c.send("a LIST \"\" *\r\n")
	c.expectLines("a", `* LIST () "/" "New" (CHILDINFO ("SUBSCRIBED") OLDNAME ("Old"))`, "a OK LIST completed")
}

// TestCapabilityWithoutSessionSupport: a server that advertises MOVE
// with a session that cannot move greets with BYE [SERVERBUG] and logs
// the fault; upstream panicked and closed the connection in silence.
func TestCapabilityWithoutSessionSupport(t *testing.T) {
	ls := serveSessions(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}},
		func(ls *literalServer) Session { return &recSession{ls: ls} })
	nc, err := net.Dial("tcp", ls.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &wireClient{t: t, nc: nc, r: bufio.NewReader(nc)}
	c.expectServerBugBye()
	if !ls.logged("level=ERROR", "cap=MOVE") {
		t.Errorf("fault not logged: %q", ls.logs)
	}
}

// TestFailedSessionSaysBye: a session that cannot be made is logged at
// Error and the client greeted with BYE [SERVERBUG]; upstream greeted
// with NO, which is not a greeting (RFC 9051 §9).
func TestFailedSessionSaysBye(t *testing.T) {
	ls := &literalServer{}
	srv := New(&Options{
		NewSession: func(*Conn) (Session, *GreetingData, error) {
			return nil, nil, errors.New("store unavailable")
		},
		Logger: slog.New(slog.NewTextHandler(ls, nil)),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &wireClient{t: t, nc: nc, r: bufio.NewReader(nc)}
	c.expectServerBugBye()
	if !ls.logged("level=ERROR", "failed to create session", `err="store unavailable"`) {
		t.Errorf("failure not logged: %q", ls.logs)
	}
}

// TestPanicEndsOnlyItsConnection: a panic in a session is logged at
// Error with its stack and closes that connection; the server serves
// the next one.
func TestPanicEndsOnlyItsConnection(t *testing.T) {
	ls, c := serveData(t, &dataSession{selectData: selectedBox, fetchPanic: true})
	c.send("a FETCH 1 (UID)\r\n")
	_ = c.nc.SetReadDeadline(time.Now().Add(answerTimeout))
	if l, err := c.r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("connection still open after a panic: %q %v", l, err)
	}
	if !ls.logged("level=ERROR", "panic=\"dataSession: fetch\"", "stack=", "remote=127.0.0.1:") {
		t.Errorf("panic not logged: %q", ls.logs)
	}
	ls.loggedIn(t).inStep()
}

// TestHangUpLoggedAtDebug: a client that goes away in the middle of a
// command is routine, logged at Debug, not Warn.
func TestHangUpLoggedAtDebug(t *testing.T) {
	ls := newLiteralServer(t)
	c := ls.dial(t)
	c.send("a LOGIN user")
	c.nc.Close()
	deadline := time.Now().Add(answerTimeout)
	for !ls.logged("level=DEBUG", "failed to read command") {
		if time.Now().After(deadline) {
			t.Fatalf("hang-up not logged at Debug: %q", ls.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ls.logged("level=WARN") || ls.logged("level=ERROR") {
		t.Errorf("hang-up logged above Debug: %q", ls.logs)
	}
}

func TestNumKindString(t *testing.T) {
	for kind, want := range map[NumKind]string{NumKindSeq: "seq", NumKindUID: "uid", NumKind(7): "NumKind(7)"} {
		if got := kind.String(); got != want {
			t.Errorf("NumKind(%d).String() = %q, want %q", int(kind), got, want)
		}
	}
}

// expectServerBugBye reads the greeting "* BYE [SERVERBUG]" and then the
// end of the connection.
func (c *wireClient) expectServerBugBye() {
	c.t.Helper()
	if l := c.line(); l != "* BYE [SERVERBUG] Internal server error" {
		c.t.Fatalf("greeting %q, want * BYE [SERVERBUG]", l)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(answerTimeout))
	if l, err := c.r.ReadString('\n'); !errors.Is(err, io.EOF) {
		c.t.Fatalf("connection still open after BYE: %q %v", l, err)
	}
}
