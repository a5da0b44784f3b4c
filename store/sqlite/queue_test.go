package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/queue/queuetest"
)

// TestQueueConformance runs the queue.Store suite.
func TestQueueConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Store {
		return openTest(t, t.TempDir(), Options{})
	})
}

// The scheduler's queries find due recipients through the queue_due
// index, not by reading every row: a backlog waiting for later costs a
// claim nothing.
func TestQueueClaimUsesIndex(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	now := time.Now().UnixNano()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SELECT msg, idx FROM queue_recipients WHERE held = 0 AND next_attempt <= ? AND lease_until <= ? ORDER BY next_attempt LIMIT ?`, []any{now, now, 100}},
		{`SELECT next_attempt FROM queue_recipients WHERE held = 0 AND lease_until <= ? ORDER BY next_attempt LIMIT 1`, []any{now}},
	} {
		rows, err := s.rdb.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, "USING INDEX queue_due") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("plan of %q: %s", q.sql, p)
		}
	}
}
