package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

const crashChildEnv = "MAILYARD_SQLITE_CRASH_CHILD"

var crashAccounts = []string{"c0", "c1", "c2", "c3"}

// crashChild delivers in a loop from several goroutines and prints
// "ack <account> <uid> <body>" for every delivery Deliver acknowledged,
// until the parent kills it.
func crashChild(dir string) {
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	pid := os.Getpid()
	var wg sync.WaitGroup
	// The full-text index writer at work too, so that some kills fall
	// between its commit in textindex.db and the marking in mail.db.
	go func() {
		for {
			n, err := s.IndexPendingText(ctx)
			if err != nil {
				fmt.Fprintln(os.Stderr, "index:", err)
				os.Exit(4)
			}
			if n == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				body := fmt.Sprintf("p%d-w%d-m%d", pid, w, i)
				rcpts := []store.Recipient{{Account: crashAccounts[0]}, {Account: crashAccounts[1+(w+i)%3]}}
				// Bodies of varying size so some writes are in flight long enough to be cut.
				// The token again after the (malformed) header, as body
				// text, for the full-text checks.
				full := body + "\n\n" + body + "\n" + strings.Repeat("x", (i%7)*20000)
				ds, err := s.Deliver(ctx, store.Delivery{Recipients: rcpts}, strings.NewReader(full))
				if err != nil {
					fmt.Fprintln(os.Stderr, "deliver:", err)
					os.Exit(3)
				}
				var b strings.Builder
				for _, d := range ds {
					fmt.Fprintf(&b, "ack %s %d %s %d\n", d.Account, d.UID, body, len(full))
				}
				mu.Lock()
				os.Stdout.WriteString(b.String())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

type ack struct {
	account string
	uid     uint32
	body    string
	size    int64
}

// TestCrashDeliveries kills a delivering process with SIGKILL several
// times; every acknowledged delivery must be there after a reopen,
// nothing twice, and Check must be clean after the reopen sweep.
func TestCrashDeliveries(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := t.TempDir()
	{
		s := openTest(t, dir, Options{})
		for _, a := range crashAccounts {
			mustAccount(t, s, a, store.Quota{})
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var acks []ack
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDeliveries$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			r := bufio.NewReader(out)
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					if err != io.EOF {
						t.Errorf("reading child output: %v", err)
					}
					return // a partial last line is not an acknowledgement
				}
				lines <- l
			}
		}()
		// Kill at a different point each round.
		want := 40 + 60*round
		got := 0
		timeout := time.After(60 * time.Second)
	wait:
		for got < want {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: child exited early", round)
				}
				acks = append(acks, parseAck(t, l))
				got++
			case <-timeout:
				break wait
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for l := range lines {
			acks = append(acks, parseAck(t, l))
		}
		cmd.Wait()
		if got == 0 {
			t.Fatalf("round %d: no delivery acknowledged", round)
		}
	}
	var logBuf bytes.Buffer
	s := openTest(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	ctx := context.Background()
	assertEmptyTmp(t, dir)
	t.Logf("reopen: %s", strings.TrimSpace(logBuf.String()))
	seen := map[string]bool{}
	for _, a := range acks {
		key := a.account + " " + a.body
		if seen[key] {
			t.Fatalf("%s acknowledged twice", key)
		}
		seen[key] = true
		msgs, err := s.ListMessages(ctx, a.account, "INBOX", store.UIDSet{{Start: a.uid, Stop: a.uid}})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("acknowledged %+v missing after crash: %v", a, err)
		}
		if msgs[0].Size != a.size {
			t.Fatalf("%+v has size %d", a, msgs[0].Size)
		}
		rc, err := s.OpenBody(ctx, a.account, "INBOX", a.uid)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := bufio.NewReader(rc).ReadString('\n')
		rc.Close()
		if first != a.body+"\n" {
			t.Fatalf("UID %d of %s holds %q, acknowledged %q", a.uid, a.account, first, a.body)
		}
	}
	// No duplicates: every stored message has a distinct body per account.
	for _, acct := range crashAccounts {
		msgs, err := s.ListMessages(ctx, acct, "INBOX", nil)
		if err != nil {
			t.Fatal(err)
		}
		bodies := map[string]uint32{}
		for _, m := range msgs {
			rc, err := s.OpenBody(ctx, acct, "INBOX", m.UID)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := bufio.NewReader(rc).ReadString('\n')
			rc.Close()
			if u, dup := bodies[first]; dup {
				t.Fatalf("%s: %q stored twice (UIDs %d and %d)", acct, first, u, m.UID)
			}
			bodies[first] = m.UID
		}
	}
	if p := problems(t, s); len(p) != 0 {
		t.Fatalf("Check after crash and reopen: %+v", p)
	}
	// Full-text search finds every acknowledged message, before the
	// index is complete and after (both files as the kills left them,
	// reconciled at the reopen).
	found := func(when string) {
		t.Helper()
		for _, a := range acks {
			hits, err := s.SearchText(ctx, a.account, "INBOX", []store.TextTerm{{Field: store.TextAll, Value: a.body}}, store.UIDSet{{Start: a.uid, Stop: a.uid}})
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) != 1 {
				t.Fatalf("%s: %+v not found by its text", when, a)
			}
		}
	}
	found("after the reopen")
	if _, err := s.IndexPendingText(ctx); err != nil {
		t.Fatal(err)
	}
	found("indexed")
	ftsIntact(t, s)
	t.Logf("%d acknowledged deliveries survived 4 SIGKILLs", len(acks))
}

func parseAck(t *testing.T, l string) ack {
	t.Helper()
	f := strings.Fields(l)
	if len(f) != 5 || f[0] != "ack" {
		t.Fatalf("bad child line %q", l)
	}
	uid, err1 := strconv.ParseUint(f[2], 10, 32)
	size, err2 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("bad child line %q", l)
	}
	return ack{account: f[1], uid: uint32(uid), body: f[3], size: size}
}
