package postgres

import (
	"testing"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/queue/queuetest"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, freshDB(t), Options{})
	})
}

func TestReopen(t *testing.T) {
	dsns := map[string]string{}
	storetest.RunReopen(t, func(t *testing.T, dir string) store.Store {
		if dsns[dir] == "" {
			dsns[dir] = freshDB(t)
		}
		return openTest(t, dsns[dir], Options{})
	})
}

func TestQueueConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Store {
		return openTest(t, freshDB(t), Options{})
	})
}
