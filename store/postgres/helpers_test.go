package postgres

import (
	"context"
	"testing"

	"github.com/mailyard/mailyard/internal/pgtest"
)

// freshDB is a new empty database, dropped when the test ends
// (internal/pgtest).
func freshDB(t testing.TB) string { return pgtest.FreshDB(t) }

// openTest opens a Store on dsn, closed when the test ends.
func openTest(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
