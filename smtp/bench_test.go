package smtp

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/store"
)

// discardDeliverer reads and drops bodies: the benchmark measures the SMTP
// side, not a store.
type discardDeliverer struct{}

func (discardDeliverer) Deliver(ctx context.Context, d store.Delivery, body io.Reader) ([]store.Delivered, error) {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return nil, err
	}
	return []store.Delivered{{Recipient: d.Recipients[0], UID: 1}}, nil
}

// BenchmarkDeliverSession sends b.N 4 KB messages over one connection.
func BenchmarkDeliverSession(b *testing.B) {
	ts := startServer(b, Options{Deliverer: discardDeliverer{}, Logger: quietLogger()})
	c, err := gosmtp.Dial(ts.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	line := strings.Repeat("x", 76) + "\r\n"
	msg := "From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: bench\r\n\r\n" +
		strings.Repeat(line, (4096-64)/len(line))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := send(c, "sender@remote.test", []string{"alice@example.test"}, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleConnMemory opens 1000 connections that said EHLO and then
// stay idle, and reports the server's heap and stack growth per connection
// (client sockets, in the same process, are included: an upper bound).
func BenchmarkIdleConnMemory(b *testing.B) {
	// One measurement however large b.N is: repeated runs would reuse
	// memory freed by the previous one and under-report.
	var perConn float64
	for i := 0; b.Loop(); i++ {
		if i == 0 {
			perConn = idleConnMemory(b, 1000)
		}
	}
	b.ReportMetric(perConn, "bytes/conn")
}

// TestIdleConnMemory keeps the per-connection memory under the 64 KiB
// budget (ARCHITECTURE.md: bounded memory per connection).
func TestIdleConnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens hundreds of connections")
	}
	perConn := idleConnMemory(t, 300)
	t.Logf("%.0f bytes per idle connection", perConn)
	if perConn > 64<<10 {
		t.Errorf("%.0f bytes per idle connection, budget 64 KiB", perConn)
	}
}

func idleConnMemory(tb testing.TB, n int) float64 {
	ts := startServer(tb, Options{Deliverer: discardDeliverer{}, Logger: quietLogger(), MaxConnsPerIP: -1, MaxConns: -1})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 512)
	for range n {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			tb.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.WriteString(c, "EHLO client.test\r\n"); err != nil {
			tb.Fatal(err)
		}
		if err := readReplyEnd(c, buf); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Live heap plus goroutine stacks.
	grow := float64(after.HeapAlloc+after.StackInuse) - float64(before.HeapAlloc+before.StackInuse)
	if open := testutilOpen(ts.Server); open != n {
		tb.Fatalf("%d connections open, want %d", open, n)
	}
	return grow / float64(n)
}

// readReplyEnd reads until the last line of a multi-line reply ("250 ").
func readReplyEnd(c net.Conn, buf []byte) error {
	var got []byte
	for {
		k, err := c.Read(buf)
		if err != nil {
			return err
		}
		got = append(got, buf[:k]...)
		s := string(got)
		if i := strings.LastIndex(strings.TrimSuffix(s, "\r\n"), "\r\n"); strings.HasSuffix(s, "\r\n") && strings.HasPrefix(s[i+2:], "250 ") {
			return nil
		}
		if len(got) > 4096 {
			return fmt.Errorf("reply too long: %q", got)
		}
	}
}

func testutilOpen(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}
