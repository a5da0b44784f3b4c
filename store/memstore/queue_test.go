package memstore

import (
	"testing"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/queue/queuetest"
)

// TestQueueConformance runs the queue.Store suite.
func TestQueueConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Store {
		s := New(Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
