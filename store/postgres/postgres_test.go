package postgres

import (
	"strings"
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

// The pool is DefaultPoolSize unless Options or the DSN set its size.
func TestPoolSize(t *testing.T) {
	dsn := freshDB(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	for _, c := range []struct {
		dsn  string
		opts Options
		want int32
	}{
		{dsn, Options{}, DefaultPoolSize},
		{dsn, Options{PoolSize: 5}, 5},
		{dsn + sep + "pool_max_conns=3", Options{}, 3},
		{dsn + sep + "pool_max_conns=3", Options{PoolSize: 7}, 7},
	} {
		s := openTest(t, c.dsn, c.opts)
		if got := s.pool.Config().MaxConns; got != c.want {
			t.Errorf("DSN %q, PoolSize %d: pool of %d, want %d", c.dsn, c.opts.PoolSize, got, c.want)
		}
	}
}
