package imap

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
)

// benchMessage is message n of the bench/imapload mix: mostly text/plain,
// some multipart/alternative, some with a base64 attachment.
func benchMessage(n int) string {
	hdr := fmt.Sprintf("From: Sender %d <s%d@example.org>\r\nTo: alice@example.com\r\nSubject: message %d\r\n"+
		"Date: Mon, 2 Nov 2026 10:%02d:00 +0000\r\nMessage-ID: <m%d@example.org>\r\nMIME-Version: 1.0\r\n", n, n, n, n%60, n)
	line := strings.Repeat("lorem ipsum dolor sit amet ", 3) + "\r\n"
	switch {
	case n%20 < 12:
		return hdr + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat(line, 20+n%60)
	case n%20 < 17:
		return hdr + "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n" +
			strings.Repeat(line, 40) + "--b\r\nContent-Type: text/html\r\n\r\n<p>" + strings.Repeat(line, 40) + "</p>\r\n--b--\r\n"
	default:
		att := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQyNDI0MjQyNDI0MjQyNDI0MjQy\r\n", 600)
		return hdr + "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\n" +
			strings.Repeat(line, 10) + "--m\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" +
			"Content-Disposition: attachment; filename=a.bin\r\n\r\n" + att + "--m--\r\n"
	}
}

func benchFetch(b *testing.B, items string) {
	e := newEnvIn(b, memDir(b), func(o *Options) { o.AllowInsecureAuth = true })
	for i := 1; i <= 100; i++ {
		e.deliver(e.aliceID, "INBOX", benchMessage(i))
	}
	r := e.raw()
	r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	r.expectOK("SELECT INBOX")
	b.ResetTimer()
	for b.Loop() {
		r.expectOK("FETCH 1:20 " + items)
	}
}

func BenchmarkFetchHeader(b *testing.B)        { benchFetch(b, "(BODY.PEEK[HEADER])") }
func BenchmarkFetchBodyStructure(b *testing.B) { benchFetch(b, "(BODYSTRUCTURE)") }
func BenchmarkFetchEnvelope(b *testing.B)      { benchFetch(b, "(ENVELOPE)") }
func BenchmarkFetchBody(b *testing.B)          { benchFetch(b, "(BODY.PEEK[])") }
func BenchmarkFetchPart(b *testing.B)          { benchFetch(b, "(BODY.PEEK[1] BINARY.PEEK[1])") }
func BenchmarkFetchMix(b *testing.B)           { benchFetch(b, "(UID ENVELOPE FLAGS BODY.PEEK[HEADER])") }

// fastAuth skips the password hash after the first successful login of a
// user, so that many sessions can be opened quickly.
type fastAuth struct {
	Authenticator
	mu    sync.Mutex
	known map[string]directory.User
}

func (a *fastAuth) Authenticate(ctx context.Context, login, pw string, p directory.Protocol) (directory.User, error) {
	a.mu.Lock()
	u, ok := a.known[login+"\x00"+pw]
	a.mu.Unlock()
	if ok {
		return u, nil
	}
	u, err := a.Authenticator.Authenticate(ctx, login, pw, p)
	if err == nil {
		a.mu.Lock()
		a.known[login+"\x00"+pw] = u
		a.mu.Unlock()
	}
	return u, err
}

// BenchmarkIdleSessions opens sessions that log in, select a 100-message
// INBOX and IDLE, and reports the server's heap and goroutines per session.
func BenchmarkIdleSessions(b *testing.B) { benchIdleSessions(b, false) }

// BenchmarkIdleSessionsCompressed: the same with COMPRESS=DEFLATE on
// (RFC 4978); the client's deflater and inflater are dropped once IDLE
// is on, so that the heap growth is still the server's.
func BenchmarkIdleSessionsCompressed(b *testing.B) { benchIdleSessions(b, true) }

// BenchmarkIdleSessionsNotify: the same with sessions that wait between
// commands with NOTIFY (RFC 5465) on for the selected mailbox and every
// other one, instead of IDLE: what a NOTIFY costs a session.
func BenchmarkIdleSessionsNotify(b *testing.B) { benchIdleSessionsMode(b, false, true) }

func benchIdleSessions(b *testing.B, compress bool) { benchIdleSessionsMode(b, compress, false) }

func benchIdleSessionsMode(b *testing.B, compress, notify bool) {
	const n = 500
	e := newEnvIn(b, memDir(b), func(o *Options) {
		o.Auth = &fastAuth{Authenticator: o.Auth, known: map[string]directory.User{}}
		o.AllowInsecureAuth = true
		o.MaxConns, o.MaxConnsPerIP = 2*n, 2*n
	})
	for i := 1; i <= 100; i++ {
		e.deliver(e.aliceID, "INBOX", benchMessage(i))
		e.deliver(e.bobID, "INBOX", benchMessage(i))
	}
	for b.Loop() {
		before, g0 := heapNow()
		stack0 := stackNow()
		conns := make([]net.Conn, 0, n)
		for i := range n {
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				b.Fatal(err)
			}
			user, pw := alice, alicePW
			if i%2 == 1 {
				user, pw = bob, bobPW
			}
			// A throwaway reader: the client side keeps only the conn, so
			// that the heap growth is the server's.
			br := bufio.NewReaderSize(c, 512)
			if compress {
				fmt.Fprintf(c, "a LOGIN %s \"%s\"\r\nz COMPRESS DEFLATE\r\n", user, pw)
				for {
					l, err := br.ReadString('\n')
					if err != nil || strings.HasPrefix(l, "a NO") || strings.HasPrefix(l, "z NO") || strings.HasPrefix(l, "z BAD") {
						b.Fatalf("session %d: %q %v", i, l, err)
					}
					if strings.HasPrefix(l, "z OK") {
						break
					}
				}
				var out bytes.Buffer
				w, _ := flate.NewWriter(&out, flate.BestSpeed)
				io.WriteString(w, "b SELECT INBOX\r\nc IDLE\r\n")
				w.Flush()
				c.Write(out.Bytes())
				rest, _ := br.Peek(br.Buffered())
				br = bufio.NewReaderSize(flate.NewReader(io.MultiReader(bytes.NewReader(rest), c)), 512)
			} else if notify {
				fmt.Fprintf(c, "a LOGIN %s \"%s\"\r\nb SELECT INBOX\r\n"+
					"c NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge MailboxName))\r\n", user, pw)
			} else {
				fmt.Fprintf(c, "a LOGIN %s \"%s\"\r\nb SELECT INBOX\r\nc IDLE\r\n", user, pw)
			}
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					b.Fatal(err)
				}
				if notify && strings.HasPrefix(l, "c OK") {
					break
				}
				if strings.HasPrefix(l, "a NO") || strings.HasPrefix(l, "b NO") || strings.HasPrefix(l, "c ") {
					b.Fatalf("session %d: %q", i, l)
				}
				if strings.HasPrefix(l, "+ ") {
					break
				}
			}
			conns = append(conns, c)
		}
		time.Sleep(200 * time.Millisecond)
		after, g1 := heapNow()
		if f := os.Getenv("IDLE_HEAP_PROFILE"); f != "" {
			if w, err := os.Create(f); err == nil {
				_ = pprof.WriteHeapProfile(w)
				w.Close()
			}
		}
		b.ReportMetric(float64(after-before)/n/1024, "KiB/session")
		b.ReportMetric(float64(g1-g0)/n, "goroutines/session")
		b.ReportMetric(float64(stackNow()-stack0)/n/1024, "stack-KiB/session")
		for _, c := range conns {
			_ = c.Close()
		}
		// Let the server's side of the closed sessions end before the
		// next round measures its baseline.
		for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > g0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func heapNow() (uint64, int) {
	for range 3 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse, runtime.NumGoroutine()
}

func stackNow() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.StackInuse
}

// benchCommand measures one command on a selected 100-message INBOX, the
// probe of bench/imapload -probe in-process (issue 16): run with
// -cpuprofile to see where a command's time goes.
// It reports the store look-ups per loop: Mailbox, Changes and
// ListMessages calls.
func benchCommand(b *testing.B, cmds ...string) {
	var cb *changesCounting
	e := newEnvIn(b, memDir(b), func(o *Options) {
		o.AllowInsecureAuth = true
		if cb == nil {
			cb = &changesCounting{listCounting: listCounting{Backend: o.Backend}}
		}
		o.Backend = cb
	})
	for i := 1; i <= 100; i++ {
		e.deliver(e.aliceID, "INBOX", benchMessage(i))
	}
	r := e.raw()
	r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	r.expectOK(`CREATE Other`)
	r.expectOK("SELECT INBOX")
	m0, c0, l0 := cb.mailboxes.Load(), cb.changes.Load(), cb.lists.Load()
	b.ResetTimer()
	for b.Loop() {
		for _, c := range cmds {
			r.expectOK(c)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(cb.mailboxes.Load()-m0)/n, "mailbox-lookups/op")
	b.ReportMetric(float64(cb.changes.Load()-c0)/n, "change-reads/op")
	b.ReportMetric(float64(cb.lists.Load()-l0)/n, "listings/op")
}

func BenchmarkCommandNoop(b *testing.B)   { benchCommand(b, "NOOP") }
func BenchmarkCommandSelect(b *testing.B) { benchCommand(b, "SELECT INBOX") }
func BenchmarkCommandList(b *testing.B)   { benchCommand(b, `LIST "" "*"`) }
func BenchmarkCommandStatus(b *testing.B) {
	benchCommand(b, "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
}
func BenchmarkCommandFetchFlags(b *testing.B) { benchCommand(b, "FETCH 1:20 (UID FLAGS)") }
func BenchmarkCommandSearch(b *testing.B)     { benchCommand(b, "UID SEARCH UNSEEN") }
func BenchmarkCommandStore(b *testing.B) {
	benchCommand(b, `STORE 7 +FLAGS (\Flagged)`, `STORE 7 -FLAGS (\Flagged)`)
}
