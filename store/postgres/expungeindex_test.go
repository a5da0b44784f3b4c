package postgres

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

// EXPUNGE's read of the messages flagged \Deleted goes through index
// messages_deleted, planned generically as the pool plans it
// (plan_cache_mode), so it reads those messages and not the mailbox.
func TestExpungeReadsDeletedIndex(t *testing.T) {
	ctx := ctxFor(t)
	s := openTest(t, freshDB(t), Options{})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	msgs := make([]store.AppendMessage, 500)
	for i := range msgs {
		msgs[i] = store.AppendMessage{Body: strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))}
	}
	if _, err := s.AppendBatch(ctx, "u", "INBOX", msgs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 7, Stop: 8}}, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "ANALYZE messages"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "PREPARE expunge_read AS "+selectLockedSQL(deletedSQL)); err != nil {
		t.Fatal(err)
	}
	// EXPLAIN takes no parameters: the UID set 1:* as uidRanges gives it.
	lo, hi := uidRanges(store.UIDSet{{Start: 1, Stop: 0}})
	rows, err := conn.Query(ctx, fmt.Sprintf("EXPLAIN EXECUTE expunge_read('u', 'INBOX', '{%d}', '{%d}')", lo[0], hi[0]))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "messages_deleted") {
		t.Fatalf("plan of EXPUNGE's read does not use messages_deleted:\n%s", p)
	}
	uids, err := s.Expunge(ctx, "u", "INBOX", nil)
	if err != nil || len(uids) != 2 || uids[0] != 7 || uids[1] != 8 {
		t.Fatalf("expunged %v, %v; want [7 8]", uids, err)
	}
}
