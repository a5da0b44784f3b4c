package postgres

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

// Writes to one account queued behind its row lock hold one pool
// connection between them, not one each: the reads and writes of
// another account still get a connection at once, and the queued
// writes all go through once the lock is free.
func TestAccountWritesQueueWithoutConnections(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	s := openTest(t, dsn, Options{PoolSize: 4})
	for _, id := range []string{"u", "v"} {
		if _, err := s.CreateAccount(ctx, id, store.Quota{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, "u", "INBOX", strings.NewReader("x"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another node's transaction holds u's row.
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE id = 'u' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	const writers = 6
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				_, err = s.Append(ctx, "u", "INBOX", strings.NewReader("y"), store.AppendOptions{})
			} else {
				_, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 1, Stop: 1}}, Op: store.FlagsAdd, Flags: []string{store.FlagSeen}})
			}
			errs <- err
		}()
	}
	// Let them all reach the lock (or the gate).
	time.Sleep(300 * time.Millisecond)
	if n := s.pool.Stat().AcquiredConns(); n > 1 {
		t.Errorf("%d pool connections held by writes waiting for one account's lock, want at most 1", n)
	}
	// v's read and write go through while u's writes wait.
	vctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.Append(vctx, "v", "INBOX", strings.NewReader("z"), store.AppendOptions{}); err != nil {
		t.Fatalf("Append to another account while u's writes wait: %v", err)
	}
	if _, err := s.Status(vctx, "v", "INBOX"); err != nil {
		t.Fatalf("Status of another account while u's writes wait: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a queued write: %v", err)
		}
	}
	st, err := s.Status(ctx, "u", "INBOX")
	if err != nil || st.Messages != 1+writers/2 {
		t.Fatalf("u's INBOX: %+v, %v; want %d messages", st, err, 1+writers/2)
	}
}

// A write whose context ends while it waits at the gate returns the
// context's error, and the gate is left to the others.
func TestAccountGateContext(t *testing.T) {
	var g accountGates
	release, err := g.enter(context.Background(), "u")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := g.enter(ctx, "u"); err != context.DeadlineExceeded {
		t.Fatalf("enter while held: %v, want the context's deadline", err)
	}
	other, err := g.enter(context.Background(), "v")
	if err != nil {
		t.Fatal(err)
	}
	other()
	release()
	again, err := g.enter(context.Background(), "u")
	if err != nil {
		t.Fatal(err)
	}
	again()
	if len(g.m) != 0 {
		t.Fatalf("%d gates left with no writer", len(g.m))
	}
}
