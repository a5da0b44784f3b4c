package smtp

import (
	"net"
	"net/textproto"
	"sync"
	"testing"

	"github.com/emersion/go-milter"
)

// testMilter is a milter built on go-milter's own server package, run on
// a loopback port, whose answers a test scripts and which records what it
// was shown.
type testMilter struct {
	addr string

	mu sync.Mutex
	// Answers; nil means continue (accept at end of message).
	onMail func(from string) milter.Response
	onRcpt func(rcpt string) milter.Response
	onEOM  func(m *milter.Modifier) (milter.Response, error)
	// hang, if set, blocks end of message until closed.
	hang chan struct{}

	conns []milterSeen // one per connection, in order
	msgs  []milterSeen // one per end of message
}

// milterSeen is what one milter session was shown.
type milterSeen struct {
	host, family, addr string
	helo               string
	from               string
	rcpts              []string
	headers            [][2]string
	body               []byte
	chunks             int
	maxChunk           int
	macros             map[string]string // at end of headers
}

func startTestMilter(t testing.TB) *testMilter {
	t.Helper()
	tm := &testMilter{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tm.addr = "tcp:" + ln.Addr().String()
	srv := &milter.Server{
		NewMilter: func() milter.Milter { return &testMilterSession{tm: tm} },
		Actions:   milter.OptAddHeader | milter.OptChangeHeader | milter.OptQuarantine,
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		tm.mu.Lock()
		if tm.hang != nil {
			select {
			case <-tm.hang:
			default:
				close(tm.hang)
			}
		}
		tm.mu.Unlock()
		srv.Close()
	})
	return tm
}

func (tm *testMilter) set(f func(tm *testMilter)) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	f(tm)
}

// seen returns copies of the end-of-message records.
func (tm *testMilter) seen() []*milterSeen {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	out := make([]*milterSeen, len(tm.msgs))
	for i := range tm.msgs {
		out[i] = &tm.msgs[i]
	}
	return out
}

// testMilterSession is one go-milter backend; go-milter makes a new one
// after every final answer, so the state lives in cur.
type testMilterSession struct {
	tm  *testMilter
	cur milterSeen
}

func (s *testMilterSession) Connect(host, family string, port uint16, addr net.IP, m *milter.Modifier) (milter.Response, error) {
	s.cur = milterSeen{host: host, family: family, addr: addr.String()}
	s.tm.mu.Lock()
	s.tm.conns = append(s.tm.conns, s.cur)
	s.tm.mu.Unlock()
	return milter.RespContinue, nil
}

func (s *testMilterSession) Helo(name string, m *milter.Modifier) (milter.Response, error) {
	s.cur.helo = name
	return milter.RespContinue, nil
}

func (s *testMilterSession) MailFrom(from string, m *milter.Modifier) (milter.Response, error) {
	s.cur.from = from
	s.tm.mu.Lock()
	f := s.tm.onMail
	s.tm.mu.Unlock()
	if f != nil {
		return f(from), nil
	}
	return milter.RespContinue, nil
}

func (s *testMilterSession) RcptTo(rcpt string, m *milter.Modifier) (milter.Response, error) {
	s.tm.mu.Lock()
	f := s.tm.onRcpt
	s.tm.mu.Unlock()
	if f != nil {
		if r := f(rcpt); r != milter.RespContinue {
			return r, nil
		}
	}
	s.cur.rcpts = append(s.cur.rcpts, rcpt)
	return milter.RespContinue, nil
}

func (s *testMilterSession) Header(name, value string, m *milter.Modifier) (milter.Response, error) {
	s.cur.headers = append(s.cur.headers, [2]string{name, value})
	return milter.RespContinue, nil
}

func (s *testMilterSession) Headers(h textproto.MIMEHeader, m *milter.Modifier) (milter.Response, error) {
	s.cur.macros = m.Macros
	return milter.RespContinue, nil
}

func (s *testMilterSession) BodyChunk(chunk []byte, m *milter.Modifier) (milter.Response, error) {
	s.cur.body = append(s.cur.body, chunk...)
	s.cur.chunks++
	s.cur.maxChunk = max(s.cur.maxChunk, len(chunk))
	return milter.RespContinue, nil
}

func (s *testMilterSession) Body(m *milter.Modifier) (milter.Response, error) {
	s.tm.mu.Lock()
	hang, f := s.tm.hang, s.tm.onEOM
	s.tm.msgs = append(s.tm.msgs, s.cur)
	s.tm.mu.Unlock()
	if hang != nil {
		<-hang
	}
	if f != nil {
		return f(m)
	}
	return milter.RespAccept, nil
}

func (s *testMilterSession) Abort(m *milter.Modifier) error { return nil }
