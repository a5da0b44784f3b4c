package testpeer

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePortBelowEphemeral: ports come from below the kernel's
// ephemeral range (where port 0 and outgoing connections take theirs),
// are never handed out twice, and can be bound.
func TestFreePortBelowEphemeral(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 50 {
		p := FreePort(t)
		if low > 11000 && (p < 10000 || p >= low) {
			t.Fatalf("port %d outside 10000-%d", p, low-1)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	p := FreePort(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
