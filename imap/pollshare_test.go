package imap

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// changesCounting is a listCounting that also counts the backend's
// change reads, and its Mailbox look-ups.
type changesCounting struct {
	listCounting
	changes   atomic.Int64
	mailboxes atomic.Int64
}

func (b *changesCounting) Changes(ctx context.Context, account, mailbox string, since uint64) (store.ChangeSet, error) {
	b.changes.Add(1)
	return b.Backend.Changes(ctx, account, mailbox, since)
}

func (b *changesCounting) Mailbox(ctx context.Context, account, name string) (store.Mailbox, error) {
	b.mailboxes.Add(1)
	return b.Backend.Mailbox(ctx, account, name)
}

func newChangesCounting(t testing.TB) (*env, *changesCounting) {
	var cb *changesCounting
	e := newEnv(t, func(o *Options) {
		o.AllowInsecureAuth = true
		if cb == nil {
			cb = &changesCounting{listCounting: listCounting{Backend: o.Backend}}
		}
		o.Backend = cb
	})
	return e, cb
}

// hasLine reports whether one of lines contains all of parts.
func hasLine(lines []string, parts ...string) bool {
next:
	for _, l := range lines {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		return true
	}
	return false
}

// TestOwnStoreNotReadBack: the poll after a session's own STORE does not
// read the change back from the store when nothing else changed the
// mailbox since the view's last look; when another session's change came
// first (or the STORE changed nothing and another's change is news), the
// poll still reads and reports it, with CONDSTORE's MODSEQ too.
func TestOwnStoreNotReadBack(t *testing.T) {
	e, cb := newChangesCounting(t)
	for range 4 {
		e.deliver(e.aliceID, "INBOX", simpleMsg)
	}
	a, b := e.raw(), e.raw()
	for _, r := range []*raw{a, b} {
		r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
		r.expectOK("SELECT INBOX")
	}
	a.expectOK("ENABLE CONDSTORE")

	n := cb.changes.Load()
	got := a.expectOK(`STORE 1 +FLAGS (\Flagged)`)
	if !hasLine(got, "* 1 FETCH (", `\Flagged`, "MODSEQ (") {
		t.Fatalf("STORE: %q", got)
	}
	if got := a.expectOK("NOOP"); len(got) != 0 {
		t.Errorf("NOOP after own STORE: %q", got)
	}
	if d := cb.changes.Load() - n; d != 0 {
		t.Errorf("own STORE and NOOP read the changes %d times", d)
	}

	// Another session's change first: the own STORE's MODSEQ is not the
	// next one, so the poll reads and reports the other change.
	heard := b.expectOK(`STORE 2 +FLAGS (\Seen)`)
	got = a.expectOK(`STORE 3 +FLAGS (\Flagged)`)
	if !hasLine(got, "* 2 FETCH (", `\Seen`, "MODSEQ (") {
		t.Errorf("STORE after another session's: the other change not reported: %q", got)
	}

	// Another session's change, then an own STORE that changes nothing.
	heard = append(heard, b.expectOK(`STORE 4 +FLAGS (\Seen)`)...)
	got = a.expectOK(`STORE 3 +FLAGS (\Flagged)`)
	if !hasLine(got, "* 4 FETCH (", `\Seen`, "MODSEQ (") {
		t.Errorf("no-op STORE after another session's: the other change not reported: %q", got)
	}
	// And the other session heard of a's changes.
	got = append(heard, b.expectOK("NOOP")...)
	if !hasLine(got, "* 1 FETCH (", `\Flagged`) || !hasLine(got, "* 3 FETCH (", `\Flagged`) {
		t.Errorf("the other session's NOOP: %q", got)
	}
	// The view's HIGHESTMODSEQ is the store's.
	mb, err := e.st.Mailbox(context.Background(), e.aliceID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	got = a.expectOK(`STORE 1 -FLAGS (\Flagged)`)
	a.expectOK("NOOP")
	if !hasLine(got, "MODSEQ ("+itoa(int(mb.HighestModSeq+1))+"))") {
		t.Errorf("STORE after HIGHESTMODSEQ %d: %q", mb.HighestModSeq, got)
	}
	a.expectOK("CLOSE")
	if got := a.expectOK("SELECT INBOX (CONDSTORE)"); !hasLine(got, "[HIGHESTMODSEQ "+itoa(int(mb.HighestModSeq+1))+"]") {
		t.Errorf("SELECT: %q", got)
	}
}

// TestPollSharesChangeReads: sessions that have one mailbox selected and
// poll it after another's write share one read of its changes, and each
// still gets exactly its news: flags, new messages, expunges (VANISHED
// with QRESYNC), also a session that missed several writes.
func TestPollSharesChangeReads(t *testing.T) {
	e, cb := newChangesCounting(t)
	ctx := context.Background()
	for range 4 {
		e.deliver(e.aliceID, "INBOX", simpleMsg)
	}
	var rs []*raw
	for range 5 {
		r := e.raw()
		r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
		r.expectOK("SELECT INBOX")
		rs = append(rs, r)
	}
	rs[4].expectOK("ENABLE QRESYNC")
	late := e.raw()
	late.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	late.expectOK("EXAMINE INBOX")
	writer := e.raw()
	writer.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	writer.expectOK("SELECT INBOX")

	round := func(what string, want ...[]string) {
		t.Helper()
		n := cb.changes.Load()
		for i, r := range rs {
			got := r.expectOK("NOOP")
			for _, w := range want {
				if i == 4 && strings.Contains(w[0], "EXPUNGE") {
					w = []string{"* VANISHED 2"}
				}
				if !hasLine(got, w...) {
					t.Errorf("%s: session %d: NOOP %q lacks %q", what, i, got, w)
				}
			}
		}
		if d := cb.changes.Load() - n; d != 1 {
			t.Errorf("%s: %d sessions read the changes %d times, want once", what, len(rs), d)
		}
	}

	if _, err := e.st.StoreFlags(ctx, e.aliceID, "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 1, Stop: 1}}, Op: store.FlagsAdd, Flags: []string{store.FlagFlagged}}); err != nil {
		t.Fatal(err)
	}
	round("flags", []string{"* 1 FETCH (", `\Flagged`})
	e.deliver(e.aliceID, "INBOX", simpleMsg)
	round("new message", []string{"* 5 EXISTS"})
	writer.expectOK(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	writer.expectOK("EXPUNGE")
	round("expunge", []string{"* 2 EXPUNGE"})

	// The session that missed all three writes: each of them, once.
	got := late.expectOK("NOOP")
	for _, w := range [][]string{{"* 1 FETCH (", `\Flagged`}, {"* 4 EXISTS"}, {"* 2 EXPUNGE"}} {
		if !hasLine(got, w...) {
			t.Errorf("late session: NOOP %q lacks %q", got, w)
		}
	}
	if got := late.expectOK("FETCH 1:* (UID FLAGS)"); len(got) != 4 || !hasLine(got, "* 4 FETCH (UID 5 ") {
		t.Errorf("late session's view: %q", got)
	}
	for i, r := range rs {
		if got := r.expectOK("UID FETCH 1:* (FLAGS)"); len(got) != 4 || !hasLine(got, "UID 5") || hasLine(got, "UID 2") {
			t.Errorf("session %d's view: %q", i, got)
		}
	}
}

// TestSelectRollsListingForward: a SELECT after other sessions' writes
// (flags, a new message, an expunge) takes the mailbox's last listing
// forward by its changes instead of listing it again, and opens exactly
// what the store holds; a re-created mailbox (new UIDVALIDITY) is listed
// afresh.
func TestSelectRollsListingForward(t *testing.T) {
	e, cb := newChangesCounting(t)
	ctx := context.Background()
	for range 4 {
		e.deliver(e.aliceID, "INBOX", simpleMsg)
	}
	a, b := e.raw(), e.raw()
	for _, r := range []*raw{a, b} {
		r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
		r.expectOK("SELECT INBOX")
	}
	same := func(what, name string) {
		t.Helper()
		msgs, err := e.st.ListMessages(ctx, e.aliceID, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := a.expectOK("UID FETCH 1:* (FLAGS)")
		if len(got) != len(msgs) {
			t.Fatalf("%s: %d messages, the store has %d: %q", what, len(got), len(msgs), got)
		}
		for i, m := range msgs {
			want := "* " + itoa(i+1) + " FETCH (UID " + itoa(int(m.UID)) + " FLAGS (" + strings.Join(m.Flags, " ")
			if !strings.HasPrefix(got[i], want) {
				t.Errorf("%s: %q, want %q", what, got[i], want)
			}
		}
	}
	b.expectOK(`STORE 1 +FLAGS (\Flagged $Work)`)
	b.expectOK(`STORE 3 +FLAGS.SILENT (\Deleted)`)
	b.expectOK("EXPUNGE")
	b.expectOK("APPEND INBOX (\\Seen) {" + itoa(len(simpleMsg)) + "+}\r\n" + simpleMsg)
	n := cb.lists.Load()
	a.expectOK("CLOSE")
	got := a.expectOK("SELECT INBOX")
	if !hasLine(got, "* 4 EXISTS") || !hasLine(got, "$Work") {
		t.Errorf("SELECT after writes: %q", got)
	}
	if d := cb.lists.Load() - n; d != 0 {
		t.Errorf("SELECT after writes listed the mailbox %d times", d)
	}
	same("after writes", "INBOX")

	// Deleted and created again: another UIDVALIDITY, listed afresh.
	b.expectOK("CLOSE")
	a.expectOK("CLOSE")
	b.expectOK("CREATE Box")
	b.expectOK("APPEND Box {" + itoa(len(simpleMsg)) + "+}\r\n" + simpleMsg)
	a.expectOK("SELECT Box")
	b.expectOK("DELETE Box")
	b.expectOK("CREATE Box")
	b.expectOK("APPEND Box (\\Answered) {" + itoa(len(simpleMsg)) + "+}\r\n" + simpleMsg)
	b.expectOK("APPEND Box {" + itoa(len(simpleMsg)) + "+}\r\n" + simpleMsg)
	a.expectOK("CLOSE")
	n = cb.lists.Load()
	if got := a.expectOK("SELECT Box"); !hasLine(got, "* 2 EXISTS") {
		t.Errorf("SELECT of the re-created mailbox: %q", got)
	}
	if d := cb.lists.Load() - n; d != 1 {
		t.Errorf("SELECT of the re-created mailbox listed it %d times, want once", d)
	}
	same("re-created", "Box")
}

// TestPollSharesReadAfterWritersOwn: the session that wrote polls first
// and finds nothing new for itself (its own STORE), so its look reads no
// changes; the sessions that then poll for that write share one read
// instead of each reading apart (as they did: one read per session in
// the 50-client mix).
func TestPollSharesReadAfterWritersOwn(t *testing.T) {
	e, cb := newChangesCounting(t)
	for range 4 {
		e.deliver(e.aliceID, "INBOX", simpleMsg)
	}
	var rs []*raw
	for range 4 {
		r := e.raw()
		r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
		r.expectOK("SELECT INBOX")
		rs = append(rs, r)
	}
	writer := rs[0]
	for i, flag := range []string{`+FLAGS.SILENT (\Flagged)`, `-FLAGS (\Flagged)`, `+FLAGS (\Seen)`} {
		writer.expectOK("STORE 2 " + flag)
		n := cb.changes.Load()
		for j, r := range rs[1:] {
			got := r.expectOK("NOOP")
			if !hasLine(got, "* 2 FETCH (", "FLAGS (") {
				t.Errorf("write %d: session %d: NOOP %q lacks the new flags", i, j+1, got)
			}
		}
		if d := cb.changes.Load() - n; d != 1 {
			t.Errorf("write %d: %d sessions read the changes %d times, want once", i, len(rs)-1, d)
		}
	}
}
