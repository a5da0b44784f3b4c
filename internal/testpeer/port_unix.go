//go:build unix

package testpeer

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
)

// ClosedPort is a loopback TCP port that refuses connections until Listen
// is called, and that no other program can take meanwhile: it is a socket
// bound to the port that does not listen, so the kernel answers every
// connection attempt with a reset (ECONNREFUSED), and Listen makes the
// same socket listen. Unlike closing a listener and listening again on its
// port later, nothing can race for the port.
type ClosedPort struct {
	t    testing.TB
	fd   int
	addr *net.TCPAddr
}

// portHeld: the port is held until Listen (see ClosedPort).
const portHeld = true

// ReservePort returns a ClosedPort on 127.0.0.1; the socket is closed when
// the test ends unless Listen took it over.
func ReservePort(t testing.TB) *ClosedPort {
	t.Helper()
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatalf("reserve port: socket: %v", err)
	}
	p := &ClosedPort{t: t, fd: fd}
	t.Cleanup(func() {
		if p.fd >= 0 {
			syscall.Close(p.fd)
		}
	})
	// No SO_REUSEADDR: another socket cannot bind the port while this
	// one holds it.
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("reserve port: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("reserve port: getsockname: %v", err)
	}
	sa4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		t.Fatalf("reserve port: bound to %T", sa)
	}
	p.addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa4.Port}
	return p
}

// Addr returns the reserved address, 127.0.0.1:port.
func (p *ClosedPort) Addr() *net.TCPAddr { return p.addr }

// Listen makes the reserved socket listen and returns it as a listener;
// from now on connections to the port are accepted. The caller closes the
// listener.
func (p *ClosedPort) Listen() net.Listener {
	p.t.Helper()
	if p.fd < 0 {
		p.t.Fatal("testpeer: ClosedPort.Listen called twice")
	}
	if err := syscall.Listen(p.fd, syscall.SOMAXCONN); err != nil {
		p.t.Fatalf("listen on reserved port %v: %v", p.addr, err)
	}
	f := os.NewFile(uintptr(p.fd), fmt.Sprintf("tcp:%v", p.addr))
	p.fd = -1
	defer f.Close() // FileListener holds its own duplicate
	ln, err := net.FileListener(f)
	if err != nil {
		p.t.Fatalf("listen on reserved port %v: %v", p.addr, err)
	}
	return ln
}
