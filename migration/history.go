package migration

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// History page sizes: a limit <= 0 means DefaultHistoryLimit, and no page
// holds more than MaxHistoryLimit entries.
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 1000
)

func historyLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultHistoryLimit
	case n > MaxHistoryLimit:
		return MaxHistoryLimit
	}
	return n
}

// runKey orders runs newest first: records list by ascending key, so the
// key is the zero-padded complement of the ID.
func runKey(id int64) string { return fmt.Sprintf("%019d", math.MaxInt64-id) }

func runIDFromKey(key string) (int64, error) {
	n, err := strconv.ParseInt(key, 10, 64)
	if err != nil || n < 0 || len(key) != 19 {
		return 0, fmt.Errorf("migration: malformed run key %q", key)
	}
	return math.MaxInt64 - n, nil
}

// runMailboxPrefix is the key prefix of one run's mailboxes, which list
// by target address.
func runMailboxPrefix(id int64) string { return fmt.Sprintf("%019d/", id) }

func runMailboxKey(id int64, target string) string { return runMailboxPrefix(id) + target }

func getRunMailbox(tx store.RecordTx, id int64, target string) (RunMailbox, error) {
	rec, err := tx.Get(nsRunMailbox, runMailboxKey(id, target))
	if err != nil {
		return RunMailbox{}, err
	}
	var rm RunMailbox
	if err := store.DecodeJSON(rec, &rm); err != nil {
		return RunMailbox{}, fmt.Errorf("migration: run %d mailbox %s: %w", id, target, err)
	}
	return rm, nil
}

func decodeRun(rec store.Record) (Run, error) {
	var r Run
	if err := store.DecodeJSON(rec, &r); err != nil {
		return Run{}, fmt.Errorf("migration: run: %w", err)
	}
	return r, nil
}

// Runs returns up to limit runs with an ID below before (all runs if
// before <= 0), newest first. To page, pass the ID of the last run of a
// page as the next before.
func (m *Migrator) Runs(ctx context.Context, before int64, limit int) ([]Run, error) {
	after := ""
	if before > 0 {
		after = runKey(before)
	}
	recs, err := m.opts.Store.ListRecords(ctx, nsRun, after, historyLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("migration: list runs: %w", err)
	}
	runs := make([]Run, 0, len(recs))
	for _, rec := range recs {
		r, err := decodeRun(rec)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// RunByID returns one run; the error wraps store.ErrNotFound if there is
// none with that ID.
func (m *Migrator) RunByID(ctx context.Context, id int64) (Run, error) {
	if id <= 0 {
		return Run{}, fmt.Errorf("migration: run %d: %w", id, store.ErrNotFound)
	}
	rec, err := m.opts.Store.GetRecord(ctx, nsRun, runKey(id))
	if err != nil {
		return Run{}, fmt.Errorf("migration: run %d: %w", id, err)
	}
	return decodeRun(rec)
}

// RunMailboxes returns up to limit mailboxes of run id with a target
// address after after, by address. The error wraps store.ErrNotFound if
// the run does not exist.
func (m *Migrator) RunMailboxes(ctx context.Context, id int64, after string, limit int) ([]RunMailbox, error) {
	if _, err := m.RunByID(ctx, id); err != nil {
		return nil, err
	}
	prefix := runMailboxPrefix(id)
	recs, err := m.opts.Store.ListRecords(ctx, nsRunMailbox, prefix+after, historyLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("migration: run %d: list mailboxes: %w", id, err)
	}
	out := make([]RunMailbox, 0, len(recs))
	for _, rec := range recs {
		if !strings.HasPrefix(rec.Key, prefix) {
			break
		}
		var rm RunMailbox
		if err := store.DecodeJSON(rec, &rm); err != nil {
			return nil, fmt.Errorf("migration: run %d mailbox: %w", id, err)
		}
		out = append(out, rm)
	}
	return out, nil
}
