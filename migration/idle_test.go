package migration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailyard/mailyard/internal/dovecottest"
	"github.com/mailyard/mailyard/internal/mailcorpus"
)

// waitStatus polls the collector's status until ok holds, failing the
// test after limit or if done reports that Collect returned.
func (e *syncEnv) waitStatus(ctx context.Context, done <-chan error, limit time.Duration, what string, ok func(MailboxStatus) bool) MailboxStatus {
	e.t.Helper()
	deadline := time.After(limit)
	for {
		st, err := e.m.Status(ctx, syncTarget)
		if err == nil && ok(st) {
			return st
		}
		select {
		case err := <-done:
			e.t.Fatalf("Collect returned early: %v", err)
		case <-deadline:
			e.t.Fatalf("%s: not within %s (status %+v)\n%s", what, limit, st, e.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestCollectIdle: with an hour between polls, a message appended to the
// source INBOX is copied within seconds, by an INBOX pass the IDLE
// connection asked for; a message in another folder waits for the poll.
func TestCollectIdle(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	e.load(smallCorpus(21))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.m.Collect(ctx, e.job(), time.Hour, nil) }()

	// The full pass, then the catch-up INBOX pass once IDLE is set up.
	st := e.waitStatus(ctx, done, 2*time.Minute, "first passes", func(st MailboxStatus) bool {
		return st.Passes >= 2 && st.State == StateOK
	})
	if !strings.HasPrefix(st.LastMessage, "INBOX (IDLE): ") {
		t.Errorf("second pass is not an INBOX pass: %q", st.LastMessage)
	}
	folders := len(st.Folders)
	inbox := len(e.targetItems("INBOX"))
	others := len(e.targetItems("Archive"))

	c := e.source()
	if err := c.Create("Archive", nil).Wait(); err != nil && !strings.Contains(err.Error(), "exists") {
		t.Fatal(err)
	}
	body := "From: a@old.example\r\nTo: alice@example.com\r\nSubject: instant\r\nMessage-ID: <idle-%s@old.example>\r\n\r\nnew mail\r\n"
	if err := mailcorpus.Append(c, mailcorpus.Message{Folder: "Archive", Body: []byte(strings.Replace(body, "%s", "archive", 1))}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := mailcorpus.Append(c, mailcorpus.Message{Folder: "INBOX", Flags: []imap.Flag{imap.FlagFlagged}, Body: []byte(strings.Replace(body, "%s", "inbox", 1))}); err != nil {
		t.Fatal(err)
	}
	// Generous for a loaded machine; the poll interval is an hour.
	e.waitStatus(ctx, done, 60*time.Second, "IDLE copy", func(MailboxStatus) bool {
		return len(e.targetItems("INBOX")) == inbox+1
	})
	t.Logf("new INBOX message copied %v after its APPEND", time.Since(start).Round(time.Millisecond))
	// The copy was an INBOX pass (its summary is logged when it ends;
	// another may run after it: a source may announce the count twice).
	st = e.waitStatus(ctx, done, 60*time.Second, "INBOX pass summary", func(MailboxStatus) bool {
		return strings.Contains(e.logs.String(), "INBOX (IDLE): copied 1 messages")
	})
	if len(st.Folders) != folders {
		t.Errorf("an INBOX pass changed the folder list: %d -> %d", folders, len(st.Folders))
	}
	// Archive is not in the INBOX pass: it waits for the hourly poll.
	if n := len(e.targetItems("Archive")); n != others {
		t.Errorf("Archive copied by an INBOX pass: %d -> %d", others, n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Collect: %v", err)
	}
}

// TestCollectNoIdle: with Options.NoIdle every pass is a full one (with
// IDLE, the pass after the first is the INBOX catch-up).
func TestCollectNoIdle(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, func(o *Options) { o.NoIdle = true })
	e.load(smallCorpus(22))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.m.Collect(ctx, e.job(), 30*time.Millisecond, nil) }()
	// A pass is counted in the stored status just before its summary is
	// logged, so wait for both.
	e.waitStatus(ctx, done, 2*time.Minute, "three passes", func(st MailboxStatus) bool {
		return st.Passes >= 3 && strings.Count(e.logs.String(), "migration pass done") >= 3
	})
	if strings.Contains(e.logs.String(), "INBOX (IDLE)") {
		t.Errorf("passes with NoIdle:\n%s", e.logs.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Collect: %v", err)
	}
}
