package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// TestAppendBatchStatements: AppendBatch sends a constant number of
// statements for a batch of small messages (the bodies in one upload,
// then BEGIN with the account's and mailbox's locks, the rows, the feed
// and COMMIT: 7 in 3 round trips, where 100 Appends send 700 in 300),
// one more upload per batchUploadBytes of bodies, and a longer body's
// chunks by themselves. Every body reads back whole and gets its
// full-text entry; a refused batch leaves no blob behind.
func TestAppendBatchStatements(t *testing.T) {
	tr := &countTracer{}
	s := openTest(t, freshDB(t), Options{Tracer: tr})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{MaxMessages: 400}); err != nil {
		t.Fatal(err)
	}
	batch := func(sizes ...int) ([]store.AppendMessage, []string) {
		msgs, want := make([]store.AppendMessage, len(sizes)), make([]string, len(sizes))
		for i, n := range sizes {
			head := fmt.Sprintf("Subject: m%d\r\n\r\nword%dx ", i, i)
			want[i] = head + strings.Repeat("z", max(0, n-len(head)))
			msgs[i] = store.AppendMessage{Body: strings.NewReader(want[i]), Options: store.AppendOptions{Flags: []string{store.FlagSeen}}}
		}
		return msgs, want
	}
	type cost struct{ stmts, trips int64 }
	appendBatch := func(msgs []store.AppendMessage) ([]store.Message, cost) {
		t.Helper()
		n, r := tr.n.Load(), tr.trips.Load()
		got, err := s.AppendBatch(ctx, "u", "INBOX", msgs)
		if err != nil {
			t.Fatal(err)
		}
		return got, cost{tr.n.Load() - n, tr.trips.Load() - r}
	}
	check := func(name string, got []store.Message, want []string) {
		t.Helper()
		// The indexer writes the entries after the commit (textindexer.go).
		if _, err := s.IndexPendingText(ctx); err != nil {
			t.Fatal(err)
		}
		for i, m := range got {
			rc, err := s.OpenBody(ctx, "u", "INBOX", m.UID)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(b, []byte(want[i])) {
				t.Fatalf("%s: body of message %d: %d bytes (%v), want %d", name, i, len(b), err, len(want[i]))
			}
			hits, err := s.SearchText(ctx, "u", "INBOX", []store.TextTerm{{Field: store.TextBody, Value: fmt.Sprintf("word%dx", i)}}, store.UIDSet{{Start: m.UID, Stop: m.UID}})
			if err != nil || len(hits) != 1 || !hits[0].Sure {
				t.Fatalf("%s: message %d: SearchText found %+v (%v), want it indexed whole", name, i, hits, err)
			}
		}
	}

	small := make([]int, 100)
	for i := range small {
		small[i] = 200
	}
	msgs, want := batch(small...)
	got, c100 := appendBatch(msgs)
	check("100 small", got, want)

	large := make([]int, 100) // 100 × 50 KiB: two uploads of bodies
	for i := range large {
		large[i] = 50 << 10
	}
	msgs, want = batch(large...)
	got, c5m := appendBatch(msgs)
	check("100 of 50 KiB", got, want)

	msgs, want = batch(100, 2*chunkSize+10, 100) // a body of three chunks between two small ones
	got, cMixed := appendBatch(msgs)
	check("three chunks", got, want)

	t.Logf("statements/round trips: 100 small %v, 100 of 50 KiB %v, one of three chunks between two small %v", c100, c5m, cMixed)
	for name, c := range map[string][2]cost{
		"100 small":    {c100, {7, 3}},
		"100 of 50KiB": {c5m, {8, 4}},
		"three chunks": {cMixed, {10, 6}},
	} {
		if got, want := c[0], c[1]; got != want {
			t.Errorf("AppendBatch of %s took %d statements in %d round trips, want %d in %d", name, got.stmts, got.trips, want.stmts, want.trips)
		}
	}

	// Over quota (203 + 200 > 400): the batch is refused after its
	// upload, and its bodies are discarded, not left for the sweep.
	msgs, _ = batch(make([]int, 200)...)
	if _, err := s.AppendBatch(ctx, "u", "INBOX", msgs); err == nil {
		t.Fatal("AppendBatch over quota succeeded")
	}
	var loose int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM blobs WHERE loose_since IS NOT NULL`).Scan(&loose); err != nil || loose != 0 {
		t.Fatalf("%d loose blobs after the refused batch (%v), want 0", loose, err)
	}
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Check: %v %v", p, err)
	}
}

// BenchmarkAppendBatchCost compares 100 messages of 4 KiB appended one
// by one (Append) and as one batch (AppendBatch), per message: the
// statements, the CPU time (user+sys) of the PostgreSQL backends
// serving the Store (from /proc, as BenchmarkDeliverCost reads it:
// skipped where the server is not on this machine) and this process's
// wall time. One iteration is 100 messages; the CPU clock ticks in
// 10 ms steps, so run a few dozen (-benchtime=30x).
func BenchmarkAppendBatchCost(b *testing.B) {
	const perOp = 100
	body := "From: a@example.org\r\nTo: u@example.org\r\nSubject: cost\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 63)
	for _, batched := range []bool{false, true} {
		name := map[bool]string{false: "append", true: "batch"}[batched]
		b.Run(name, func(b *testing.B) {
			tr := &countTracer{}
			s := openTest(b, freshDB(b), Options{Tracer: tr})
			ctx := context.Background()
			if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
				b.Fatal(err)
			}
			add := func() {
				msgs := make([]store.AppendMessage, perOp)
				for i := range msgs {
					msgs[i] = store.AppendMessage{Body: strings.NewReader(body)}
				}
				if batched {
					if _, err := s.AppendBatch(ctx, "u", "INBOX", msgs); err != nil {
						b.Fatal(err)
					}
					return
				}
				for _, m := range msgs {
					if _, err := s.Append(ctx, "u", "INBOX", m.Body, m.Options); err != nil {
						b.Fatal(err)
					}
				}
			}
			add() // the pool's connections made, outside the count
			before := backendCPU(b, s)
			n0 := tr.n.Load()
			for b.Loop() {
				add()
			}
			after := backendCPU(b, s)
			var ticks int64
			for pid, t := range after {
				ticks += t - before[pid]
			}
			msgs := float64(b.N * perOp)
			b.ReportMetric(float64(ticks)*1e6/float64(clockTicks)/msgs, "pg-cpu-µs/msg")
			b.ReportMetric(float64(tr.n.Load()-n0)/msgs, "stmts/msg")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/msgs, "µs/msg")
		})
	}
}
