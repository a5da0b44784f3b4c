package ews_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/lease"
)

// stallingTarget is a migrator's view of the store whose first Append
// waits until released, so that its pass stays in the middle of its
// copy, and which stops writing records once dead is set: a process
// killed with its lease in the store.
type stallingTarget struct {
	ews.Target
	started chan struct{}
	release chan struct{}
	once    sync.Once
	dead    atomic.Bool
}

func (s *stallingTarget) Append(ctx context.Context, account, mailbox string, r io.Reader, opts store.AppendOptions) (store.Message, error) {
	s.once.Do(func() { close(s.started) })
	select {
	case <-s.release:
	case <-ctx.Done():
		return store.Message{}, ctx.Err()
	}
	if s.dead.Load() {
		return store.Message{}, errDead
	}
	return s.Target.Append(ctx, account, mailbox, r, opts)
}

func (s *stallingTarget) UpdateRecords(ctx context.Context, fn func(tx store.RecordTx) error) error {
	if s.dead.Load() {
		return errDead
	}
	return s.Target.UpdateRecords(ctx, fn)
}

// TestMigratorLease: while one Migrator copies a mailbox, a second
// Migrator's pass of the same target fails at once with the mailbox
// busy (migration.ErrBusy, class config, naming the holder) and copies
// nothing; when the first dies with its lease in the store, the second
// takes the target over once the lease has expired, not before, and
// copies what the first left, once. Regression: both copied at once.
func TestMigratorLease(t *testing.T) {
	srv := newTestServer(t, ewstest.Options{})
	if err := srv.ews.Generate(owner, ewstest.Generate{Messages: 20, CalendarItems: 3, Contacts: 2}); err != nil {
		t.Fatal(err)
	}
	st, dir, account := newTarget(t)
	client := srv.client(t, nil)
	const ttl = 6 * time.Second
	newMigrator := func(target ews.Target) *ews.Migrator {
		t.Helper()
		m, err := ews.NewMigrator(ews.MigratorOptions{Store: target, Directory: dir, Client: client, LeaseTTL: ttl, FolderParallel: 1})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	first := &stallingTarget{Target: st, started: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := newMigrator(first).Sync(ctx, testJob); done <- err }()
	select {
	case <-first.started:
	case <-time.After(60 * time.Second):
		t.Fatal("the first pass did not start copying")
	}

	second := newMigrator(st)
	res, err := second.Sync(t.Context(), testJob)
	if !errors.Is(err, migration.ErrBusy) || migration.ClassOf(err) != migration.ErrClassConfig {
		t.Fatalf("a second pass while the first copies: %v (class %s)", err, migration.ClassOf(err))
	}
	if res.Messages != 0 || res.Events != 0 {
		t.Errorf("the refused pass copied: %+v", res)
	}

	// The first dies: its lease stays in the store, renewed no more.
	r, err := st.GetRecord(t.Context(), "migration.ews.pass", targetAddr)
	if err != nil {
		t.Fatalf("the first pass's lease: %v", err)
	}
	var h lease.Holder
	if err := store.DecodeJSON(r, &h); err != nil {
		t.Fatal(err)
	}
	first.dead.Store(true)
	cancel()
	close(first.release)
	if err := <-done; err == nil {
		t.Fatal("the dead pass succeeded")
	}
	if s, err := st.Status(t.Context(), account, store.Inbox); err == nil && s.Messages != 0 {
		t.Fatalf("the dead pass copied %d messages", s.Messages)
	}

	var took time.Time
	waitFor(t, 60*time.Second, "the second migrator taking the target over", func() bool {
		res, err = second.Sync(t.Context(), testJob)
		if errors.Is(err, migration.ErrBusy) {
			time.Sleep(200 * time.Millisecond)
			return false
		}
		took = time.Now()
		return true
	})
	if err != nil {
		t.Fatalf("the pass after the takeover: %v", err)
	}
	if took.Before(h.Expires) {
		t.Errorf("the second migrator took the target over at %v, before the dead holder's lease expired at %v", took, h.Expires)
	}
	// The dead pass had stored the calendar and the contacts before it
	// stalled on the mail; the takeover copies the mail, once.
	if res.Messages != 20 {
		t.Errorf("the pass after the takeover copied %d messages, want 20", res.Messages)
	}
	if s, err := st.Status(t.Context(), account, store.Inbox); err != nil || s.Messages != 20 {
		t.Errorf("INBOX after the takeover: %d messages (%v), want 20", s.Messages, err)
	}
	if res, err := second.Sync(t.Context(), testJob); err != nil || res.Messages+int64(res.Events+res.Contacts) != 0 {
		t.Errorf("one more pass: %+v %v", res, err)
	}
}
