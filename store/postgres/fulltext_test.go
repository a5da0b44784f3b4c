package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/storetest"
)

func TestTextSearch(t *testing.T) {
	dsns := map[string]string{}
	storetest.RunTextSearch(t, func(t *testing.T, dir string) store.Store {
		if dsns[dir] == "" {
			dsns[dir] = freshDB(t)
		}
		return openTest(t, dsns[dir], Options{})
	})
}

func TestTextSearchScan(t *testing.T) {
	storetest.RunTextSearchScan(t, func(t *testing.T) store.Store {
		return openTest(t, freshDB(t), Options{})
	})
}

// Bodies stored before the index (schema version 4) are candidates of
// every search, never Sure, until ReindexText reads them; then the index
// narrows. Reindexing one account touches only its bodies.
func TestReindexText(t *testing.T) {
	s := openTest(t, freshDB(t), Options{})
	ctx := ctxFor(t)
	for _, a := range []string{"u", "v"} {
		if _, err := s.CreateAccount(ctx, a, store.Quota{}); err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{"Subject: one\r\n\r\nЁлка и зебра\r\n", "Subject: two\r\n\r\nnothing here\r\n"} {
			if _, err := s.Append(ctx, a, store.Inbox, strings.NewReader(body), store.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// What migration 3 leaves for bodies stored before it.
	if _, err := s.pool.Exec(ctx, `UPDATE text_docs SET state = 0, header = '', body = ''`); err != nil {
		t.Fatal(err)
	}
	search := func(account string) ([]uint32, int) { return sureHits(t, s, account, "ЗЕБРА") }
	if uids, sure := search("u"); len(uids) != 2 || sure != 0 {
		t.Fatalf("before reindexing: candidates %v, %d sure; want both, none sure", uids, sure)
	}
	if _, err := s.ReindexText(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReindexText of a missing account: %v, want ErrNotFound", err)
	}
	n, err := s.ReindexText(ctx, "u")
	if err != nil || n != 2 {
		t.Fatalf("ReindexText(u): %d, %v; want 2 bodies", n, err)
	}
	if uids, sure := search("u"); len(uids) != 1 || uids[0] != 1 || sure != 1 {
		t.Fatalf("after reindexing: candidates %v, %d sure; want [1], sure", uids, sure)
	}
	if uids, sure := search("v"); len(uids) != 2 || sure != 0 {
		t.Fatalf("v, not reindexed: candidates %v, %d sure; want both, none sure", uids, sure)
	}
	if n, err := s.ReindexText(ctx, ""); err != nil || n != 4 {
		t.Fatalf("ReindexText of everyone: %d, %v; want 4 bodies", n, err)
	}
	if uids, sure := search("v"); len(uids) != 1 || sure != 1 {
		t.Fatalf("v after reindexing everyone: candidates %v, %d sure", uids, sure)
	}
}

func TestFuzzySearch(t *testing.T) {
	storetest.RunFuzzySearch(t, func(t *testing.T) store.Store {
		return openTest(t, freshDB(t), Options{})
	})
}
