package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// Run with: go test -run '^$' -bench . -benchmem ./store/sqlite/

func benchDeliver(b *testing.B, recipients int) {
	ctx := context.Background()
	s := openBench(b)
	var rcpts []store.Recipient
	for i := range recipients {
		id := fmt.Sprint("r", i)
		if _, err := s.CreateAccount(ctx, id, store.Quota{}); err != nil {
			b.Fatal(err)
		}
		rcpts = append(rcpts, store.Recipient{Account: id})
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB
	c0, b0 := s.commits.Load(), s.batched.Load()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Deliver(ctx, store.Delivery{Recipients: rcpts}, bytes.NewReader(body)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if c := s.commits.Load() - c0; c > 0 {
		b.ReportMetric(float64(s.batched.Load()-b0)/float64(c), "req/commit")
	}
}

func openBench(b *testing.B) *Store {
	s, err := Open(context.Background(), b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkDeliverParallel measures concurrent deliveries of a 4 KiB body
// (GOMAXPROCS goroutines; use -cpu to vary), which group commit batches.
func BenchmarkDeliverParallel(b *testing.B) {
	for _, n := range []int{1, 5} {
		b.Run(fmt.Sprintf("rcpt=%d", n), func(b *testing.B) {
			b.SetParallelism(8)
			benchDeliver(b, n)
		})
	}
}

// BenchmarkAppend measures sequential appends of a 4 KiB body: every
// call pays its own fsyncs.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	s := openBench(b)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 256)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Append(ctx, "u", "INBOX", bytes.NewReader(body), store.AppendOptions{Flags: []string{store.FlagSeen}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListMessages lists a mailbox of 10,000 messages.
func BenchmarkListMessages(b *testing.B) {
	ctx := context.Background()
	s := openBench(b)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		b.Fatal(err)
	}
	const n = 10000
	// Fill through the writer in large batches: one transaction per
	// request is what the benchmark is not about.
	body := []byte("Subject: x\r\n\r\nbody\r\n")
	blob, size, err := s.blobs.write(ctx, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	err = s.write(ctx, func(tx *wtx) error {
		m, err := tx.mailbox("u", "INBOX")
		if err != nil {
			return err
		}
		first, ms, err := tx.allocUIDs(m.ID, n)
		if err != nil {
			return err
		}
		for i := range n {
			msg := store.Message{UID: first + uint32(i), ModSeq: ms, Flags: []string{"$Label", store.FlagSeen}, InternalDate: s.now(), Size: size, BlobID: blob}
			if err := tx.insertMessage(m.ID, msg); err != nil {
				return err
			}
		}
		return tx.addUsage("u", size*n, n)
	})
	if err != nil {
		b.Fatal(err)
	}
	s.blobs.settle(blob)
	b.ResetTimer()
	for b.Loop() {
		msgs, err := s.ListMessages(ctx, "u", "INBOX", nil)
		if err != nil || len(msgs) != n {
			b.Fatalf("%d messages, %v", len(msgs), err)
		}
	}
}

// BenchmarkAppendText measures concurrent appends (8 goroutines per
// GOMAXPROCS, as a migration's AppendParallel) of 4 KiB messages of
// pseudo-random words, which the full-text index tokenises as it would
// real text, reporting the writer's statements per append and the
// requests per commit. Its CPU time per append (user+sys of the process
// over -benchtime Nx minus 1x) is the store's own cost of a migrated
// message, which load does not distort the way it distorts ns/op.
func BenchmarkAppendText(b *testing.B) {
	ctx := context.Background()
	s := openBench(b)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{MaxBytes: 1 << 40}); err != nil {
		b.Fatal(err)
	}
	words := strings.Fields(`migration mailbox message folder server client archive project meeting report
		budget schedule quarter review invoice contract customer supplier delivery shipment
		agenda minutes summary question answer request approval deadline estimate forecast
		release version feature defect test build deploy monitor alert incident`)
	var seq atomic.Uint64
	body := func(i uint64) []byte {
		r := rand.New(rand.NewPCG(i, 1))
		buf := fmt.Appendf(nil, "From: a@example.org\r\nTo: b@example.com\r\nSubject: message %d\r\n\r\n", i)
		for n := 0; len(buf) < 4096; n++ {
			buf = append(buf, words[r.IntN(len(words))]...)
			buf = fmt.Appendf(buf, "%d", r.IntN(1000))
			if n%12 == 11 {
				buf = append(buf, "\r\n"...)
			} else {
				buf = append(buf, ' ')
			}
		}
		return buf
	}
	st0, c0, b0 := s.statements.Load(), s.commits.Load(), s.batched.Load()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Append(ctx, "u", "INBOX", bytes.NewReader(body(seq.Add(1))), store.AppendOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	// The index is part of the cost, whenever it is written.
	if _, err := s.IndexPendingText(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if n := s.batched.Load() - b0; n > 0 {
		b.ReportMetric(float64(s.statements.Load()-st0)/float64(n), "stmts/op")
		b.ReportMetric(float64(n)/float64(s.commits.Load()-c0), "req/commit")
	}
}
