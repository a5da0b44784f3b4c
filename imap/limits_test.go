package imap

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// refusedOrClosed checks that the server neither accepts an oversized
// command nor asks for its literal: it answers NO/BAD, hangs up, or (for a
// synchronizing literal it will not take) stays silent.
func refusedOrClosed(t *testing.T, r *raw, tag string) {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		l, err := r.r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) || isReset(err) {
				return // hung up or silent: fine
			}
			t.Fatalf("read: %v", err)
		}
		if strings.HasPrefix(l, tag+" OK") || strings.HasPrefix(l, "+") {
			t.Fatalf("oversized input accepted: %q", l)
		}
		if strings.HasPrefix(l, tag+" ") || strings.HasPrefix(l, "* BYE") {
			return
		}
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

func TestLineAndLiteralLimits(t *testing.T) {
	e := newEnv(t)
	// Before login: a 100 KiB command line.
	r := e.rawTLS()
	r.send("a LOGIN " + strings.Repeat("x", 100<<10) + " y\r\n")
	refusedOrClosed(t, r, "a")

	// Before login: a literal beyond 4 KiB is refused before it is read.
	r = e.rawTLS()
	r.send("b LOGIN {100000}\r\n")
	refusedOrClosed(t, r, "b")

	// After login: the same bounds hold.
	r = loggedIn(e)
	r.send("c SELECT " + strings.Repeat("x", 100<<10) + "\r\n")
	refusedOrClosed(t, r, "c")
	r = loggedIn(e)
	r.send("d CREATE {100000}\r\n")
	refusedOrClosed(t, r, "d")

	// APPEND beyond APPENDLIMIT: NO [TOOBIG] before any byte is read.
	e2 := newEnv(t, func(o *Options) { o.AppendLimit = 1000 })
	r = loggedIn(e2)
	r.expectStatus("APPEND INBOX {2000}", "NO [TOOBIG]")
	r.expectOK("NOOP")
	msgs, err := e2.st.ListMessages(context.Background(), e2.aliceID, "INBOX", nil)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("refused APPEND stored %d messages (%v)", len(msgs), err)
	}
}

func TestConnectionLimitPerClient(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxConnsPerIP = 2 })
	e.raw()
	e.raw()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "* BYE [UNAVAILABLE]") {
		t.Fatalf("third connection got %q", b)
	}
}

func TestShutdownSaysBye(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.tlsSrv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if l := r.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("got %q, want BYE", l)
	}
	if err := e.tlsSrv.Shutdown(ctx); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", e.tlsAddr, time.Second); err == nil {
		t.Fatal("listener still accepts after Shutdown")
	}
}
