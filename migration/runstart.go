package migration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailyard/mailyard/store"
)

// startRun allocates the run's ID and records it with every mailbox
// queued.
func (m *Migrator) startRun(ctx context.Context, spec RunSpec, interval time.Duration, jobs []Job) (Run, error) {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	now := m.runTime()
	run := Run{
		Settings:  settingsSnapshot(spec, interval, m.opts.Parallel),
		State:     RunRunning,
		Started:   now,
		Heartbeat: now,
		Mailboxes: len(jobs),
	}
	first := jobs[:min(len(jobs), recordBatch)]
	err := m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		newest, err := tx.List(nsRun, "", 1)
		if err != nil {
			return err
		}
		run.ID = 1
		if len(newest) == 1 {
			id, err := runIDFromKey(newest[0].Key)
			if err != nil {
				return err
			}
			run.ID = id + 1
		}
		if err := txPutJSONNew(tx, nsRun, runKey(run.ID), run); err != nil {
			return err
		}
		return putQueued(tx, run.ID, first, now)
	})
	if err != nil {
		return Run{}, fmt.Errorf("migration: start run: %w", err)
	}
	for rest := jobs[len(first):]; len(rest) > 0; {
		batch := rest[:min(len(rest), recordBatch)]
		rest = rest[len(batch):]
		err := m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
			return putQueued(tx, run.ID, batch, now)
		})
		if err != nil {
			// The run is recorded but not every mailbox is: record it as
			// interrupted so the history stays consistent.
			bctx, cancel := bookkeepingContext()
			defer cancel()
			run.State, run.Ended = RunInterrupted, m.runTime()
			run.Interrupted = run.Mailboxes
			run.Error = "could not record every mailbox: " + err.Error()
			_ = m.opts.Store.UpdateRecords(bctx, func(tx store.RecordTx) error {
				return txPutJSON(tx, nsRun, runKey(run.ID), run)
			})
			return Run{}, fmt.Errorf("migration: start run %d: %w", run.ID, err)
		}
	}
	m.log.Info("run started", "run", run.ID, "kind", spec.Kind, "domain", spec.Domain, "mailboxes", len(jobs),
		"force_update", spec.ForceUpdate, "continuous", spec.Continuous)
	return run, nil
}

// recordBatch is how many mailbox records one transaction writes.
const recordBatch = 500

func putQueued(tx store.RecordTx, runID int64, jobs []Job, now time.Time) error {
	for _, j := range jobs {
		rm := RunMailbox{RunID: runID, Target: j.Target, Created: now, Status: RunMailboxQueued,
			Host: j.Source.Host, Port: j.Source.Port, Login: j.Credentials.Login}
		if err := txPutJSONNew(tx, nsRunMailbox, runMailboxKey(runID, j.Target), rm); err != nil {
			return err
		}
	}
	return nil
}

// settingsSnapshot is what the history keeps of spec: no secret.
func settingsSnapshot(spec RunSpec, interval time.Duration, parallel int) RunSettings {
	d := spec.Defaults
	s := RunSettings{
		Kind:        spec.Kind,
		Protocol:    runProtocols(spec),
		Domain:      spec.Domain,
		Source:      d.Source,
		AuthMode:    d.Credentials.Mode,
		Service:     d.Credentials.Service,
		Exclude:     d.Exclude,
		ForceUpdate: spec.ForceUpdate,
		Continuous:  spec.Continuous,
		Parallel:    parallel,
	}
	if d.Credentials.Password != "" {
		s.Password = Mask
	}
	if spec.Continuous {
		s.Interval = interval
	}
	return s
}

// runProtocols names the protocols of spec's jobs for the history:
// spec.Protocol, or for a list mixing protocols their names joined by
// "+" in the order met ("IMAP+EWS").
func runProtocols(spec RunSpec) string {
	var names []string
	for _, j := range spec.Jobs {
		p := j.Protocol
		if p == "" {
			p = spec.Protocol
		}
		if isIMAP(p) {
			p = ProtocolIMAP
		}
		if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, p) }) {
			names = append(names, p)
		}
	}
	if len(names) < 2 {
		return spec.Protocol
	}
	return strings.Join(names, "+")
}
