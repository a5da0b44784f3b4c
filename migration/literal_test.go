package migration

import (
	"bufio"
	"context"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/mailyard/mailyard/internal/dovecottest"
	"github.com/mailyard/mailyard/internal/mailcorpus"
)

// cutProxy forwards to Dovecot and, on the first connection whose
// answer to the body FETCH has a literal of more than 2×cutAfter octets,
// forwards cutAfter octets of that literal and then drops both sides: a
// source connection lost in the middle of a message. Later connections
// are forwarded whole.
type cutProxy struct {
	dove     string
	cutAfter int64
	cut      atomic.Bool
}

// bodyLiteral matches the line that opens a BODY[] literal (not the
// BODY[]<0> prefix fetch, not the header fields).
var bodyLiteral = regexp.MustCompile(`BODY\[\] \{(\d+)\}\r\n$`)

func (p *cutProxy) serve(c net.Conn) {
	defer c.Close()
	d, err := net.Dial("tcp", p.dove)
	if err != nil {
		return
	}
	defer d.Close()
	go func() {
		io.Copy(d, c)
		d.(*net.TCPConn).CloseWrite()
	}()
	r := bufio.NewReader(d)
	for {
		line, err := r.ReadBytes('\n')
		if _, werr := c.Write(line); err != nil || werr != nil {
			return
		}
		m := bodyLiteral.FindSubmatch(line)
		if m == nil {
			continue
		}
		if n, _ := strconv.ParseInt(string(m[1]), 10, 64); n > 2*p.cutAfter && p.cut.CompareAndSwap(false, true) {
			io.CopyN(c, r, p.cutAfter)
			return // both connections close
		}
	}
}

// TestSyncSourceCutMidLiteral: a source connection lost in the middle
// of a message body fails the pass as a connection error, stores no
// truncated copy, holds no host slot, and the next pass copies the rest
// exactly once. Under -race it is also the regression test of the data
// race between go-imap's reader goroutine, released at the literal's
// early end, and the discard of the literal's unread rest by
// FetchMessageData.Next / FetchCommand.Close (see literalGuard): both
// the held path (a body read into memory by fetchBodies) and the
// streamed path (a body read by store.Append) are cut.
func TestSyncSourceCutMidLiteral(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
	}{
		{"held", 256 << 10},
		{"streamed", maxHeldLiteral + 512<<10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newSyncEnv(t, dovecottest.Options{}, func(o *Options) { o.FolderParallel = 1 })
			e.load(mailcorpus.Generate(mailcorpus.Options{Seed: 31, PerFolder: 4, LargeSizes: []int{tc.size},
				Folders: []string{"INBOX"}}))
			p := &cutProxy{dove: e.dove.Addr, cutAfter: 64 << 10}
			addr := listenLoopback(t, func(c net.Conn) { go p.serve(c) })
			job := e.job()
			job.Source.Port = addr.Port

			_, err := e.m.Sync(context.Background(), job, nil)
			if !p.cut.Load() {
				t.Fatalf("the proxy never cut a body literal (err %v)", err)
			}
			if ClassOf(err) != ErrClassConnection {
				t.Fatalf("err %v (class %q), want connection", err, ClassOf(err))
			}
			if n := e.m.hosts.inUse("127.0.0.1"); n != 0 {
				t.Errorf("%d host slots held after the cut", n)
			}
			src := sourceItems(t, e.source())["INBOX"]
			have := map[item]bool{}
			for _, it := range src {
				have[it] = true
			}
			for _, it := range e.targetItems("INBOX") {
				if !have[it] {
					t.Errorf("target holds %v (%d octets), which is no source message: a truncated copy", it, it.size)
				}
			}

			if _, err := e.m.Sync(context.Background(), e.job(), nil); err != nil {
				t.Fatalf("pass after the cut: %v", err)
			}
			e.checkTarget(t, map[string][]item{"INBOX": src})
		})
	}
}
