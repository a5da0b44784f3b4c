package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/internal/testclock"
	"github.com/mailyard/mailyard/migration"
)

func TestTrackerRatesAndETA(t *testing.T) {
	clk := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tr := newTracker(clk.Now)
	tr.Start(migration.Run{ID: 7, Mailboxes: 4})

	r, ended, total := tr.overall()
	assert.Equal(t, 0, ended)
	assert.Equal(t, 4, total)
	assert.Less(t, r.eta, time.Duration(0), "no estimate before anything started")

	tr.Mailbox(migration.RunMailbox{Target: "a@example.com", Status: migration.RunMailboxRunning})
	tr.Mailbox(migration.RunMailbox{Target: "b@example.com", Status: migration.RunMailboxRunning})
	clk.Add(10 * time.Second)
	tr.Progress(migration.Progress{Target: "a@example.com", Folder: "INBOX", DoneMessages: 100, DoneBytes: 1000, TotalMessages: 200, TotalBytes: 2000})
	tr.Progress(migration.Progress{Target: "b@example.com", DoneMessages: 0, TotalMessages: 50, TotalBytes: 1000})
	tr.Progress(migration.Progress{Target: "unknown@example.com", DoneMessages: 99}) // not in the run: ignored

	mbs := tr.mailboxes()
	require.Len(t, mbs, 2)
	a := mbs[0]
	assert.Equal(t, "a@example.com", a.target)
	assert.Equal(t, "INBOX", a.folder)
	assert.InDelta(t, 10.0, a.msgsPerSec, 1e-9)
	assert.InDelta(t, 100.0, a.bytesPerS, 1e-9)
	assert.Equal(t, 10*time.Second, a.eta, "1000 bytes left at 100 B/s")
	assert.Less(t, mbs[1].eta, time.Duration(0), "nothing copied yet: no estimate")

	r, _, _ = tr.overall()
	assert.Equal(t, int64(100), r.doneMsgs)
	// Two of four mailboxes started, 3000 bytes known: about 6000 in all.
	assert.Equal(t, int64(6000), r.totalBytes)
	assert.Equal(t, int64(500), r.totalMsgs)
	assert.Equal(t, 50*time.Second, r.eta)

	assert.True(t, tr.Mailbox(migration.RunMailbox{Target: "a@example.com", Status: migration.RunMailboxOK}))
	assert.True(t, tr.Mailbox(migration.RunMailbox{Target: "c@example.com", Status: migration.RunMailboxDisabled}))
	assert.True(t, tr.Mailbox(migration.RunMailbox{Target: "d@example.com", Status: migration.RunMailboxError}))
	r, ended, _ = tr.overall()
	assert.Equal(t, 3, ended)
	assert.Equal(t, int64(100), r.doneMsgs, "an ended mailbox keeps what it copied")
	assert.Len(t, tr.mailboxes(), 1)
	line := tr.overallLine()
	assert.True(t, strings.HasPrefix(line, "3/4 mailboxes, 100/"), line)
	assert.Contains(t, line, "msg/s")
	assert.Contains(t, line, "ETA")
}

func TestMailboxLine(t *testing.T) {
	assert.Equal(t, "a@example.com: ok (kept the collector's settings): copied 3 messages",
		mailboxLine(migration.RunMailbox{Target: "a@example.com", Status: migration.RunMailboxOK, KeptSettings: true, Message: "copied 3 messages"}))
	// A rerun after a settings error, with corrected settings but no
	// --force-update, says what it did not use and how to use it.
	assert.Equal(t, "a@example.com: error (kept the collector's settings; the host, password given differ from the stored ones and were not used: rerun with --force-update to use them): auth: login refused",
		mailboxLine(migration.RunMailbox{Target: "a@example.com", Status: migration.RunMailboxError, KeptSettings: true, IgnoredSettings: []string{"host", "password"},
			Class: migration.ErrClassAuth, Error: "login refused"}))
	assert.Equal(t, "b@example.com: error: auth: LOGIN failed",
		mailboxLine(migration.RunMailbox{Target: "b@example.com", Status: migration.RunMailboxError, Class: migration.ErrClassAuth, Error: "LOGIN failed"}))
}

func TestLineDisplay(t *testing.T) {
	clk := testclock.New(time.Now())
	tr := newTracker(clk.Now)
	tr.Start(migration.Run{ID: 1, Mailboxes: 1})
	var out lockedBuffer
	d := newLineDisplay(tr, &out, time.Hour)
	tr.Mailbox(migration.RunMailbox{Target: "a@example.com", Status: migration.RunMailboxRunning})
	rm := migration.RunMailbox{Target: "a@example.com", Status: migration.RunMailboxOK, Message: "copied 0 messages"}
	tr.Mailbox(rm)
	d.mailboxEnded(rm)
	d.stop()
	assert.Equal(t, "[1/1] a@example.com: ok: copied 0 messages\nprogress: 1/1 mailboxes, 0/0 msgs, 0 B/0 B, 0 msg/s, 0 B/s, ETA --\n", out.String())
}

func TestBarDisplay(t *testing.T) {
	tr := newTracker(time.Now)
	tr.Start(migration.Run{ID: 1, Mailboxes: 2})
	var out lockedBuffer
	d := newBarDisplay(tr, &out)
	tr.Mailbox(migration.RunMailbox{Target: "a@example.com", Status: migration.RunMailboxRunning})
	tr.Progress(migration.Progress{Target: "a@example.com", Folder: "Архив", DoneMessages: 1, DoneBytes: 10, TotalMessages: 2, TotalBytes: 20})
	d.update()
	rm := migration.RunMailbox{Target: "a@example.com", Status: migration.RunMailboxOK}
	tr.Mailbox(rm)
	d.mailboxEnded(rm)
	d.stop()
	s := out.String()
	assert.Contains(t, s, "all mailboxes")
	assert.Contains(t, s, "a@example.com: ok\n", "the ended mailbox's line")
	assert.Contains(t, s, "1/2 mailboxes")
}

func TestSourceTextIsNotSentToTheTerminal(t *testing.T) {
	// Error texts and folder names come from the source server; an
	// escape sequence in one must not reach the terminal.
	const evil = "NO \x1b]0;owned\x07bad \x1b[2Jthings\r\nmore"
	line := mailboxLine(migration.RunMailbox{Target: "a@example.com", Status: migration.RunMailboxError,
		Class: migration.ErrClassSource, Error: evil, Message: "copied\x1b[31m 1"})
	assert.NotContains(t, line, "\x1b")
	assert.NotContains(t, line, "\x07")
	assert.NotContains(t, line, "\n")
	assert.Contains(t, line, "things more")
	assert.NotContains(t, oneLine(evil), "\x1b")

	tr := newTracker(time.Now)
	tr.Start(migration.Run{ID: 1, Mailboxes: 1})
	var out lockedBuffer
	d := newBarDisplay(tr, &out)
	tr.Mailbox(migration.RunMailbox{Target: "a@example.com", Status: migration.RunMailboxRunning})
	tr.Progress(migration.Progress{Target: "a@example.com", Folder: "Inbox\x1b]0;owned\x07", DoneMessages: 1, DoneBytes: 10, TotalMessages: 2, TotalBytes: 20})
	d.update()
	d.stop()
	assert.NotContains(t, out.String(), "]0;owned\x07")
}
