package sqlite

import (
	"context"
	"testing"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/storetest"
)

func openTest(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, t.TempDir(), Options{})
	})
}

func TestConformanceWithWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("second full run skipped in -short mode")
	}
	// A group-commit window batches more aggressively; every guarantee
	// must still hold.
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, t.TempDir(), Options{GroupCommitWindow: 2e6, MaxBatch: 8})
	})
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T, dir string) store.Store {
		return openTest(t, dir, Options{})
	})
}

func TestTextSearch(t *testing.T) {
	storetest.RunTextSearch(t, func(t *testing.T, dir string) store.Store {
		return openTest(t, dir, Options{})
	})
}

func TestTextSearchScan(t *testing.T) {
	storetest.RunTextSearchScan(t, func(t *testing.T) store.Store {
		return openTest(t, t.TempDir(), Options{})
	})
}
