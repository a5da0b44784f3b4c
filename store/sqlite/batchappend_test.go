package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// TestAppendBatchStatements: AppendBatch of 100 messages runs one
// request of 13 writer statements, transaction control included: BEGIN,
// the UIDs (mailbox look-up included), the usage (quota check included),
// the rows and their text_docs rows in inserts of 32, 32, 32 and 4 rows
// each, the status read and COMMIT, where 100 Appends run about 600.
func TestAppendBatchStatements(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	mustAccount(t, s, "u", store.Quota{})
	const n = 100
	msgs := make([]store.AppendMessage, n)
	for i := range msgs {
		msgs[i] = store.AppendMessage{Body: strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nmessage %d\r\n", i, i)), Options: store.AppendOptions{DeferTextIndex: true}}
	}
	s0, c0 := s.statements.Load(), s.commits.Load()
	got, err := s.AppendBatch(ctx, "u", "INBOX", msgs)
	if err != nil {
		t.Fatal(err)
	}
	if st, c := s.statements.Load()-s0, s.commits.Load()-c0; st != 13 || c != 1 {
		t.Fatalf("%d statements in %d commits for a batch of %d, want 13 in 1", st, c, n)
	}
	if len(got) != n || got[n-1].UID != n {
		t.Fatalf("%d messages appended, the last UID %d", len(got), got[len(got)-1].UID)
	}
	var docs int
	if err := s.rdb.QueryRowContext(ctx, "SELECT count(*) FROM text_docs WHERE state = ?", textMissing).Scan(&docs); err != nil || docs != n {
		t.Fatalf("%d text_docs rows waiting for the indexer (%v), want %d", docs, err, n)
	}
	// The background indexer's pass fills them as it fills Append's.
	if done, err := s.IndexPendingText(ctx); err != nil || done != n {
		t.Fatalf("indexed %d (%v), want %d", done, err, n)
	}
	if err := s.rdb.QueryRowContext(ctx, "SELECT count(*) FROM text_docs WHERE state = ?", textMissing).Scan(&docs); err != nil || docs != 0 {
		t.Fatalf("%d text_docs rows still waiting (%v)", docs, err)
	}
	ftsIntact(t, s)
}
