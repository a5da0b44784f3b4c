package imap

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// lookupCounting is a Backend that counts its index look-ups of
// messages (listings, OpenMessage, OpenBody), with the optional
// interfaces of the store it wraps; frozen, when set, stops the change
// numbers it reports, as if a write had not been counted yet.
type lookupCounting struct {
	Backend
	lookups atomic.Int64
	frozen  atomic.Bool
	mu      sync.Mutex
	counts  map[[2]string]uint64 // ChangeCount as last reported; under mu
}

func (b *lookupCounting) ListMessages(ctx context.Context, account, mailbox string, uids store.UIDSet) ([]store.Message, error) {
	b.lookups.Add(1)
	return b.Backend.ListMessages(ctx, account, mailbox, uids)
}

func (b *lookupCounting) OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (store.Message, io.ReadCloser, error) {
	b.lookups.Add(1)
	return b.Backend.(MessageOpener).OpenMessage(ctx, account, mailbox, uid)
}

func (b *lookupCounting) OpenBody(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, error) {
	b.lookups.Add(1)
	return b.Backend.OpenBody(ctx, account, mailbox, uid)
}

func (b *lookupCounting) OpenBlob(ctx context.Context, blobID string) (io.ReadCloser, error) {
	return b.Backend.(BlobOpener).OpenBlob(ctx, blobID)
}

func (b *lookupCounting) ChangeCount(account, mailbox string) uint64 {
	k := [2]string{account, mailbox}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.frozen.Load() {
		return b.counts[k]
	}
	n := b.Backend.(ChangeCounter).ChangeCount(account, mailbox)
	b.counts[k] = n
	return n
}

func (b *lookupCounting) ListChangeCount(account string) uint64 {
	return b.Backend.(ListChangeCounter).ListChangeCount(account)
}

// newLookupEnv is an env whose servers share one lookupCounting.
func newLookupEnv(t *testing.T) (*env, *lookupCounting) {
	var cb *lookupCounting
	e := newEnv(t, func(o *Options) {
		o.AllowInsecureAuth = true
		if cb == nil {
			cb = &lookupCounting{Backend: o.Backend, counts: map[[2]string]uint64{}}
		}
		o.Backend = cb
	})
	return e, cb
}

func bodyMsg(word string) string {
	return "From: carol@example.org\r\nSubject: " + word + "\r\n\r\nbody of " + word + "\r\n"
}

func wantBody(t *testing.T, lines []string, seq int, msg string) {
	t.Helper()
	want := "* " + strconv.Itoa(seq) + " FETCH (BODY[] {" + strconv.Itoa(len(msg)) + "}\n" + msg
	for _, l := range lines {
		if strings.HasPrefix(l, want) {
			return
		}
	}
	t.Fatalf("want message %d to be %q, got %q", seq, msg, lines)
}

// TestWholeBodyFromCache: a FETCH of one whole message the server has
// opened before opens its blob without an index look-up while the view
// is current, also right after a write to the mailbox (the probe's
// order: STORE, SELECT, FETCH), and with the view's current flags.
func TestWholeBodyFromCache(t *testing.T) {
	e, cb := newLookupEnv(t)
	for _, w := range []string{"one", "two", "three"} {
		e.deliver(e.aliceID, "INBOX", bodyMsg(w))
	}
	a := e.raw()
	a.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	a.expectOK("SELECT INBOX")
	wantBody(t, a.expectOK("FETCH 2 (BODY.PEEK[])"), 2, bodyMsg("two"))
	for range 3 {
		a.expectOK(`STORE 2 +FLAGS.SILENT (\Flagged)`)
		a.expectOK("SELECT INBOX")
		n := cb.lookups.Load()
		got := a.expectOK("FETCH 2 (BODY.PEEK[])")
		if d := cb.lookups.Load() - n; d != 0 {
			t.Fatalf("FETCH of a whole body opened before made %d index look-ups", d)
		}
		wantBody(t, got, 2, bodyMsg("two"))
		got = a.expectOK("FETCH 2 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
		if !has(got, "* 2 FETCH (UID 2 FLAGS (\\Flagged", ") INTERNALDATE \"", "RFC822.SIZE "+strconv.Itoa(len(bodyMsg("two")))+" BODY[] {") {
			t.Fatalf("FETCH from the cache: %q", got)
		}
		if d := cb.lookups.Load() - n; d != 0 {
			t.Fatalf("FETCH of a whole body with its data made %d index look-ups", d)
		}
		a.expectOK(`STORE 2 -FLAGS.SILENT (\Flagged)`)
	}
	// What the cache cannot answer still goes to the store: a FETCH
	// that sets \Seen, or asks for MODSEQ.
	n := cb.lookups.Load()
	a.expectOK("FETCH 2 (BODY[])")
	a.expectOK("FETCH 2 (MODSEQ BODY.PEEK[])")
	if cb.lookups.Load()-n < 2 {
		t.Error("FETCH BODY[] or MODSEQ answered without the store")
	}
}

// TestBodyCacheAfterExpunge: a message another session expunged is not
// served from the cache, whether the view knows of the expunge (the
// change number moved; its blob, kept by a copy, still opens) or not
// yet (frozen: the blob, freed, fails to open and the store is asked),
// as without the cache: NO [EXPUNGEISSUED] (RFC 2180 §4.1.2, RFC 5530).
func TestBodyCacheAfterExpunge(t *testing.T) {
	e, cb := newLookupEnv(t)
	for _, w := range []string{"one", "two", "three"} {
		e.deliver(e.aliceID, "INBOX", bodyMsg(w))
	}
	a, b := e.raw(), e.raw()
	for _, r := range []*raw{a, b} {
		r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
		r.expectOK("SELECT INBOX")
	}
	for seq := 1; seq <= 3; seq++ {
		a.expectOK("FETCH " + strconv.Itoa(seq) + " (BODY.PEEK[])")
	}
	// A copy keeps message 1's blob after its expunge: the blob opens,
	// but the message is gone.
	b.expectOK("CREATE Kept")
	b.expectOK("COPY 1 Kept")
	a.expectOK("NOOP")
	b.expectOK(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.expectOK("EXPUNGE")
	a.expectStatus("FETCH 1 (BODY.PEEK[])", "NO [EXPUNGEISSUED]")
	a.expectOK("NOOP") // the expunge reported: now "two" is 1

	// An expunge the server has not counted yet: the view looks
	// current, the cached blob is gone.
	wantBody(t, a.expectOK("FETCH 1 (BODY.PEEK[])"), 1, bodyMsg("two"))
	cb.frozen.Store(true)
	b.expectOK("NOOP")
	b.expectOK(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.expectOK("EXPUNGE")
	n := cb.lookups.Load()
	a.expectStatus("FETCH 1 (BODY.PEEK[])", "NO [EXPUNGEISSUED]")
	if cb.lookups.Load() == n {
		t.Error("the freed blob's message was not looked up in the store")
	}
	cb.frozen.Store(false)
}

// TestBodyCacheNotStale: the cache is keyed by mailbox, UIDVALIDITY and
// UID, so neither a new message after an EXPUNGE (a new UID) nor a
// mailbox deleted and created again under the same name (UIDs start
// over under a new UIDVALIDITY, RFC 9051 §2.3.1.1) is answered with an
// old body, even while the old body's blob is still there (a copy of it
// in INBOX keeps it).
func TestBodyCacheNotStale(t *testing.T) {
	e, _ := newLookupEnv(t)
	a := e.raw()
	a.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	a.expectOK("CREATE Box")
	appendMsg := func(msg string) {
		a.expectStatus("APPEND Box {"+strconv.Itoa(len(msg))+"+}\r\n"+msg, "OK")
	}
	appendMsg(bodyMsg("old"))
	a.expectOK("SELECT Box")
	wantBody(t, a.expectOK("FETCH 1 (BODY.PEEK[])"), 1, bodyMsg("old"))
	wantBody(t, a.expectOK("FETCH 1 (BODY.PEEK[])"), 1, bodyMsg("old"))
	a.expectOK("COPY 1 INBOX")

	// EXPUNGE and a new APPEND: sequence number 1 is a new UID.
	a.expectOK(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	a.expectOK("EXPUNGE")
	appendMsg(bodyMsg("new"))
	a.expectOK("NOOP")
	for range 2 {
		wantBody(t, a.expectOK("FETCH 1 (BODY.PEEK[])"), 1, bodyMsg("new"))
	}

	// Deleted and created again: UID 1 again, another UIDVALIDITY.
	a.expectOK("SELECT INBOX")
	a.expectOK("DELETE Box")
	a.expectOK("CREATE Box")
	appendMsg(bodyMsg("recreated"))
	a.expectOK("SELECT Box")
	for range 2 {
		got := a.expectOK("UID FETCH 1 (BODY.PEEK[])")
		if !has(got, "* 1 FETCH (UID 1 BODY[] {"+strconv.Itoa(len(bodyMsg("recreated")))+"}\nFrom: carol@example.org\r\nSubject: recreated") {
			t.Fatalf("UID FETCH 1 of the mailbox created again: %q", got)
		}
	}
	// The old body is still stored (its copy in INBOX).
	a.expectOK("SELECT INBOX")
	wantBody(t, a.expectOK("FETCH 1 (BODY.PEEK[])"), 1, bodyMsg("old"))
}

func TestBodyCacheEvictsOldest(t *testing.T) {
	c := newBodyCache(100)
	key := func(uid uint32) headerKey { return headerKey{recentKey{"a", "INBOX", 1}, uid} }
	for uid := uint32(1); uid <= 1000; uid++ {
		c.put(key(uid), bodyRef{blobID: strconv.Itoa(int(uid)), size: int64(uid)})
	}
	if len(c.m) != 100 || len(c.order)-c.head != 100 {
		t.Fatalf("%d entries, %d in order; want 100", len(c.m), len(c.order)-c.head)
	}
	if _, ok := c.get(key(900)); ok {
		t.Error("old entry still cached")
	}
	if r, ok := c.get(key(1000)); !ok || r.size != 1000 {
		t.Error("newest entry not cached")
	}
	if _, ok := c.get(headerKey{recentKey{"a", "INBOX", 2}, 1000}); ok {
		t.Error("entry served for another UIDVALIDITY")
	}
}

// TestFetchAfterOtherWriteWithoutListing: a FETCH of the mix's items
// (flags, size, date, bodies) right after another session's writes to
// the mailbox, whose view is therefore not current, lists nothing from
// the store's index: the changes since the view's poll (read once, and
// taken by the poll after the command as well) give the new flags and
// the expunge. The answer is the store's: the new flags, the expunged
// message answered as such (NO [EXPUNGEISSUED], RFC 2180 §4.1.2), the
// bodies; the poll after it reports the expunge and not the flags again.
func TestFetchAfterOtherWriteWithoutListing(t *testing.T) {
	e, cb := newLookupEnv(t)
	for _, w := range []string{"one", "two", "three", "four"} {
		e.deliver(e.aliceID, "INBOX", bodyMsg(w))
	}
	a, b := e.raw(), e.raw()
	for _, r := range []*raw{a, b} {
		r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
		r.expectOK("SELECT INBOX")
	}
	b.expectOK(`STORE 2 +FLAGS.SILENT (\Flagged)`)
	b.expectOK(`STORE 3 +FLAGS.SILENT (\Deleted)`)
	b.expectOK("EXPUNGE")
	n := cb.lookups.Load()
	u, st := a.cmd("FETCH 1:4 (UID FLAGS RFC822.SIZE BODY.PEEK[])")
	if d := cb.lookups.Load() - n; d != 0 {
		t.Errorf("FETCH after another session's writes made %d index look-ups", d)
	}
	if !strings.HasPrefix(st, "NO [EXPUNGEISSUED]") {
		t.Errorf("FETCH of a message expunged elsewhere: %q (%q)", st, u)
	}
	for _, want := range []struct {
		seq   int
		word  string
		flags string
	}{{1, "one", "(\\Recent)"}, {2, "two", "(\\Flagged \\Recent)"}, {4, "four", "(\\Recent)"}} {
		msg := bodyMsg(want.word)
		line := fmt.Sprintf("* %d FETCH (UID %d FLAGS %s RFC822.SIZE %d BODY[] {%d}\n%s)", want.seq, want.seq, want.flags, len(msg), len(msg), msg)
		if !slices.Contains(u, line) {
			t.Errorf("want %q, got %q", line, u)
		}
	}
	if has(u, "* 3 FETCH") {
		t.Errorf("the expunged message was answered: %q", u)
	}
	got := a.expectOK("NOOP")
	if !has(got, "* 3 EXPUNGE") || has(got, "FETCH") {
		t.Errorf("NOOP after the FETCH: want the expunge and no flags again, got %q", got)
	}
	wantBody(t, a.expectOK("FETCH 3 (BODY.PEEK[])"), 3, bodyMsg("four"))
}
