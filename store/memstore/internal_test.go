package memstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

func newTest(t *testing.T, opts Options) *Store {
	t.Helper()
	s := New(opts)
	t.Cleanup(func() { s.Close() })
	if _, err := s.CreateAccount(context.Background(), "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func appendN(t *testing.T, s *Store, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Append(context.Background(), "u", "INBOX", strings.NewReader(fmt.Sprint(i)), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// A subscriber that falls FeedBuffer changes behind gets one
// ChangeOverflow, then the changes after it, and writers never block.
func TestFeedOverflow(t *testing.T) {
	s := newTest(t, Options{FeedBuffer: 3})
	sub, err := s.Subscribe(context.Background(), "u")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	appendN(t, s, 10) // would block here if publish waited for the reader
	var kinds []store.ChangeKind
	var uids []uint32
	for len(sub.C()) > 0 {
		c := <-sub.C()
		kinds = append(kinds, c.Kind)
		uids = append(uids, c.UIDs...)
	}
	if len(kinds) == 0 || kinds[0] != store.ChangeOverflow {
		t.Fatalf("kinds %v: want ChangeOverflow first", kinds)
	}
	if last := uids[len(uids)-1]; last != 10 {
		t.Fatalf("last UID delivered %d, want 10 (changes resume after the overflow): %v", last, uids)
	}
	for i := 1; i < len(uids); i++ {
		if uids[i] != uids[i-1]+1 {
			t.Fatalf("gap after the overflow: %v", uids)
		}
	}
}

// Subscriptions start no goroutine of their own, and the context.AfterFunc
// of each ends with the subscription, however it ends.
func TestFeedNoGoroutineLeak(t *testing.T) {
	s := newTest(t, Options{})
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var subs []store.Subscription
	for range 50 {
		sub, err := s.Subscribe(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after 50 subscriptions, %d before", n, before)
	}
	for _, sub := range subs[:25] {
		sub.Close()
	}
	cancel()
	for _, sub := range subs[25:] {
		select {
		case _, open := <-sub.C():
			if open {
				t.Fatal("change delivered after cancel")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("subscription not closed by its context")
		}
	}
	s.mu.RLock()
	n := len(s.subs)
	s.mu.RUnlock()
	if n != 0 {
		t.Fatalf("%d accounts still have subscribers", n)
	}
}

// Closing a subscription drops what it buffered: nothing is delivered
// after Close.
func TestFeedCloseDropsBuffered(t *testing.T) {
	s := newTest(t, Options{})
	sub, err := s.Subscribe(context.Background(), "u")
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 3)
	sub.Close()
	if c, open := <-sub.C(); open {
		t.Fatalf("change %+v delivered after Close", c)
	}
}

// The change log keeps ChangeLogLimit entries; older tokens are invalid
// (RFC 6578 §3.2), newer ones still work.
func TestChangeLogLimit(t *testing.T) {
	ctx := context.Background()
	s := newTest(t, Options{ChangeLogLimit: 3})
	cal, err := s.Collection(ctx, "u", store.KindCalendar, "calendar")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := s.PutObject(ctx, cal.ID, store.Object{Name: fmt.Sprint(i, ".ics"), UID: fmt.Sprint(i), Data: []byte("x")}, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Tokens 1..7 given out; the log holds the changes to 5, 6, 7.
	if _, _, err := s.ChangesSince(ctx, cal.ID, 3); !errors.Is(err, store.ErrSyncTokenInvalid) {
		t.Fatalf("ChangesSince(pruned token 3) = %v, want ErrSyncTokenInvalid", err)
	}
	got, cur, err := s.ChangesSince(ctx, cal.ID, 4)
	if err != nil {
		t.Fatal(err)
	}
	if cur != 7 || len(got) != 3 || got[0].Name != "3.ics" || got[2].Name != "5.ics" {
		t.Fatalf("ChangesSince(4) = %+v, %d; want 3.ics..5.ics, 7", got, cur)
	}
}

// Check reports what the index and bodies disagree on.
func TestCheckFindsProblems(t *testing.T) {
	ctx := context.Background()
	s := newTest(t, Options{})
	appendN(t, s, 2)
	s.mu.Lock()
	inbox := s.accounts["u"].mailboxes[store.Inbox]
	delete(s.blobs, inbox.msgs[0].BlobID)
	s.blobs[inbox.msgs[1].BlobID].data = []byte("longer")
	s.blobs["stray"] = &blob{data: []byte("x")}
	inbox.uidNext = 2
	s.accounts["u"].used.Messages = 7
	s.mu.Unlock()
	problems, err := s.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, p := range problems {
		kinds[p.Kind]++
	}
	want := map[string]int{"missing-blob": 1, "size-mismatch": 1, "orphan-blob": 1, "counter": 2}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("Check found %v (%+v), want %v", kinds, problems, want)
	}
}

// A call whose context is already done changes nothing.
func TestDoneContext(t *testing.T) {
	s := newTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, "u", "INBOX", strings.NewReader("x"), store.AppendOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v", err)
	}
	if u, _, _ := s.Usage(context.Background(), "u"); u.Messages != 0 {
		t.Fatalf("usage %+v after a cancelled append", u)
	}
}
