package migration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailyard/mailyard/store"
)

// ErrDisabled is returned (inside an *Error of class ErrClassConfig) for a
// pass on a collector that has been cut over with [Migrator.Disable].
var ErrDisabled = errors.New("migration: collector is disabled (cut over)")

// validateJob checks a job before anything is stored or dialled.
func validateJob(j Job) error {
	switch {
	case canonicalTarget(j.Target) == "" || strings.ContainsAny(j.Target, keySep+"\r\n\x00"):
		return errors.New("job has no valid target address")
	case strings.TrimSpace(j.Source.Host) == "":
		return errors.New("job has no source host")
	case j.Source.Port < 0 || j.Source.Port > 65535:
		return fmt.Errorf("source port %d out of range", j.Source.Port)
	}
	switch j.Source.TLS {
	case TLSImplicit, TLSStartTLS, TLSPlain:
	default:
		return fmt.Errorf("unknown TLS mode %q", j.Source.TLS)
	}
	c := j.Credentials
	switch c.Mode {
	case AuthUser:
	case AuthServicePlain, AuthServiceExchange:
		if c.Service == "" {
			return fmt.Errorf("auth mode %s needs a service account", c.Mode)
		}
	default:
		return fmt.Errorf("unknown auth mode %q", c.Mode)
	}
	if c.Login == "" {
		return errors.New("job has no source login")
	}
	if c.Password == "" {
		return errors.New("job has no password")
	}
	for src, dst := range j.FolderMap {
		if src == "" {
			return errors.New("folder map has an empty source name")
		}
		if _, err := store.CleanMailboxName(dst); err != nil {
			return fmt.Errorf("folder map %q -> %q: %w", src, dst, err)
		}
	}
	return nil
}

// Sync runs one pass for job's mailbox: it stores the collector (creating
// it, or replacing its job), copies what is new, carries flag changes over
// and records the status, which it returns. The error is an *Error (see
// [ClassOf]); the status is returned also on error.
func (m *Migrator) Sync(ctx context.Context, job Job, progress ProgressFunc) (MailboxStatus, error) {
	return m.sync(ctx, job, 0, progress)
}

// sync is Sync on behalf of run runID (kept in the status; 0 for none).
func (m *Migrator) sync(ctx context.Context, job Job, runID int64, progress ProgressFunc) (MailboxStatus, error) {
	target := canonicalTarget(job.Target)
	if err := validateJob(job); err != nil {
		return MailboxStatus{Target: target, Job: job.Masked(), RunID: runID, State: StateError,
			LastError: err.Error(), ErrorClass: ErrClassConfig}, &Error{Class: ErrClassConfig, Target: target, Err: err}
	}
	job.Target = target
	unlock, err := m.lockTarget(ctx, target)
	if err != nil {
		return MailboxStatus{Target: target, Job: job.Masked()}, &Error{Class: ErrClassCanceled, Target: target, Err: err}
	}
	defer unlock()
	release, err := m.acquireLease(ctx, target)
	if err != nil {
		return MailboxStatus{Target: target, Job: job.Masked(), RunID: runID}, err
	}
	defer release()

	start := m.now()
	st, err := m.beginPass(ctx, job, runID, start)
	if err != nil {
		return st, err
	}
	m.log.Info("migration pass started", "target", target, "source", job.Source.Host, "login", job.Credentials.Login, "mode", job.Credentials.Mode)
	res, perr := m.pass(ctx, job, progress)
	st, err = m.endPass(ctx, job, res, perr)
	if perr != nil {
		m.log.Warn("migration pass failed", "target", target, "class", ClassOf(perr), "err", perr)
	} else {
		m.log.Info("migration pass done", "target", target, "msg", st.LastMessage)
	}
	if err != nil && perr == nil {
		perr = err
	}
	return st, perr
}

// lockTarget serialises passes for one target within this Migrator.
func (m *Migrator) lockTarget(ctx context.Context, target string) (func(), error) {
	for {
		m.activeMu.Lock()
		if m.active == nil {
			m.active = map[string]chan struct{}{}
		}
		ch, busy := m.active[target]
		if !busy {
			ch = make(chan struct{})
			m.active[target] = ch
			m.activeMu.Unlock()
			return func() {
				m.activeMu.Lock()
				delete(m.active, target)
				m.activeMu.Unlock()
				close(ch)
			}, nil
		}
		m.activeMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// beginPass stores the job and the running state. A disabled collector
// stays disabled and the pass is refused.
func (m *Migrator) beginPass(ctx context.Context, job Job, runID int64, now time.Time) (MailboxStatus, error) {
	var st MailboxStatus
	err := m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		var rec collectorRecord
		found, err := txGetJSON(tx, nsCollector, job.Target, &rec)
		if err != nil {
			return err
		}
		if found && rec.Status.State == StateDisabled {
			st = rec.Status
			return ErrDisabled
		}
		if !found {
			rec.Status = MailboxStatus{Target: job.Target, Created: now}
		}
		rec.Job = toJobRecord(job)
		rec.Status.Target = job.Target
		rec.Status.RunID = runID
		rec.Status.State = StateRunning
		rec.Status.Updated = now
		rec.Status.Job = Job{}
		st = rec.Status
		return txPutJSON(tx, nsCollector, job.Target, rec)
	})
	st.Job = job.Masked()
	if errors.Is(err, ErrDisabled) {
		return st, &Error{Class: ErrClassConfig, Target: job.Target, Err: ErrDisabled}
	}
	if err != nil {
		return st, &Error{Class: classifyLocal(ctx, err), Target: job.Target, Err: err}
	}
	return st, nil
}

// endPass records the outcome of a pass. It uses a context that outlives
// a cancelled ctx, so that a stopped pass still says so.
func (m *Migrator) endPass(ctx context.Context, job Job, res passResult, perr error) (MailboxStatus, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := m.now()
	var st MailboxStatus
	err := m.opts.Store.UpdateRecords(wctx, func(tx store.RecordTx) error {
		var rec collectorRecord
		if _, err := txGetJSON(tx, nsCollector, job.Target, &rec); err != nil {
			return err
		}
		s := &rec.Status
		s.Updated = now
		if res.folders != nil {
			s.Folders = res.folders
		}
		if perr == nil {
			s.LastSuccess = now
			s.Passes++
			s.LastError, s.ErrorClass = "", ""
			s.LastMessage = res.summary()
			if s.State != StateDisabled {
				s.State = StateOK
			}
		} else {
			s.LastError = perr.Error()
			s.ErrorClass = ClassOf(perr)
			s.LastMessage = res.summary()
			if s.State != StateDisabled {
				s.State = StateError
			}
		}
		s.Job = Job{}
		st = *s
		return txPutJSON(tx, nsCollector, job.Target, rec)
	})
	st.Job = job.Masked()
	if err != nil {
		return st, &Error{Class: ErrClassTarget, Target: job.Target, Err: err}
	}
	return st, nil
}

// Collect runs passes for job every interval (measured from the end of a
// pass) until ctx is done or the collector is disabled, and then returns
// nil. A failed pass is retried after an exponential back-off from
// Options.RetryMin to RetryMax instead of the interval; the status of
// every pass is recorded. Configuration errors (a bad job, a host not on
// the allowlist, an unknown target) are returned at once: retrying cannot
// fix them.
func (m *Migrator) Collect(ctx context.Context, job Job, interval time.Duration, progress ProgressFunc) error {
	return m.collect(ctx, job, 0, interval, progress)
}

// collect is Collect for the collectors of run runID (0: none), which
// every pass records in the status.
func (m *Migrator) collect(ctx context.Context, job Job, runID int64, interval time.Duration, progress ProgressFunc) error {
	if interval <= 0 {
		return &Error{Class: ErrClassConfig, Target: canonicalTarget(job.Target), Err: errors.New("collect interval must be positive")}
	}
	backoff := time.Duration(0)
	for {
		_, err := m.sync(ctx, job, runID, progress)
		if ctx.Err() != nil || errors.Is(err, ErrDisabled) {
			return nil
		}
		wait := interval
		if err != nil {
			if ClassOf(err) == ErrClassConfig {
				return err
			}
			if backoff == 0 {
				backoff = m.opts.RetryMin
			} else {
				backoff = min(2*backoff, m.opts.RetryMax)
			}
			wait = backoff
		} else {
			backoff = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if st, err := m.Status(ctx, job.Target); err == nil && st.State == StateDisabled {
			return nil
		}
	}
}

// Disable cuts a collector over: its state becomes disabled and no further
// pass runs (a running [Migrator.Collect] stops after its current pass).
// The copied mail and checkpoints stay. Errors wrap store.ErrNotFound for
// an unknown target.
func (m *Migrator) Disable(ctx context.Context, target string) error {
	target = canonicalTarget(target)
	now := m.now()
	return m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		var rec collectorRecord
		found, err := txGetJSON(tx, nsCollector, target, &rec)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("migration: collector %s: %w", target, store.ErrNotFound)
		}
		rec.Status.State = StateDisabled
		rec.Status.Updated = now
		rec.Status.Job = Job{}
		return txPutJSON(tx, nsCollector, target, rec)
	})
}

// Status returns a collector's status with its job masked. Errors wrap
// store.ErrNotFound when target has no collector.
func (m *Migrator) Status(ctx context.Context, target string) (MailboxStatus, error) {
	target = canonicalTarget(target)
	var rec collectorRecord
	if _, err := getJSON(ctx, m.opts.Store, nsCollector, target, &rec); err != nil {
		return MailboxStatus{}, fmt.Errorf("migration: collector %s: %w", target, err)
	}
	st := rec.Status
	st.Job = rec.Job.job().Masked()
	return st, nil
}

// ListStatus returns up to limit collectors (limit <= 0: 100) whose target
// address sorts after after, by target address, with jobs masked.
func (m *Migrator) ListStatus(ctx context.Context, after string, limit int) ([]MailboxStatus, error) {
	if limit <= 0 {
		limit = 100
	}
	recs, err := m.opts.Store.ListRecords(ctx, nsCollector, listCursor(after), limit)
	if err != nil {
		return nil, err
	}
	out := make([]MailboxStatus, 0, len(recs))
	for _, r := range recs {
		var rec collectorRecord
		if err := store.DecodeJSON(r, &rec); err != nil {
			return nil, fmt.Errorf("migration: collector: %w", err)
		}
		st := rec.Status
		st.Job = rec.Job.job().Masked()
		out = append(out, st)
	}
	return out, nil
}

// storedJob returns a collector's job with its password (for runs that
// resume or update collectors). Errors wrap store.ErrNotFound.
func (m *Migrator) storedJob(ctx context.Context, target string) (Job, error) {
	target = canonicalTarget(target)
	var rec collectorRecord
	if _, err := getJSON(ctx, m.opts.Store, nsCollector, target, &rec); err != nil {
		return Job{}, fmt.Errorf("migration: collector %s: %w", target, err)
	}
	return rec.Job.job(), nil
}
