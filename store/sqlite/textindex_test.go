package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// textHits is the UIDs a body search for word finds in account's INBOX,
// and those of them that are Sure.
func textHits(t *testing.T, s *Store, account, word string) (all, sure []uint32) {
	t.Helper()
	hits, err := s.SearchText(context.Background(), account, store.Inbox, []store.TextTerm{{Field: store.TextBody, Value: word}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		all = append(all, h.UID)
		if h.Sure {
			sure = append(sure, h.UID)
		}
	}
	return all, sure
}

func indexRows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRow("SELECT count(*) FROM ti.text_ix").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTextIndexCrashBetweenCommits: the index writer commits in
// textindex.db, then the process dies before the entries are marked in
// mail.db (the hook fails the batch there). The entries stay "not
// indexed", candidates of every search; one expunged meanwhile leaves
// rows whose deletion, queued in memory, dies with the process; the
// reopen deletes them, and the indexer fills the rest again.
func TestTextIndexCrashBetweenCommits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	crash := errors.New("crash between the commits")
	s := openTest(t, dir, Options{noTextIndexer: true, testHookTextIndexed: func() error { return crash }})
	mustAccount(t, s, "u", store.Quota{})
	for _, w := range []string{"alpha", "bravo"} {
		if err := appendText(s, "u", w, store.FlagDeleted)(); err != nil {
			t.Fatal(err)
		}
	}
	if err := appendText(s, "u", "charlie")(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IndexPendingText(ctx); !errors.Is(err, crash) {
		t.Fatalf("IndexPendingText: %v, want the crash", err)
	}
	if n := indexRows(t, s); n != 3 {
		t.Fatalf("%d entries in textindex.db, want 3", n)
	}
	if all, sure := textHits(t, s, "u", "alpha"); !slices.Equal(all, []uint32{1, 2, 3}) || len(sure) != 0 {
		t.Fatalf("search alpha before the marking: %v (sure %v), want every message, none sure", all, sure)
	}
	if _, err := s.Expunge(ctx, "u", store.Inbox, store.UIDSet{{Start: 2, Stop: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // the queued deletion is lost, as in a crash
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{noTextIndexer: true})
	if n := indexRows(t, s); n != 2 {
		t.Fatalf("%d entries in textindex.db after the reopen, want 2 (the expunged one's deleted)", n)
	}
	indexNow(t, s)
	for word, want := range map[string][]uint32{"alpha": {1}, "bravo": nil, "charlie": {3}} {
		if all, sure := textHits(t, s, "u", word); !slices.Equal(all, want) || !slices.Equal(sure, want) {
			t.Errorf("search %q: %v (sure %v), want %v", word, all, sure, want)
		}
	}
	ftsIntact(t, s)
}

// TestTextIndexFileBehind: a textindex.db older than mail.db (restored
// from a copy) lacks entries mail.db marks indexed. Check reports it;
// the reopen puts them back to "not indexed", so no search misses their
// messages, and the indexer fills them again. A removed textindex.db is
// rebuilt the same way.
func TestTextIndexFileBehind(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{noTextIndexer: true})
	mustAccount(t, s, "u", store.Quota{})
	if err := appendText(s, "u", "alpha")(); err != nil {
		t.Fatal(err)
	}
	indexNow(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(dir, textIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{noTextIndexer: true})
	if err := appendText(s, "u", "bravo")(); err != nil {
		t.Fatal(err)
	}
	indexNow(t, s)
	rawIndexExec(t, s, "DELETE FROM text_ix WHERE id = (SELECT max(id) FROM text_ix)")
	if p := problems(t, s); !hasProblem(p, "text-index", "1 full-text entries are marked indexed") {
		t.Fatalf("Check of an index that lacks an entry: %+v", p)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	undoTextIndexFile(t, dir)
	if err := os.WriteFile(filepath.Join(dir, textIndexFile), old, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{noTextIndexer: true})
	if all, sure := textHits(t, s, "u", "bravo"); !slices.Equal(all, []uint32{2}) || len(sure) != 0 {
		t.Fatalf("search bravo with the old index: %v (sure %v), want [2] not sure", all, sure)
	}
	if p := problems(t, s); len(p) != 0 {
		t.Fatalf("Check after the reopen: %+v", p)
	}
	indexNow(t, s)
	if all, sure := textHits(t, s, "u", "bravo"); !slices.Equal(all, []uint32{2}) || !slices.Equal(sure, []uint32{2}) {
		t.Fatalf("search bravo indexed again: %v (sure %v)", all, sure)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	undoTextIndexFile(t, dir)
	s = openTest(t, dir, Options{noTextIndexer: true})
	if all, sure := textHits(t, s, "u", "alpha"); !slices.Equal(all, []uint32{1, 2}) || len(sure) != 0 {
		t.Fatalf("search alpha without textindex.db: %v (sure %v), want every message, none sure", all, sure)
	}
	indexNow(t, s)
	if all, sure := textHits(t, s, "u", "alpha"); !slices.Equal(all, []uint32{1}) || !slices.Equal(sure, []uint32{1}) {
		t.Fatalf("search alpha rebuilt: %v (sure %v)", all, sure)
	}
	ftsIntact(t, s)
}

// TestTextIndexForeignFile: a textindex.db that is another program's is
// refused, and left as it was.
func TestTextIndexForeignFile(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	undoTextIndexFile(t, dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, textIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE theirs (x)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(context.Background(), dir, Options{}); !errors.Is(err, ErrForeignDataDir) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open with a foreign %s: %v, want ErrForeignDataDir", textIndexFile, err)
	}
}
