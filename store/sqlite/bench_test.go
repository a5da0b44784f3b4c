package sqlite

import (
	"bytes"
	"context"
	"fmt"
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
