package memstore

import (
	"testing"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/storetest"
)

// TestConformance runs the backend-neutral suite. storetest.RunReopen
// does not apply: a memory store has no persistent state to reopen.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := New(Options{})
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}
