package sqlite

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// TestTextIndexMigrationAndReindex: messages stored before version 5
// have no index entry, so every search returns them (a scan checks
// them), until ReindexText reads them; then the index narrows.
func TestTextIndexMigrationAndReindex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"alpha words", "beta words", "gamma words"} {
		if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: x\r\n\r\n"+body+"\r\n"), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Back to version 4: no index tables, no STATUS counts, no save dates.
	rawDB(t, dir, append(append(append(append(slices.Clone(undoMigrationV10), undoMigrationV9...), "DROP TABLE metadata"), undoMigrationV6...), "DROP TABLE text_fts", "DROP TABLE text_docs", "ALTER TABLE messages DROP COLUMN save_date", "PRAGMA user_version = 4")...)
	undoTextIndexFile(t, dir)
	// Without the background indexer, which would fill the entries
	// (TestDeferredTextIndex covers it).
	s = openTest(t, dir, Options{noTextIndexer: true})
	search := func(word string) []uint32 {
		t.Helper()
		hits, err := s.SearchText(ctx, "u", store.Inbox, []store.TextTerm{{Field: store.TextBody, Value: word}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint32
		for _, h := range hits {
			out = append(out, h.UID)
		}
		return out
	}
	if got := search("beta"); !slices.Equal(got, []uint32{1, 2, 3}) {
		t.Fatalf("before reindex: %v, want every message (not indexed yet)", got)
	}
	if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: y\r\n\r\ndelta beta\r\n"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := search("beta"); !slices.Equal(got, []uint32{1, 2, 3, 4}) {
		t.Fatalf("before reindex, with a new message: %v", got)
	}
	if got := search("delta"); !slices.Equal(got, []uint32{1, 2, 3, 4}) {
		t.Fatalf("before reindex: %v, want the unindexed three and the new one", got)
	}
	if _, err := s.ReindexText(ctx, "nobody"); err == nil {
		t.Fatal("ReindexText of a missing account succeeded")
	}
	n, err := s.ReindexText(ctx, "u")
	if err != nil || n != 4 {
		t.Fatalf("ReindexText: %d, %v; want 4 blobs", n, err)
	}
	if got := search("beta"); !slices.Equal(got, []uint32{2, 4}) {
		t.Fatalf("after reindex: %v, want [2 4]", got)
	}
	if got := search("delta"); !slices.Equal(got, []uint32{4}) {
		t.Fatalf("after reindex: %v, want [4]", got)
	}
}

// TestTextIndexPartial: a message whose text is over the index's bound
// is indexed in part and found by every search.
func TestTextIndexPartial(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	big := "Subject: big\r\n\r\n" + strings.Repeat("filler line of text\r\n", maxIndexedText/20) + "needle\r\n"
	for _, m := range []string{"Subject: small\r\n\r\nhay\r\n", big} {
		if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader(m), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	indexNow(t, s)
	hits, err := s.SearchText(ctx, "u", store.Inbox, []store.TextTerm{{Field: store.TextAll, Value: "needle"}}, nil)
	if err != nil || len(hits) != 1 || hits[0].UID != 2 || hits[0].Sure {
		t.Fatalf("SearchText needle: %+v, %v; want maybe [2] (indexed in part)", hits, err)
	}
	hits, err = s.SearchText(ctx, "u", store.Inbox, []store.TextTerm{{Field: store.TextAll, Value: "absent"}}, nil)
	if err != nil || len(hits) != 1 || hits[0].UID != 2 || hits[0].Sure {
		t.Fatalf("SearchText absent: %+v, %v; want maybe [2] (indexed in part)", hits, err)
	}
}
