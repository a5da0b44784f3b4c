package imap

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// batchOpening is a Backend with a MessagesOpener (as store/postgres
// has), built from the wrapped store's listing and bodies; it counts
// the batch opens, the single OpenBody calls and the listings, and
// leaves out of the walk the UID in skip, as if that message were
// expunged between the FETCH's listing and the opening of the bodies.
type batchOpening struct {
	Backend
	batches, singles, lists atomic.Int64
	skip                    atomic.Uint32
}

func (b *batchOpening) ListMessages(ctx context.Context, account, mailbox string, uids store.UIDSet) ([]store.Message, error) {
	b.lists.Add(1)
	return b.Backend.ListMessages(ctx, account, mailbox, uids)
}

func (b *batchOpening) OpenBody(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, error) {
	b.singles.Add(1)
	return b.Backend.OpenBody(ctx, account, mailbox, uid)
}

func (b *batchOpening) OpenMessages(ctx context.Context, account, mailbox string, uids store.UIDSet, fn func(store.Message, io.ReadSeeker) error) error {
	b.batches.Add(1)
	msgs, err := b.Backend.ListMessages(ctx, account, mailbox, uids)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.UID == b.skip.Load() {
			continue
		}
		rc, err := b.Backend.OpenBody(ctx, account, mailbox, m.UID)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if err := fn(m, bytes.NewReader(data)); err != nil {
			return err
		}
	}
	return nil
}

// TestFetchBodiesOpenedTogether: a FETCH that reads the bodies of
// several messages opens them with the Backend's MessagesOpener, one
// call for the set and no OpenBody per message (store/postgres: a
// statement per MiB instead of one per message), with the same
// responses; one message, or headers the server has cached, do not use
// it; a message gone when the bodies are opened is answered as
// expunged (NO [EXPUNGEISSUED], RFC 5530) and the others are served.
// Without FLAGS the messages are not listed before they are opened.
func TestFetchBodiesOpenedTogether(t *testing.T) {
	var bb *batchOpening
	e := newEnv(t, func(o *Options) {
		o.AllowInsecureAuth = true
		if bb == nil {
			bb = &batchOpening{Backend: o.Backend}
		}
		o.Backend = bb
	})
	words := []string{"one", "two", "three"}
	for _, w := range words {
		e.deliver(e.aliceID, "INBOX", bodyMsg(w))
	}
	a := e.raw()
	a.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	a.expectOK("SELECT INBOX")
	// cost runs cmd and returns its response with the batch opens and
	// the single opens it made.
	cost := func(cmd string) ([]string, int64, int64) {
		t.Helper()
		b, s := bb.batches.Load(), bb.singles.Load()
		lines := a.expectOK(cmd)
		return lines, bb.batches.Load() - b, bb.singles.Load() - s
	}

	lists := bb.lists.Load()
	lines, batches, singles := cost("FETCH 1:3 (BODY.PEEK[])")
	if batches != 1 || singles != 0 {
		t.Fatalf("FETCH of 3 bodies: %d batch opens and %d single opens, want 1 and 0", batches, singles)
	}
	for i, w := range words {
		wantBody(t, lines, i+1, bodyMsg(w))
	}
	// Answered from the messages as opened: no listing first.
	if n := bb.lists.Load() - lists; n != 0 {
		t.Errorf("FETCH of 3 bodies listed the messages %d times first, want none", n)
	}
	// FLAGS are announced before the first response: listed first.
	lists = bb.lists.Load()
	lines, batches, _ = cost("FETCH 1:3 (FLAGS BODY.PEEK[])")
	if n := bb.lists.Load() - lists; n != 1 || batches != 1 {
		t.Errorf("FETCH of 3 bodies with FLAGS: %d listings and %d batch opens, want 1 and 1", n, batches)
	}
	mustHave(t, lines, "* 2 FETCH (FLAGS (\\Recent) BODY[] {", bodyMsg("two"))
	// Sections read twice (length first): the body is rewound.
	lines, batches, singles = cost("FETCH 1:3 (BODYSTRUCTURE BODY.PEEK[TEXT] BINARY.SIZE[1])")
	if batches != 1 || singles != 0 {
		t.Fatalf("FETCH of 3 texts: %d batch opens and %d single opens, want 1 and 0", batches, singles)
	}
	for i, w := range words {
		text := "body of " + w + "\r\n"
		mustHave(t, lines, "* "+strconv.Itoa(i+1)+" FETCH (BODYSTRUCTURE (", "BODY[TEXT] {"+strconv.Itoa(len(text))+"}\n"+text)
	}
	// Headers: the first FETCH reads the bodies (none cached), the
	// second is answered from the server's header cache.
	if _, batches, _ = cost("FETCH 1:3 (ENVELOPE)"); batches != 1 {
		t.Errorf("FETCH ENVELOPE of 3 uncached headers: %d batch opens, want 1", batches)
	}
	lines, batches, singles = cost("FETCH 1:3 (ENVELOPE)")
	if batches != 0 || singles != 0 {
		t.Errorf("FETCH ENVELOPE of 3 cached headers: %d batch opens and %d single opens, want none", batches, singles)
	}
	mustHave(t, lines, `"two"`)
	// One message: its body alone.
	if _, batches, singles = cost("FETCH 2 (BODY.PEEK[TEXT])"); batches != 0 || singles != 1 {
		t.Errorf("FETCH of one body: %d batch opens and %d single opens, want 0 and 1", batches, singles)
	}

	// Expunged between the listing and the opening of the bodies.
	bb.skip.Store(2)
	lines = a.expectStatus("FETCH 1:3 (BODY.PEEK[])", "NO [EXPUNGEISSUED]")
	wantBody(t, lines, 1, bodyMsg("one"))
	wantBody(t, lines, 3, bodyMsg("three"))
	mustNotHave(t, lines, "* 2 FETCH")
}
