package testpeer

import (
	"net"
	"testing"
)

// SilentDNS starts a DNS server on a loopback UDP port that reads every
// query and never answers, the peer a resolver timeout is tested
// against, and returns its address; the test's cleanup stops it.
func SilentDNS(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}
