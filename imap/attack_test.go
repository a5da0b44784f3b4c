package imap

import (
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Probes from an attacker's pass over NOTIFY and COMPRESS that the
// server held; kept so that it goes on holding them.

// TestCompressBombRefused: a few hundred KiB of deflate that inflate to
// a 256 MiB command line get BAD, then BYE and the connection closed
// once the skip limit is passed: the server neither holds the line nor
// inflates the rest.
func TestCompressBombRefused(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.compress("")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sent := make(chan int, 1)
	go func() {
		chunk := strings.Repeat("A", 1<<20)
		n := 0
		if _, err := r.conn.Write([]byte("b NOOP ")); err == nil {
			for ; n < 256; n++ {
				if _, err := r.conn.Write([]byte(chunk)); err != nil {
					break
				}
			}
		}
		sent <- n
	}()
	_ = r.conn.SetReadDeadline(time.Now().Add(time.Minute))
	var lines []string
	for {
		l, err := r.r.ReadString('\n')
		if err != nil {
			break
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
	}
	runtime.ReadMemStats(&after)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "b BAD ") || !strings.HasPrefix(lines[1], "* BYE ") {
		t.Fatalf("endless compressed line: got %q, want BAD then BYE and the end", lines)
	}
	r.conn.Close()
	t.Logf("client wrote %d MiB of inflated text before the server closed", <-sent)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("the endless line cost %d MiB of allocations", alloc>>20)
	}
}

// TestNotifySlowReaderBlocksNobody: a session with NOTIFY whose client
// never reads (a 4 KiB receive window, 40 notifications with 72 KiB
// bodies) does not hold up the deliveries, the session that makes the
// changes or any other, and its connection still works.
func TestNotifySlowReaderBlocksNobody(t *testing.T) {
	e := newEnvIn(t, memDir(t))
	a := loggedIn(e)
	if tc, ok := a.conn.(*tls.Conn); ok {
		if c, ok := tc.NetConn().(*net.TCPConn); ok {
			_ = c.SetReadBuffer(4096)
		}
	}
	a.expectOK("SELECT INBOX")
	a.expectOK("NOTIFY SET (selected (MessageNew (BODY.PEEK[]) MessageExpunge FlagChange)) " +
		"(personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))")
	b := loggedIn(e)
	b.expectOK("SELECT INBOX")
	big := "From: x@example.org\r\nSubject: storm\r\n\r\n" + strings.Repeat("storm of notifications\r\n", 3000)
	start := time.Now()
	for i := range 40 {
		e.deliver(e.aliceID, "", big)
		if i%10 != 0 {
			continue
		}
		_ = b.conn.SetDeadline(time.Now().Add(20 * time.Second))
		b.expectOK(`STORE 1:* +FLAGS (\Seen)`)
		b.expectOK(fmt.Sprintf("CREATE storm%d", i))
		b.expectOK(fmt.Sprintf("SUBSCRIBE storm%d", i))
	}
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("40 deliveries and 12 commands took %v beside a client that does not read", d)
	}
	c := loggedIn(e)
	_ = c.conn.SetDeadline(time.Now().Add(20 * time.Second))
	mustHave(t, c.expectOK("STATUS INBOX (MESSAGES)"), "MESSAGES 40")
	// The slow reader's connection is alive: what was queued for it
	// arrives (through its 4 KiB window, slowly, so only a start).
	_ = a.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if l := a.line(); !strings.HasPrefix(l, "* ") {
		t.Fatalf("slow reader: got %q, want its notifications", l)
	}
}
