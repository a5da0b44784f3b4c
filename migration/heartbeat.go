package migration

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mailyard/mailyard/store"
)

// interruptMailboxes marks targets of run as interrupted, in batches, each
// with the run's adjusted totals, and returns the run as last written.
// notReached is the message of a mailbox whose pass never started. The
// caller holds runMu.
func (m *Migrator) interruptMailboxes(ctx context.Context, run Run, targets []string, notReached string) (Run, error) {
	now := m.runTime()
	for len(targets) > 0 {
		batch := targets[:min(len(targets), recordBatch)]
		targets = targets[len(batch):]
		next := run
		err := m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
			next = run
			next.Heartbeat = now
			for _, target := range batch {
				rm, err := getRunMailbox(tx, run.ID, target)
				if err != nil {
					return err
				}
				adjustTotals(&next, rm.Status, -1)
				rm.Status, rm.Class = RunMailboxInterrupted, ErrClassCanceled
				if rm.Ended.IsZero() {
					rm.Ended = now
				}
				if rm.Started.IsZero() {
					rm.Message = notReached
				}
				adjustTotals(&next, rm.Status, +1)
				if err := txPutJSON(tx, nsRunMailbox, runMailboxKey(run.ID, rm.Target), rm); err != nil {
					return err
				}
			}
			return txPutJSON(tx, nsRun, runKey(run.ID), next)
		})
		if err != nil {
			return run, fmt.Errorf("migration: run %d: mark interrupted: %w", run.ID, err)
		}
		run = next
	}
	return run, nil
}

// heartbeat refreshes the run's heartbeat every HeartbeatEvery until the
// returned function is called.
func (r *runner) heartbeat() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(HeartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := r.beat(); err != nil {
					r.m.log.Warn("run heartbeat", "run", r.id, "err", err)
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// beat records a new heartbeat unless the run has ended.
func (r *runner) beat() error {
	return r.saveRun(func(run *Run) bool {
		if !run.Ended.IsZero() {
			return false
		}
		run.Heartbeat = r.m.runTime()
		return true
	})
}

// saveRun applies change to a copy of the run and, unless change returns
// false, records the copy and keeps it.
func (r *runner) saveRun(change func(*Run) bool) error {
	m := r.m
	m.runMu.Lock()
	defer m.runMu.Unlock()
	r.mu.Lock()
	run := r.run
	r.mu.Unlock()
	if !change(&run) {
		return nil
	}
	ctx, cancel := bookkeepingContext()
	defer cancel()
	err := m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return txPutJSON(tx, nsRun, runKey(run.ID), run)
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.run = run
	r.mu.Unlock()
	return nil
}

// recoverAbandoned records as interrupted the recent runs still marked
// running or collecting whose heartbeat stopped more than AbandonAfter
// ago: their process was killed before it could say so.
func (m *Migrator) recoverAbandoned(ctx context.Context) error {
	runs, err := m.Runs(ctx, 0, maxAbandonedScan)
	if err != nil {
		return err
	}
	now := m.runTime()
	for _, run := range runs {
		if run.State != RunRunning && run.State != RunCollecting {
			continue
		}
		seen := run.Heartbeat
		if seen.IsZero() {
			seen = run.Started
		}
		if now.Sub(seen) < AbandonAfter {
			continue
		}
		if err := m.interruptAbandoned(ctx, run, seen, now); err != nil {
			return err
		}
	}
	return nil
}

func (m *Migrator) interruptAbandoned(ctx context.Context, run Run, seen, now time.Time) error {
	var targets []string
	after := ""
	for {
		mbs, err := m.RunMailboxes(ctx, run.ID, after, MaxHistoryLimit)
		if err != nil {
			return err
		}
		for _, rm := range mbs {
			if rm.Status == RunMailboxQueued || rm.Status == RunMailboxRunning {
				targets = append(targets, rm.Target)
			}
		}
		if len(mbs) < MaxHistoryLimit {
			break
		}
		after = mbs[len(mbs)-1].Target
	}
	m.runMu.Lock()
	defer m.runMu.Unlock()
	run, err := m.interruptMailboxes(ctx, run, targets, "not reached: the run's process was killed first")
	if err != nil {
		return err
	}
	run.State, run.Ended = RunInterrupted, now
	run.Error = "abandoned: no heartbeat since " + seen.Format(time.RFC3339) + " (the process was killed)"
	err = m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return txPutJSON(tx, nsRun, runKey(run.ID), run)
	})
	if err != nil {
		return fmt.Errorf("migration: run %d: record as abandoned: %w", run.ID, err)
	}
	m.log.Warn("run abandoned; recorded as interrupted", "run", run.ID, "last_heartbeat", seen)
	return nil
}
