package limits

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestListener: a connection over the per-client cap is handed to Refuse
// with ErrClientConnLimit and never returned by Accept; closing an
// admitted connection frees its slot.
func TestListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan error, 4)
	ln := &Listener{Listener: inner, Limiter: NewConnLimiter(1, 0), Refuse: func(c net.Conn, err error) {
		_, _ = io.WriteString(c, "no\n")
		c.Close()
		refused <- err
	}}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", inner.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	first := <-accepted
	second := dial()
	if err := <-refused; !errors.Is(err, ErrClientConnLimit) {
		t.Fatalf("second connection refused with %v, want ErrClientConnLimit", err)
	}
	if b, _ := io.ReadAll(second); string(b) != "no\n" {
		t.Fatalf("refused client read %q", b)
	}
	first.Close()
	dial()
	select {
	case <-accepted:
	case err := <-refused:
		t.Fatalf("after the first closed, a new connection was refused: %v", err)
	}
}
