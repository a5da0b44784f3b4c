package migration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
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
	return m.syncScope(ctx, job, runID, progress, false)
}

// syncScope is sync; inboxOnly limits the pass to the folders that feed
// the target's INBOX (an IDLE pass, idle.go).
func (m *Migrator) syncScope(ctx context.Context, job Job, runID int64, progress ProgressFunc, inboxOnly bool) (MailboxStatus, error) {
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
	ctx, release, err := m.acquireLease(ctx, target)
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
	res, perr := m.pass(ctx, job, progress, inboxOnly)
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
		if rec.Job, err = toJobRecord(job, m.seal); err != nil {
			return err
		}
		rec.Status.Target = job.Target
		rec.Status.RunID = runID
		rec.Status.State = StateRunning
		rec.Status.Updated = now
		rec.Status.Job = Job{}
		st = rec.Status
		return txPutJSON(tx, nsCollector, job.Target, rec)
	})
	st.Job = job.Masked()
	if errors.Is(err, ErrDisabled) || errors.Is(err, ErrNoSecretKey) {
		return st, &Error{Class: ErrClassConfig, Target: job.Target, Err: err}
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
		if err := rec.Job.reseal(m.seal); err != nil {
			return err
		}
		s := &rec.Status
		s.Updated = now
		switch {
		case res.inboxOnly:
			s.Folders = mergeFolders(s.Folders, res.folders)
		case res.folders != nil:
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

// mergeFolders is old with the statuses of part (an INBOX pass) in place
// of theirs, sorted by source name.
func mergeFolders(old, part []FolderStatus) []FolderStatus {
	out := slices.Clone(old)
	for _, fs := range part {
		i := slices.IndexFunc(out, func(o FolderStatus) bool { return o.Source == fs.Source })
		if i < 0 {
			out = append(out, fs)
		} else {
			out[i] = fs
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}

// Collect runs passes for job every interval (measured from the end of a
// pass) until ctx is done or the collector is disabled, and then returns
// nil. Where the source announces IDLE, new mail in its INBOX is copied
// within seconds in between (an INBOX pass, see idle.go); the other
// folders keep the interval. A failed pass is retried after an
// exponential back-off from Options.RetryMin to RetryMax instead of the
// interval; the status of every pass is recorded. Configuration errors (a
// bad job, a host not on the allowlist, an unknown target) are returned
// at once: retrying cannot fix them.
func (m *Migrator) Collect(ctx context.Context, job Job, interval time.Duration, progress ProgressFunc) error {
	return m.collect(ctx, job, 0, interval, progress)
}

// collect is Collect for the collectors of run runID (0: none), which
// every pass records in the status.
func (m *Migrator) collect(ctx context.Context, job Job, runID int64, interval time.Duration, progress ProgressFunc) error {
	if interval <= 0 {
		return &Error{Class: ErrClassConfig, Target: canonicalTarget(job.Target), Err: errors.New("collect interval must be positive")}
	}
	inbox := make(chan struct{}, 1)
	wctx, stopWatch := context.WithCancel(ctx)
	var watching sync.WaitGroup
	defer watching.Wait()
	defer stopWatch()
	backoff := time.Duration(0)
	inboxOnly, watchStarted := false, false
	var nextFull time.Time
	for {
		_, err := m.syncScope(ctx, job, runID, progress, inboxOnly)
		if ctx.Err() != nil || errors.Is(err, ErrDisabled) {
			return nil
		}
		if !inboxOnly {
			nextFull = m.now().Add(interval)
		}
		wait := max(nextFull.Sub(m.now()), 0)
		idle := inbox
		if err != nil {
			if ClassOf(err) == ErrClassConfig {
				return err
			}
			if backoff == 0 {
				backoff = m.opts.RetryMin
			} else {
				backoff = min(2*backoff, m.opts.RetryMax)
			}
			wait, idle = backoff, nil
			nextFull = time.Time{} // after a failure the next pass is a full one
		} else {
			backoff = 0
			if !watchStarted && !m.opts.NoIdle {
				// The first successful pass starts the IDLE watcher: the
				// job is known to log in by now.
				watchStarted = true
				watching.Go(func() { m.watchInbox(wctx, job, inbox) })
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
			inboxOnly = false
		case <-idle:
			t.Stop()
			inboxOnly = true
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
		if err := rec.Job.reseal(m.seal); err != nil {
			return err
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
	st.Job = rec.Job.masked()
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
		st.Job = rec.Job.masked()
		out = append(out, st)
	}
	return out, nil
}

// storedJob returns a collector's job with its password (for runs that
// resume or update collectors). Errors wrap store.ErrNotFound; a password
// that cannot be opened (no key, wrong key) is an *Error of class
// ErrClassConfig naming the collector.
func (m *Migrator) storedJob(ctx context.Context, target string) (Job, error) {
	rec, err := m.storedJobRecord(ctx, target)
	if err != nil {
		return Job{}, err
	}
	j, err := rec.open(m.seal)
	if err != nil {
		return Job{}, &Error{Class: ErrClassConfig, Target: canonicalTarget(target), Err: fmt.Errorf("collector %s: %w", canonicalTarget(target), err)}
	}
	return j, nil
}

// storedJobRecord returns a collector's job as stored (password sealed).
// Errors wrap store.ErrNotFound.
func (m *Migrator) storedJobRecord(ctx context.Context, target string) (jobRecord, error) {
	target = canonicalTarget(target)
	var rec collectorRecord
	if _, err := getJSON(ctx, m.opts.Store, nsCollector, target, &rec); err != nil {
		return jobRecord{}, fmt.Errorf("migration: collector %s: %w", target, err)
	}
	return rec.Job, nil
}
