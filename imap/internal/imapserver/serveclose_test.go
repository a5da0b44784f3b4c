package imapserver

import (
	"net"
	"sync"
	"testing"
)

// TestServeCloseConcurrently: a Close that runs while Serve starts must
// neither race with it (the race detector flagged the WaitGroup: Add
// after the mutex, concurrently with Close's Wait) nor leave Serve
// running: Serve returns, either refused or with its listener closed.
func TestServeCloseConcurrently(t *testing.T) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := New(&Options{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = s.Serve(ln) }()
		go func() { defer wg.Done(); _ = s.Close() }()
		wg.Wait()
		ln.Close()
	}
}
