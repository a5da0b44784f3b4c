package sqlite

import (
	"context"
	"slices"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// TestMetadataMigration: a version 7 database gets the metadata table at
// Open (version 8) and keeps its mail; entries then work and survive a
// reopen.
func TestMetadataMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawDB(t, dir, append(append(slices.Clone(undoMigrationV10), undoMigrationV9...), "DROP TABLE metadata", "PRAGMA user_version = 7")...)
	s = openTest(t, dir, Options{})
	set := []store.MetadataEntry{{Name: "/shared/comment", Value: []byte("kept")}}
	if err := s.SetMetadata(ctx, "u", "INBOX", set, store.MetadataLimits{}); err != nil {
		t.Fatalf("SetMetadata after the migration: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	got, err := s.Metadata(ctx, "u", "INBOX")
	if err != nil || len(got) != 1 || got[0].Name != "/shared/comment" || string(got[0].Value) != "kept" {
		t.Fatalf("Metadata after reopening = %+v, %v; want the entry set before", got, err)
	}
}
