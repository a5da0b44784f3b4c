package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// A node's subscribers get the changes its own commits wrote to the
// feed without the feed rows being read back (feed.local); changes of
// another node are read from the table, and the two interleave in
// commit order, each once.
func TestFeedLocalWithoutRead(t *testing.T) {
	ctx := ctxFor(t)
	dsn := freshDB(t)
	tr := &commitTracer{}
	a := openTest(t, dsn, Options{Tracer: tr})
	b := openTest(t, dsn, Options{})
	if _, err := a.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	// The listener reads every subscribed account once it is up: let
	// that pass before counting.
	select {
	case <-a.feed.listening:
	case <-time.After(10 * time.Second):
		t.Fatal("node A's feed is not listening")
	}
	sub, err := a.Subscribe(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	time.Sleep(200 * time.Millisecond)
	appendOn := func(s *Store) uint32 {
		t.Helper()
		m, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: x\r\n\r\nx\r\n"), store.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m.UID
	}
	reads := tr.feedReads.Load()
	for range 3 {
		uid := appendOn(a)
		if c := waitChange(t, sub, 10*time.Second); c.Kind != store.ChangeMessagesAdded || len(c.UIDs) != 1 || c.UIDs[0] != uid {
			t.Fatalf("change %+v, want UID %d added", c, uid)
		}
	}
	if _, err := a.StoreFlags(ctx, "u", store.Inbox, store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 1, Stop: 2}}, Op: store.FlagsAdd, Flags: []string{store.FlagSeen}}); err != nil {
		t.Fatal(err)
	}
	if c := waitChange(t, sub, 10*time.Second); c.Kind != store.ChangeFlags || len(c.UIDs) != 2 {
		t.Fatalf("change %+v, want the flags of 2 messages", c)
	}
	if n := tr.feedReads.Load() - reads; n != 0 {
		t.Fatalf("%d feed reads for this node's own commits, want none", n)
	}
	// Another node's commit is read from the table; this node's next
	// one follows it, and nothing comes twice.
	uidB := appendOn(b)
	if c := waitChange(t, sub, 10*time.Second); c.Kind != store.ChangeMessagesAdded || c.UIDs[0] != uidB {
		t.Fatalf("change %+v, want node B's UID %d", c, uidB)
	}
	if tr.feedReads.Load() == reads {
		t.Fatal("node B's change came without a feed read")
	}
	uidA := appendOn(a)
	if c := waitChange(t, sub, 10*time.Second); c.Kind != store.ChangeMessagesAdded || c.UIDs[0] != uidA {
		t.Fatalf("change %+v, want UID %d", c, uidA)
	}
	select {
	case c := <-sub.C():
		t.Fatalf("a change more: %+v", c)
	case <-time.After(300 * time.Millisecond):
	}
}
