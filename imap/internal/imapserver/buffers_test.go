package imapserver

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// idleSession is just enough of a Session for the wire tests below: LOGIN,
// NOOP and IDLE. Any other command would call a method of the nil
// embedded interface and fail the test with a panic.
type idleSession struct {
	Session
	mu sync.Mutex
	w  *UpdateWriter // set during IDLE
}

func (s *idleSession) Login(string, string) error              { return nil }
func (s *idleSession) Close() error                            { return nil }
func (s *idleSession) Poll(*UpdateWriter, bool) error          { return nil }
func (s *idleSession) Namespace() (*imap.NamespaceData, error) { return nil, nil }
func (s *idleSession) IdleStart(w *UpdateWriter) error {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
	return nil
}
func (s *idleSession) IdleStop() error {
	s.mu.Lock()
	s.w = nil
	s.mu.Unlock()
	return nil
}

func (s *idleSession) writer() *UpdateWriter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w
}

// TestIdleConnectionHoldsNoBuffers checks that a connection waiting for a
// command, or for DONE in IDLE, has given its read and write buffers back,
// and that updates written during IDLE and pipelined commands still work.
func TestIdleConnectionHoldsNoBuffers(t *testing.T) {
	sess := &idleSession{}
	srv := New(&Options{
		NewSession: func(*Conn) (Session, *GreetingData, error) {
			return sess, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	line := func() string {
		t.Helper()
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimRight(l, "\r\n")
	}
	expect := func(prefix string) {
		t.Helper()
		if l := line(); !strings.HasPrefix(l, prefix) {
			t.Fatalf("got %q, want %q...", l, prefix)
		}
	}
	send := func(s string) {
		t.Helper()
		if _, err := nc.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	conn := func() *Conn {
		srv.mutex.Lock()
		defer srv.mutex.Unlock()
		for c := range srv.conns {
			return c
		}
		return nil
	}
	// released waits until the server's side of the connection holds no
	// buffer; it is checked after each exchange.
	released := func(when string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c := conn()
			if c != nil && !c.brHeld.Load() && !c.bwHeld.Load() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: buffers still held", when)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	expect("* OK")
	released("after the greeting")
	send("a LOGIN u p\r\n")
	expect("a OK")
	released("between commands")

	// Two commands in one write: the second is decoded from the buffer
	// the first left, and nothing is lost when the buffer goes back.
	send("b NOOP\r\nc NOOP\r\n")
	expect("b OK")
	expect("c OK")
	released("after pipelined commands")

	send("d IDLE\r\n")
	expect("+ ")
	var w *UpdateWriter
	for deadline := time.Now().Add(5 * time.Second); w == nil; {
		if w = sess.writer(); w == nil && time.Now().After(deadline) {
			t.Fatal("IdleStart was not called")
		}
		time.Sleep(time.Millisecond)
	}
	released("in IDLE")
	if err := w.WriteNumMessages(3); err != nil {
		t.Fatal(err)
	}
	expect("* 3 EXISTS")
	released("after an update in IDLE")
	send("done\r\n") // RFC 2177: any case
	expect("d OK")
	if sess.writer() != nil {
		t.Fatal("IdleStop was not called")
	}
	// A line longer than the read buffer instead of DONE is a BAD IDLE,
	// and none of it runs as a command.
	send("f IDLE\r\n")
	expect("+ ")
	send(strings.Repeat("x", 5000) + " g NOOP\r\n")
	expect("f BAD")
	send("h NOOP\r\n")
	expect("h OK")

	send("e LOGOUT\r\n")
	expect("* BYE")
	expect("e OK")
}
