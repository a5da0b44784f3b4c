package imap

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// listCounting is a Backend that counts its message listings, with the
// change numbers of the store it wraps.
type listCounting struct {
	Backend
	lists atomic.Int64
}

func (b *listCounting) ListMessages(ctx context.Context, account, mailbox string, uids store.UIDSet) ([]store.Message, error) {
	b.lists.Add(1)
	return b.Backend.ListMessages(ctx, account, mailbox, uids)
}

func (b *listCounting) ChangeCount(account, mailbox string) uint64 {
	return b.Backend.(ChangeCounter).ChangeCount(account, mailbox)
}

func (b *listCounting) OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (store.Message, io.ReadCloser, error) {
	return b.Backend.(MessageOpener).OpenMessage(ctx, account, mailbox, uid)
}

func (b *listCounting) ListChangeCount(account string) uint64 {
	return b.Backend.(ListChangeCounter).ListChangeCount(account)
}

// TestReadsFromCurrentView: FETCH of UID, FLAGS, ENVELOPE and header
// sections and SEARCH by flags are answered without a store listing
// while nothing changed since the poll, and answer another session's
// change of flags, expunge or new message as soon as it committed, as
// the store does.
func TestReadsFromCurrentView(t *testing.T) {
	var cb *listCounting
	e := newEnv(t, func(o *Options) {
		o.AllowInsecureAuth = true
		if cb == nil {
			cb = &listCounting{Backend: o.Backend}
		}
		o.Backend = cb
	})
	for range 3 {
		e.deliver(e.aliceID, "INBOX", simpleMsg)
	}
	a, b := e.raw(), e.raw()
	for _, r := range []*raw{a, b} {
		r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
		r.expectOK("SELECT INBOX")
	}
	has := func(lines []string, want string) bool {
		for _, l := range lines {
			if strings.Contains(l, want) {
				return true
			}
		}
		return false
	}
	// Nothing changed since the SELECT: no listing.
	n := cb.lists.Load()
	got := a.expectOK("FETCH 1:3 (UID FLAGS ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	if !has(got, "* 3 FETCH (UID 3 FLAGS (") || !has(got, ") ENVELOPE (") || !has(got, `BODY[HEADER.FIELDS ("SUBJECT")] {24}`) {
		t.Fatalf("FETCH: %q", got)
	}
	a.expectOK("UID SEARCH UNSEEN")
	if d := cb.lists.Load() - n; d != 0 {
		t.Errorf("FETCH and SEARCH of a current view listed the mailbox %d times", d)
	}

	// Another session's STORE: the next FETCH and SEARCH say so.
	b.expectOK(`STORE 2 +FLAGS (\Flagged)`)
	if got := a.expectOK("FETCH 2 (FLAGS)"); !has(got, `* 2 FETCH (FLAGS (\Flagged`) {
		t.Fatalf("FETCH after another session's STORE: %q", got)
	}
	b.expectOK(`STORE 3 +FLAGS (\Flagged)`)
	if got := a.expectOK("SEARCH FLAGGED"); !has(got, "* SEARCH 2 3") {
		t.Fatalf("SEARCH after another session's STORE: %q", got)
	}
	// A FETCH with MODSEQ (CONDSTORE) or a whole body still reads the
	// store: the view keeps neither.
	n = cb.lists.Load()
	a.expectOK("FETCH 1 (UID RFC822.SIZE)")
	if cb.lists.Load() == n {
		t.Error("FETCH RFC822.SIZE did not list the message")
	}
	// One whole message: listed and opened in one look-up
	// (MessageOpener), not listed apart.
	n = cb.lists.Load()
	if got := a.expectOK("FETCH 2 (BODY.PEEK[])"); !has(got, "* 2 FETCH (BODY[] {"+strconv.Itoa(len(simpleMsg))+"}") {
		t.Fatalf("FETCH BODY.PEEK[]: %q", got)
	}
	if cb.lists.Load() != n {
		t.Error("FETCH of one whole message listed it apart")
	}
	// Another session's expunge: held back during FETCH (RFC 9051
	// §7.5.1), the message answered from the view's flags, its
	// ENVELOPE refused (RFC 2180 §4.1.2).
	b.expectOK(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.expectOK("EXPUNGE")
	if got := a.expectOK("FETCH 1 (FLAGS)"); !has(got, "* 1 FETCH (FLAGS (") || has(got, "EXPUNGE") {
		t.Fatalf("FETCH FLAGS of a message another session expunged: %q", got)
	}
	a.expectStatus("FETCH 1 (ENVELOPE)", "NO [EXPUNGEISSUED]")
	a.expectStatus("FETCH 1 (BODY.PEEK[])", "NO [EXPUNGEISSUED]")
	a.expectOK("NOOP")
	// A new message: announced, then fetched from the view.
	e.deliver(e.aliceID, "INBOX", simpleMsg)
	if got := a.expectOK("NOOP"); !has(got, "* 3 EXISTS") {
		t.Fatalf("NOOP after a delivery: %q", got)
	}
	if got := a.expectOK("UID FETCH 4 (UID FLAGS)"); !has(got, "* 3 FETCH (UID 4 FLAGS (") {
		t.Fatalf("FETCH of the new message: %q", got)
	}
}
