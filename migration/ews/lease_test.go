package ews_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/lease"
)

// dyingStore is a syncer's view of the store that stops writing records
// once dead is set: a process killed with its lease still in the store
// (it neither renews nor releases it).
type dyingStore struct {
	ews.SyncTarget
	dead atomic.Bool
}

var errDead = errors.New("the process is dead")

func (d *dyingStore) UpdateRecords(ctx context.Context, fn func(tx store.RecordTx) error) error {
	if d.dead.Load() {
		return errDead
	}
	return d.SyncTarget.UpdateRecords(ctx, fn)
}

// timedCycles are the reports of a syncer with the time each arrived.
type timedCycles struct {
	cycles
	at []time.Time
}

func (c *timedCycles) add(r ews.CycleReport) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, r)
	c.at = append(c.at, time.Now())
}

// first is the index of the first report since from that ok accepts,
// or -1.
func (c *timedCycles) first(from int, ok func(ews.CycleReport) bool) (int, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := from; i < len(c.list); i++ {
		if ok(c.list[i]) {
			return i, c.at[i]
		}
	}
	return -1, time.Time{}
}

// TestSyncerLease: two syncers on one store for one target never sync
// it at once: the second reports the target busy once and waits while
// the first syncs; SyncOnce of a third is refused; when the first dies
// without releasing its lease, the second takes the target over once
// the lease has expired, not before, and syncs it.
func TestSyncerLease(t *testing.T) {
	e := newTwoWayEnv(t)
	// Long enough that a renewal (every ttl/4) delayed on a loaded machine
	// does not lose the lease to the waiting syncer.
	const ttl = 10 * time.Second
	newSyncer := func(st ews.SyncTarget, onCycle func(ews.CycleReport)) *ews.Syncer {
		t.Helper()
		s, err := ews.NewSyncer(ews.SyncerOptions{Store: st, Directory: e.users, Client: e.client, Access: twoWay,
			Interval: 300 * time.Millisecond, PollInterval: 50 * time.Millisecond, LeaseTTL: ttl, OnCycle: onCycle})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	isStart := func(r ews.CycleReport) bool { return r.Trigger == "start" && r.Err == nil }

	first := &dyingStore{SyncTarget: e.st}
	a := &timedCycles{cycles: cycles{t: t}}
	stopA := run(t, newSyncer(first, a.add))
	waitFor(t, 60*time.Second, "the first syncer's first pass", func() bool { i, _ := a.first(0, isStart); return i >= 0 })

	b := &timedCycles{cycles: cycles{t: t}}
	run(t, newSyncer(e.st, b.add))
	waitFor(t, 60*time.Second, "the second syncer finding the target busy", func() bool { return b.len() > 0 })
	if r := b.since(0)[0]; r.Trigger != "lease" || !errors.Is(r.Err, ews.ErrBusy) || migration.ClassOf(r.Err) != migration.ErrClassConfig {
		t.Fatalf("the second syncer's first report: %+v", r)
	}
	if r := newSyncer(e.st, nil).SyncOnce(t.Context(), ews.Job{Target: targetAddr, Mailbox: owner}); !errors.Is(r.Err, ews.ErrBusy) {
		t.Fatalf("SyncOnce while a syncer holds the target: %+v", r)
	}

	// Only the holder syncs.
	start := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	fromA := a.len()
	e.createExchange(t, "while the first holds", start)
	waitFor(t, 30*time.Second, "the event in Mailyard", func() bool { _, ok := e.events(t)["while the first holds"]; return ok })
	waitFor(t, 30*time.Second, "the first syncer's report of it", func() bool {
		i, _ := a.first(fromA, func(r ews.CycleReport) bool { return r.Pulled > 0 })
		return i >= 0
	})

	// The first syncer dies with its lease in the store.
	first.dead.Store(true)
	stopA()
	if got := b.since(0); len(got) != 1 {
		t.Fatalf("the second syncer reported %d times while the first held the target, want once: %+v", len(got), got)
	}
	r, err := e.st.GetRecord(t.Context(), "migration.ews.lease", targetAddr)
	if err != nil {
		t.Fatalf("the dead syncer's lease: %v", err)
	}
	var h lease.Holder
	if err := store.DecodeJSON(r, &h); err != nil {
		t.Fatal(err)
	}

	var took time.Time
	waitFor(t, 60*time.Second, "the second syncer taking the target over", func() bool {
		var i int
		i, took = b.first(1, isStart)
		return i >= 0
	})
	if took.Before(h.Expires) {
		t.Errorf("the second syncer took the target over at %v, before the dead holder's lease expired at %v", took, h.Expires)
	}
	for _, r := range b.since(1) {
		if r.Trigger == "lease" {
			t.Errorf("the second syncer reported the target busy again: %+v", r)
		}
	}
	fromB := b.len()
	e.createExchange(t, "after the takeover", start.Add(24*time.Hour))
	waitFor(t, 30*time.Second, "the second syncer pulling the new event", func() bool {
		i, _ := b.first(fromB, func(r ews.CycleReport) bool { return r.Pulled > 0 })
		return i >= 0
	})
	if ev := e.events(t); len(ev) != 2 {
		t.Errorf("events in Mailyard: %v, want the two made in Exchange", keysOf(ev))
	}
}

// TestMigratorLeavesSyncedCalendar: a Migrator pass on a target whose
// calendar a Syncer keeps (it has a sync checkpoint) leaves the
// calendar alone: an edit made in Mailyard that the sync has not sent
// yet survives the pass and reaches Exchange with the next sync pass,
// and Exchange has the event once. While a syncer holds the target's
// lease (running, no checkpoint yet) a pass leaves the calendar too;
// once it is released the pass copies it. Regression: the pass wrote
// Exchange's version over the unsent edit.
func TestMigratorLeavesSyncedCalendar(t *testing.T) {
	e := newTwoWayEnv(t)
	ctx := t.Context()
	once := e.passes(t, e.syncer(t, twoWay, nil))
	start := time.Date(2027, 6, 7, 9, 0, 0, 0, time.UTC)
	e.createExchange(t, "from Exchange", start)
	if r := once("import"); r.Pulled != 1 {
		t.Fatalf("import: %+v", r)
	}
	obj := e.events(t)["from Exchange"]
	e.put(t, obj.Name, obj.UID, "edited in Mailyard", start)
	m, err := ews.NewMigrator(ews.MigratorOptions{Store: e.st, Directory: e.users, Client: e.client})
	if err != nil {
		t.Fatal(err)
	}
	job := ews.Job{Target: targetAddr, Mailbox: owner}
	res, err := m.Sync(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if res.CalendarLeft == "" || res.Events != 0 {
		t.Errorf("pass on a synced calendar: %d events written, calendar left: %q", res.Events, res.CalendarLeft)
	}
	if got := keysOf(e.events(t)); len(got) != 1 || got[0] != "edited in Mailyard" {
		t.Fatalf("Mailyard's calendar after the pass: %v (the unsent edit must stay)", got)
	}
	if r := once("push"); r.Pushed != 1 {
		t.Errorf("push: %+v", r)
	}
	if got := keysOf(e.exchange(t)); len(got) != 1 || got[0] != "edited in Mailyard" {
		t.Errorf("Exchange after the push: %v", got)
	}

	// A syncer running on a target without a checkpoint yet.
	f := newTwoWayEnv(t)
	f.createExchange(t, "from Exchange", start)
	held, err := lease.Acquire(ctx, lease.Options{Records: f.st, Namespace: "migration.ews.lease", Key: targetAddr})
	if err != nil {
		t.Fatal(err)
	}
	m, err = ews.NewMigrator(ews.MigratorOptions{Store: f.st, Directory: f.users, Client: f.client})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := m.Sync(ctx, job); err != nil || res.CalendarLeft == "" || res.Events != 0 {
		t.Errorf("pass while a syncer runs: %d events, calendar left %q, %v", res.Events, res.CalendarLeft, err)
	}
	held.Release()
	if res, err := m.Sync(ctx, job); err != nil || res.CalendarLeft != "" || res.Events != 1 {
		t.Errorf("pass after the syncer stopped: %d events, calendar left %q, %v", res.Events, res.CalendarLeft, err)
	}
}
