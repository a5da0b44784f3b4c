package sqlite

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/storetest"
)

// undoMigrationV10 takes a version 10 database back to version 9, for
// tests of the migrations: the index tables again in mail.db (empty; the
// entries' states are reset by the migration anyway). text_docs keeps
// its AUTOINCREMENT, which changes nothing for versions 5 to 9.
var undoMigrationV10 = []string{
	"CREATE VIRTUAL TABLE text_fts USING fts5(header, body, content='', contentless_delete=1, tokenize='trigram case_sensitive 1')",
	"CREATE VIRTUAL TABLE text_words USING fts5(header, body, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 0')",
	"CREATE VIRTUAL TABLE text_words_row USING fts5vocab(text_words, 'row')",
	"CREATE VIRTUAL TABLE text_words_inst USING fts5vocab(text_words, 'instance')",
	"PRAGMA user_version = 9",
}

// undoTextIndexFile removes textindex.db, which releases before version
// 10 did not have.
func undoTextIndexFile(t *testing.T, dir string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(filepath.Join(dir, textIndexFile+suffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

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

// TestFuzzyIndexMigrationAndReindex: messages stored before version 10
// are not in the word index after the migration, so every fuzzy search
// returns them undecided (the caller reads them), until they are indexed
// again (the background indexer, or ReindexText); a message stored after
// the migration is decided once indexed.
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
	rawDB(t, dir, append(slices.Clone(undoMigrationV10), undoMigrationV9...)...)
	undoTextIndexFile(t, dir)
	s = openTest(t, dir, Options{noTextIndexer: true})
	appendBody("another mesage")
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
	if sure, unsure := search(); len(sure) != 0 || !slices.Equal(unsure, []uint32{1, 2, 3}) {
		t.Fatalf("before reindex: sure %v, undecided %v; want none and [1 2 3]", sure, unsure)
	}
	if _, err := s.ReindexText(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if sure, unsure := search(); !slices.Equal(sure, []uint32{1, 3}) || len(unsure) != 0 {
		t.Fatalf("after reindex: sure %v, undecided %v; want [1 3] and none", sure, unsure)
	}
	ftsIntact(t, s)
}
