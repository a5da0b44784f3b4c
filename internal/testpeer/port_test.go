package testpeer

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// A reserved port refuses connections and cannot be taken by another
// listener until Listen, after which it accepts.
func TestReservePort(t *testing.T) {
	p := ReservePort(t)
	addr := p.Addr().String()
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial before Listen: %v, want connection refused", err)
	}
	if portHeld {
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			t.Fatal("another listener took the reserved port")
		}
	}
	ln := p.Listen()
	defer ln.Close()
	if ln.Addr().String() != addr {
		t.Fatalf("listening on %v, want %s", ln.Addr(), addr)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial after Listen: %v", err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
