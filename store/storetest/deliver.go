package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

func testDeliver(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	for _, a := range []string{"a", "b", "c"} {
		newAccount(t, s, a, store.Quota{})
	}
	_, err := s.CreateMailbox(ctx, "b", "Lists", store.SpecialNone)
	ok(t, err, "create")
	date := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	body := "From: x@example.com\r\n\r\nhello all\r\n"
	ds, err := s.Deliver(ctx, store.Delivery{
		Recipients: []store.Recipient{
			{Account: "a"},
			{Account: "b", Mailbox: "Lists", Flags: []string{"$list"}},
			{Account: "c", Mailbox: "inbox"},
		},
		InternalDate: date,
	}, bytes.NewReader([]byte(body)))
	ok(t, err, "Deliver")
	eq(t, len(ds), 3, "one result per recipient")
	wantBox := []string{"INBOX", "Lists", "INBOX"}
	var blob string
	for i, d := range ds {
		eq(t, d.Mailbox, wantBox[i], "mailbox of recipient %d", i)
		eq(t, d.Account, []string{"a", "b", "c"}[i], "account of result %d", i)
		eq(t, d.UID, uint32(1), "UID of recipient %d", i)
		eq(t, readBody(t, s, d.Account, d.Mailbox, d.UID), body, "body for %s", d.Account)
		msgs, err := s.ListMessages(ctx, d.Account, d.Mailbox, nil)
		ok(t, err, "list")
		if !msgs[0].InternalDate.Equal(date) {
			t.Fatalf("internal date %v, want %v", msgs[0].InternalDate, date)
		}
		// Guarantee 4: the body is stored once and shared.
		if i == 0 {
			blob = msgs[0].BlobID
		} else {
			eq(t, msgs[0].BlobID, blob, "blob shared by recipient %d", i)
		}
		if d.Account == "b" {
			eqSlice(t, msgs[0].Flags, []string{"$list"}, "recipient flags")
		}
		u, _, err := s.Usage(ctx, d.Account)
		ok(t, err, "usage")
		eq(t, u, store.Usage{Bytes: int64(len(body)), Messages: 1}, "usage of %s", d.Account)
	}
	_, err = s.Deliver(ctx, store.Delivery{}, bytes.NewReader([]byte(body)))
	isErr(t, err, store.ErrInvalid, "Deliver without recipients")
	_, err = s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "a", Flags: []string{`\Recent`}}}}, bytes.NewReader([]byte(body)))
	isErr(t, err, store.ErrInvalid, "Deliver with invalid flag")
	noProblems(t, s)
}

func testDeliverFallback(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "a", store.Quota{})
	ds, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{
		{Account: "a", Mailbox: "Does/Not/Exist"},
		{Account: "a", Mailbox: "bad//name"},
		{Account: "a", Mailbox: "Junk"},
		{Account: "a", Mailbox: "junk2"},
	}}, bytes.NewReader([]byte("x")))
	ok(t, err, "Deliver")
	eq(t, ds[0].Mailbox, "INBOX", "missing mailbox falls back to INBOX")
	eq(t, ds[1].Mailbox, "INBOX", "invalid mailbox falls back to INBOX")
	eq(t, ds[2].Mailbox, "Junk", "existing mailbox")
	eq(t, ds[3].Mailbox, "INBOX", "missing mailbox falls back")
	// One copy per distinct (account, mailbox).
	eqSlice(t, listUIDs(t, s, "a", "INBOX"), []uint32{1}, "one INBOX copy for three recipients")
	eq(t, ds[0].UID, ds[1].UID, "duplicates share the UID")
	eqSlice(t, listUIDs(t, s, "a", "Junk"), []uint32{1}, "one Junk copy")
	u, _, err := s.Usage(ctx, "a")
	ok(t, err, "usage")
	eq(t, u.Messages, int64(2), "usage counts distinct copies")
}

func testDeliverAtomic(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "ok1", store.Quota{})
	newAccount(t, s, "full", store.Quota{MaxBytes: 5})
	newAccount(t, s, "ok2", store.Quota{})
	newAccount(t, s, "full2", store.Quota{MaxMessages: 1})
	appendMsg(t, s, "full2", "INBOX", "x")
	rcpts := []store.Recipient{{Account: "ok1"}, {Account: "full"}, {Account: "ok2"}, {Account: "full2"}}
	_, err := s.Deliver(ctx, store.Delivery{Recipients: rcpts}, bytes.NewReader([]byte("too large body")))
	quotaErr(t, err, "STORAGE", "full", "full2")
	for _, a := range []string{"ok1", "full", "ok2"} {
		eq(t, len(listUIDs(t, s, a, "INBOX")), 0, "nothing delivered to %s when another is over quota", a)
		eq(t, mailbox(t, s, a, "INBOX").UIDNext, uint32(1), "no UID used for %s", a)
	}
	// One account getting two copies counts both against its quota.
	newAccount(t, s, "two", store.Quota{MaxMessages: 1})
	_, err = s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "two"}, {Account: "two", Mailbox: "Junk"}}}, bytes.NewReader([]byte("y")))
	quotaErr(t, err, "MESSAGE", "two")
	// Unknown account: nothing stored for anyone.
	_, err = s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "ok1"}, {Account: "ghost"}}}, bytes.NewReader([]byte("z")))
	isErr(t, err, store.ErrNotFound, "Deliver to unknown account")
	eq(t, len(listUIDs(t, s, "ok1", "INBOX")), 0, "nothing delivered with an unknown recipient")
	noProblems(t, s)
}

func testDeliverConcurrent(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	const workers, each = 16, 12
	for i := range 4 {
		newAccount(t, s, fmt.Sprintf("r%d", i), store.Quota{})
	}
	// r3 is over quota for everything: its failures must not affect the
	// others delivered in the same group commit.
	ok(t, s.SetQuota(ctx, "r3", store.Quota{MaxBytes: 1}), "quota")
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*2)
	var mu sync.Mutex
	got := map[string][]uint32{}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := fmt.Sprintf("worker %d message %d", w, i)
				rcpts := []store.Recipient{{Account: "r0"}, {Account: fmt.Sprintf("r%d", 1+w%2)}}
				ds, err := s.Deliver(ctx, store.Delivery{Recipients: rcpts}, bytes.NewReader([]byte(body)))
				if err != nil {
					errs <- fmt.Errorf("deliver %q: %w", body, err)
					continue
				}
				mu.Lock()
				for _, d := range ds {
					got[d.Account] = append(got[d.Account], d.UID)
				}
				mu.Unlock()
				if _, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "r3"}}}, bytes.NewReader([]byte(body))); err == nil {
					errs <- fmt.Errorf("delivery to over-quota r3 succeeded")
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	eq(t, len(got["r0"]), workers*each, "deliveries acknowledged for r0")
	for _, a := range []string{"r0", "r1", "r2"} {
		stored := listUIDs(t, s, a, "INBOX")
		eq(t, len(stored), len(got[a]), "messages stored for %s", a)
		seen := map[uint32]bool{}
		for _, u := range got[a] {
			if seen[u] {
				t.Fatalf("UID %d given twice in %s", u, a)
			}
			seen[u] = true
		}
		for _, u := range stored {
			if !seen[u] {
				t.Fatalf("stored UID %d in %s was never acknowledged", u, a)
			}
		}
	}
	eq(t, len(listUIDs(t, s, "r3", "INBOX")), 0, "over-quota account got nothing")
	noProblems(t, s)
}
