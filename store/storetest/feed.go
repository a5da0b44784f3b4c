package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

func next(t *testing.T, sub store.Subscription) store.Change {
	t.Helper()
	select {
	case c, open := <-sub.C():
		if !open {
			t.Fatal("subscription closed unexpectedly")
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no change published within 10s")
	}
	return store.Change{}
}

func quiet(t *testing.T, sub store.Subscription) {
	t.Helper()
	select {
	case c := <-sub.C():
		t.Fatalf("unexpected change %+v", c)
	case <-time.After(100 * time.Millisecond):
	}
}

func testFeedOrder(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	sub, err := s.Subscribe(ctx, "u")
	ok(t, err, "Subscribe")
	defer sub.Close()
	_, err = s.Subscribe(ctx, "ghost")
	isErr(t, err, store.ErrNotFound, "Subscribe to unknown account")

	m := appendMsg(t, s, "u", "INBOX", "a")
	c := next(t, sub)
	eq(t, c.Kind, store.ChangeMessagesAdded, "append kind")
	eq(t, c.Account, "u", "account")
	eq(t, c.Mailbox, "INBOX", "mailbox")
	eqSlice(t, c.UIDs, []uint32{m.UID}, "UIDs")
	eq(t, c.ModSeq, m.ModSeq, "ModSeq is HIGHESTMODSEQ after the change")

	res, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}})
	ok(t, err, "StoreFlags")
	c = next(t, sub)
	eq(t, c.Kind, store.ChangeFlags, "flags kind")
	eqSlice(t, c.UIDs, []uint32{m.UID}, "flag UIDs")
	eq(t, c.ModSeq, res.Updated[0].ModSeq, "flag ModSeq")
	// A no-op flag change publishes nothing.
	_, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}})
	ok(t, err, "no-op StoreFlags")
	_, err = s.Expunge(ctx, "u", "INBOX", nil)
	ok(t, err, "Expunge")
	c = next(t, sub)
	eq(t, c.Kind, store.ChangeExpunged, "expunge kind (no-op flag change published nothing)")
	eqSlice(t, c.UIDs, []uint32{m.UID}, "expunged UIDs")

	_, err = s.CreateMailbox(ctx, "u", "box", store.SpecialNone)
	ok(t, err, "create")
	c = next(t, sub)
	eq(t, c.Kind, store.ChangeMailboxCreated, "created kind")
	eq(t, c.Mailbox, "box", "created name")
	ok(t, s.RenameMailbox(ctx, "u", "box", "box2"), "rename")
	c = next(t, sub)
	eq(t, c.Kind, store.ChangeMailboxRenamed, "renamed kind")
	eq(t, c.Mailbox+"<-"+c.OldName, "box2<-box", "rename names")
	_, err = s.Move(ctx, "u", "Sent", "box2", nil)
	ok(t, err, "empty move")
	ok(t, s.DeleteMailbox(ctx, "u", "box2"), "delete")
	c = next(t, sub)
	eq(t, c.Kind, store.ChangeMailboxDeleted, "deleted kind (an empty move publishes nothing)")
	eq(t, c.Mailbox, "box2", "deleted name")

	cal := mustCollection(t, s, "u", store.KindCalendar, "calendar")
	_, err = s.PutObject(ctx, cal.ID, store.Object{Name: "x.ics", UID: "x", Data: []byte("x")}, store.PutOptions{})
	ok(t, err, "put")
	c = next(t, sub)
	eq(t, c.Kind, store.ChangeCollection, "collection kind")
	eq(t, c.CollectionID, cal.ID, "collection ID")
	eq(t, c.SyncToken, mustCollection(t, s, "u", store.KindCalendar, "calendar").SyncToken, "sync token")

	// Commit order across many concurrent writers: each mailbox's
	// ModSeqs arrive strictly increasing.
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			box := []string{"INBOX", "Archive"}[i%2]
			if _, err := s.Append(ctx, "u", box, bytes.NewReader([]byte("x")), store.AppendOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	last := map[string]uint64{}
	lastUID := map[string]uint32{}
	for range n {
		c := next(t, sub)
		eq(t, c.Kind, store.ChangeMessagesAdded, "kind")
		if c.ModSeq <= last[c.Mailbox] || c.UIDs[0] <= lastUID[c.Mailbox] {
			t.Fatalf("%s: change with MODSEQ %d UID %d after %d %d: not in commit order", c.Mailbox, c.ModSeq, c.UIDs[0], last[c.Mailbox], lastUID[c.Mailbox])
		}
		last[c.Mailbox], lastUID[c.Mailbox] = c.ModSeq, c.UIDs[0]
	}
	ok(t, s.DeleteAccount(ctx, "u"), "DeleteAccount")
	c = next(t, sub)
	eq(t, c.Kind, store.ChangeAccountDeleted, "account deleted kind")
}

func testFeedIsolation(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "a", store.Quota{})
	newAccount(t, s, "b", store.Quota{})
	subA, err := s.Subscribe(ctx, "a")
	ok(t, err, "Subscribe a")
	defer subA.Close()
	subA2, err := s.Subscribe(ctx, "a")
	ok(t, err, "Subscribe a again")
	defer subA2.Close()
	appendMsg(t, s, "b", "INBOX", "for b")
	_, err = s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "a"}, {Account: "b"}}}, bytes.NewReader([]byte("both")))
	ok(t, err, "Deliver")
	for _, sub := range []store.Subscription{subA, subA2} {
		c := next(t, sub)
		eq(t, c.Account, "a", "only a's changes")
		eq(t, c.Kind, store.ChangeMessagesAdded, "kind")
		quiet(t, sub)
	}
}

func testFeedSlowSubscriber(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	sub, err := s.Subscribe(ctx, "u")
	ok(t, err, "Subscribe")
	defer sub.Close()
	// Nobody reads sub while we write: writers must never block on it.
	const workers, each = 8, 40
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if _, err := s.Append(ctx, "u", "INBOX", bytes.NewReader([]byte(fmt.Sprint(w, i))), store.AppendOptions{}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("writers blocked by a subscriber that does not read")
	}
	final := mailbox(t, s, "u", "INBOX").HighestModSeq
	// What the subscriber reads now is the exact sequence, or contains
	// ChangeOverflow after which changes resume up to the last commit.
	var lastMS uint64
	overflowed := false
	for lastMS < final {
		c := next(t, sub)
		if c.Kind == store.ChangeOverflow {
			overflowed = true
			lastMS = 0 // after an overflow, order restarts from what follows
			continue
		}
		eq(t, c.Kind, store.ChangeMessagesAdded, "kind")
		if c.ModSeq <= lastMS {
			t.Fatalf("MODSEQ %d after %d", c.ModSeq, lastMS)
		}
		if !overflowed && lastMS != 0 && c.ModSeq != lastMS+1 {
			t.Fatalf("gap without ChangeOverflow: MODSEQ %d after %d", c.ModSeq, lastMS)
		}
		lastMS = c.ModSeq
	}
	// New changes keep arriving after the backlog.
	m := appendMsg(t, s, "u", "INBOX", "after")
	c := next(t, sub)
	eq(t, c.ModSeq, m.ModSeq, "change after the backlog")
}

func testFeedClose(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	sub, err := s.Subscribe(ctx, "u")
	ok(t, err, "Subscribe")
	ok(t, sub.Close(), "Close")
	ok(t, sub.Close(), "Close twice")
	appendMsg(t, s, "u", "INBOX", "x")
	select {
	case _, open := <-sub.C():
		if open {
			t.Fatal("closed subscription delivered a change")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("C not closed after Close")
	}
	// Cancelling the context given to Subscribe ends the subscription.
	cctx, cancel := context.WithCancel(ctx)
	sub2, err := s.Subscribe(cctx, "u")
	ok(t, err, "Subscribe")
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, open := <-sub2.C():
			if !open {
				goto closed
			}
		case <-deadline:
			t.Fatal("subscription not closed after its context was cancelled")
		}
	}
closed:
	// Closing the store closes subscriptions.
	sub3, err := s.Subscribe(ctx, "u")
	ok(t, err, "Subscribe")
	ok(t, s.Close(), "store Close")
	select {
	case _, open := <-sub3.C():
		if open {
			t.Fatal("change after store Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription not closed by store Close")
	}
}
