package migration

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailyard/mailyard/internal/dovecottest"
	"github.com/mailyard/mailyard/internal/mailcorpus"
	"github.com/mailyard/mailyard/store"
)

// recordingProxy forwards to a source and keeps what the client sent.
func recordingProxy(t *testing.T, backend string, sent *syncBuffer) int {
	return listenLoopback(t, func(c net.Conn) {
		go forward(c, backend, func(b io.Writer, c io.Reader) { io.Copy(io.MultiWriter(b, sent), c) })
	}).Port
}

// fetchLines returns the UID FETCH commands in sent.
func fetchLines(sent string) []string {
	var out []string
	for line := range strings.SplitSeq(sent, "\r\n") {
		if strings.Contains(line, "UID FETCH") {
			out = append(out, line)
		}
	}
	return out
}

// TestCondStoreFlagSync: against Dovecot (which offers CONDSTORE) a later
// pass asks only for the flags changed since the checkpointed
// HIGHESTMODSEQ, carries the change over, and reads nothing else; a
// changed UIDVALIDITY falls back to reading everything.
func TestCondStoreFlagSync(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	e.load(smallCorpus(31))
	sent := &syncBuffer{}
	job := e.job()
	job.Source.Port = recordingProxy(t, e.dove.Addr, sent)
	ctx := context.Background()
	if _, err := e.m.Sync(ctx, job, nil); err != nil {
		t.Fatal(err)
	}
	var cp folderRecord
	if _, err := getJSON(ctx, e.st, nsFolder, folderKey(syncTarget, "INBOX"), &cp); err != nil {
		t.Fatal(err)
	}
	if cp.HighestModSeq == 0 {
		t.Fatalf("no HIGHESTMODSEQ checkpointed: %+v", cp)
	}

	// Flag a message on the source, and add a new one.
	c := e.source()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var first imap.UIDSet
	first.AddNum(1)
	if err := c.Store(first, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"$Carried"}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := mailcorpus.Append(c, mailcorpus.Message{Folder: "INBOX", Body: []byte("From: a@old.example\r\nSubject: new\r\nMessage-ID: <cs@old.example>\r\n\r\nnew\r\n")}); err != nil {
		t.Fatal(err)
	}
	before := len(e.targetItems(store.Inbox))

	sent.mu.Lock()
	sent.b.Reset()
	sent.mu.Unlock()
	st, err := e.m.Sync(ctx, job, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.LastMessage, "copied 1 messages") || !strings.Contains(st.LastMessage, "updated flags of 1") {
		t.Errorf("second pass: %q", st.LastMessage)
	}
	if n := len(e.targetItems(store.Inbox)); n != before+1 {
		t.Errorf("target INBOX %d -> %d messages", before, n)
	}
	flagged := 0
	for _, it := range e.targetItems(store.Inbox) {
		if strings.Contains(it.flags, "$carried") || strings.Contains(it.flags, "$Carried") {
			flagged++
		}
	}
	if flagged != 1 {
		t.Errorf("%d target messages carry the source's new keyword, want 1", flagged)
	}
	changedSince := 0
	for _, l := range fetchLines(sent.String()) {
		if strings.Contains(l, "UID FETCH 1:* ") {
			t.Errorf("a full metadata read in a CONDSTORE pass: %q", l)
		}
		if strings.Contains(l, "CHANGEDSINCE") {
			changedSince++
		}
	}
	if changedSince == 0 {
		t.Errorf("no FETCH with CHANGEDSINCE:\n%s", strings.Join(fetchLines(sent.String()), "\n"))
	}

	// A checkpoint under another UIDVALIDITY (as after the source
	// recreated the folder) is read in full, not by CHANGEDSINCE.
	if err := e.st.UpdateRecords(ctx, func(tx store.RecordTx) error {
		var cp folderRecord
		if _, err := txGetJSON(tx, nsFolder, folderKey(syncTarget, "INBOX"), &cp); err != nil {
			return err
		}
		cp.UIDValidity++
		return txPutJSON(tx, nsFolder, folderKey(syncTarget, "INBOX"), cp)
	}); err != nil {
		t.Fatal(err)
	}
	sent.mu.Lock()
	sent.b.Reset()
	sent.mu.Unlock()
	if _, err := e.m.Sync(ctx, job, nil); err != nil {
		t.Fatal(err)
	}
	full := 0
	for _, l := range fetchLines(sent.String()) {
		if strings.Contains(l, "UID FETCH 1:* ") {
			full++
		}
	}
	if full == 0 {
		t.Errorf("UIDVALIDITY changed but no full read:\n%s", strings.Join(fetchLines(sent.String()), "\n"))
	}
	if n := len(e.targetItems(store.Inbox)); n != before+1 {
		t.Errorf("re-paired INBOX has %d messages, want %d (no duplicates)", n, before+1)
	}
}
