package sqlite

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/storetest"
)

// undoMigrationV9 takes a version 9 database back to version 8, for
// tests of the migration.
var undoMigrationV9 = []string{
	"DROP TABLE text_words_inst", "DROP TABLE text_words_row", "DROP TABLE text_words",
	"DROP INDEX text_docs_nowords", "ALTER TABLE text_docs DROP COLUMN words",
	"PRAGMA user_version = 8",
}

func TestFuzzySearch(t *testing.T) {
	storetest.RunFuzzySearch(t, func(t *testing.T) store.Store {
		return openTest(t, t.TempDir(), Options{})
	})
}

// TestFuzzyIndexMigrationAndReindex: messages stored before version 9
// are not in the word index, so every fuzzy search returns them
// undecided (the caller reads them), until ReindexText reads them; a
// message stored after the migration is decided at once.
func TestFuzzyIndexMigrationAndReindex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	appendBody := func(body string) {
		t.Helper()
		if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader("Subject: x\r\n\r\n"+body+"\r\n"), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	appendBody("an important message")
	appendBody("nothing else")
	indexNow(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawDB(t, dir, undoMigrationV9...)
	s = openTest(t, dir, Options{})
	appendBody("another mesage")
	indexNow(t, s)
	search := func() (sure, unsure []uint32) {
		t.Helper()
		hits, err := s.SearchFuzzy(ctx, "u", store.Inbox, []store.TextTerm{{Field: store.TextBody, Value: "message"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hits {
			if h.Sure {
				sure = append(sure, h.UID)
			} else {
				unsure = append(unsure, h.UID)
			}
		}
		return sure, unsure
	}
	if sure, unsure := search(); !slices.Equal(sure, []uint32{3}) || !slices.Equal(unsure, []uint32{1, 2}) {
		t.Fatalf("before reindex: sure %v, undecided %v; want [3] and [1 2]", sure, unsure)
	}
	if _, err := s.ReindexText(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if sure, unsure := search(); !slices.Equal(sure, []uint32{1, 3}) || len(unsure) != 0 {
		t.Fatalf("after reindex: sure %v, undecided %v; want [1 3] and none", sure, unsure)
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("Check: %v, %v", problems, err)
	}
}
