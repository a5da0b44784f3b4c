//go:build !unix

package testpeer

import (
	"net"
	"testing"
)

// ClosedPort is a loopback TCP port that refuses connections until Listen
// is called. On this OS the port is only free a moment ago (a listener
// opened and closed): Listen fails the test if another program took it
// meanwhile. On unix systems the port is held by a bound socket instead,
// so nothing can race for it.
type ClosedPort struct {
	t    testing.TB
	addr *net.TCPAddr
}

// portHeld: the port is only free a moment ago (see ClosedPort).
const portHeld = false

// ReservePort returns a ClosedPort on 127.0.0.1.
func ReservePort(t testing.TB) *ClosedPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("reserve port: %v", err)
	}
	defer l.Close()
	return &ClosedPort{t: t, addr: l.Addr().(*net.TCPAddr)}
}

// Addr returns the reserved address, 127.0.0.1:port.
func (p *ClosedPort) Addr() *net.TCPAddr { return p.addr }

// Listen listens on the port and returns the listener. The caller closes
// it.
func (p *ClosedPort) Listen() net.Listener {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr.String())
	if err != nil {
		p.t.Fatalf("listen on %v, free a moment ago: %v", p.addr, err)
	}
	return ln
}
