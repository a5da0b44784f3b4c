package migration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mailyard/mailyard/store"
)

// runner carries one run's state between its phases.
type runner struct {
	m        *Migrator
	id       int64
	spec     RunSpec
	jobs     []Job
	progress ProgressFunc

	mu  sync.Mutex
	run Run
	// status is the last recorded status of each job, by index.
	status []RunMailboxStatus
	// fail is the first error writing the history.
	fail error
}

func (r *runner) snapshot() Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.run
}

func (r *runner) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fail
}

func (r *runner) setFailure(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail == nil {
		r.fail = err
	}
}

// firstPasses runs one pass per mailbox, Parallel at a time, and returns
// the jobs (as their first pass used them) a continuous run should keep
// collecting.
func (r *runner) firstPasses(ctx context.Context) []Job {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := min(r.m.opts.Parallel, len(r.jobs))
	next := make(chan int)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		collect []Job
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				job, keep, err := r.mailbox(ctx, i)
				if err != nil {
					// The history cannot be written: stop the run rather
					// than copy mail nobody can account for.
					r.setFailure(err)
					cancel()
					continue
				}
				if keep {
					mu.Lock()
					collect = append(collect, job)
					mu.Unlock()
				}
			}
		})
	}
feed:
	for i := range r.jobs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return collect
}

// mailbox makes the first pass of job i and records it. keep says whether
// a continuous run should keep collecting it, with job. err is a failure
// to write the history.
func (r *runner) mailbox(ctx context.Context, i int) (job Job, keep bool, err error) {
	if ctx.Err() != nil {
		return Job{}, false, nil
	}
	m := r.m
	rm := RunMailbox{RunID: r.id, Target: r.jobs[i].Target, Started: m.runTime(), Status: RunMailboxRunning}
	rm.Protocol, rm.Endpoint = r.jobs[i].Protocol, r.jobs[i].Endpoint
	if r.ownsPass(rm.Protocol) {
		return r.ownPass(ctx, i, rm)
	}
	job, disabled, serr := r.collectorJob(ctx, r.jobs[i], &rm)
	if disabled {
		rm.Status, rm.Ended = RunMailboxDisabled, rm.Started
		rm.Message = "collector disabled (cut over); skipped"
		return Job{}, false, r.record(i, rm)
	}
	rm.Host, rm.Port, rm.Login = job.Source.Host, job.Source.Port, job.Credentials.Login
	if serr != nil {
		if ctx.Err() != nil {
			rm.Status, rm.Ended, rm.Class = RunMailboxInterrupted, m.runTime(), ErrClassCanceled
			return Job{}, false, r.record(i, rm)
		}
		rm.Status, rm.Ended = RunMailboxError, m.runTime()
		rm.Error, rm.Class = serr.Error(), ErrClassTarget
		if ClassOf(serr) == ErrClassConfig {
			rm.Class = ErrClassConfig // no or wrong secret key
		}
		return Job{}, false, r.record(i, rm)
	}
	if err := r.record(i, rm); err != nil {
		return Job{}, false, err
	}

	ms, perr := m.sync(ctx, job, r.id, r.progress)
	rm.Ended = m.runTime()
	rm.Message = ms.LastMessage
	keep = passOutcome(ctx, &rm, perr)
	if ms.State == StateDisabled {
		// Cut over while the pass ran.
		keep = false
	}
	return job, keep, r.record(i, rm)
}

// ownsPass reports whether the run's own Pass makes the pass of a job
// of protocol p: jobs of the run's protocol (when it is not IMAP, Pass is
// then given) and of any other non-IMAP protocol; IMAP jobs of a mixed
// run go to their collectors.
func (r *runner) ownsPass(p string) bool {
	return r.spec.Pass != nil && !strings.EqualFold(p, ProtocolIMAP)
}

// ownPass makes the first pass of job i with the run's own Pass.
func (r *runner) ownPass(ctx context.Context, i int, rm RunMailbox) (Job, bool, error) {
	job := r.jobs[i]
	rm.Host, rm.Port, rm.Login = job.Source.Host, job.Source.Port, job.Credentials.Login
	if err := r.record(i, rm); err != nil {
		return Job{}, false, err
	}
	summary, perr := r.spec.Pass(ctx, job, r.progress)
	rm.Ended, rm.Message = r.m.runTime(), summary
	passOutcome(ctx, &rm, perr)
	return Job{}, false, r.record(i, rm)
}

// collectorJob is the job the run uses for job's target, given the
// collector the target may have already: without ForceUpdate an existing
// collector keeps its stored settings (rm.KeptSettings); with it, the
// run's source and credentials replace them, and the folder map and
// exclusions stay as stored unless the run gives them (nil: neither the
// job nor the defaults name any). disabled reports a collector that was
// cut over; err an existing collector whose state cannot be read.
func (r *runner) collectorJob(ctx context.Context, job Job, rm *RunMailbox) (_ Job, disabled bool, err error) {
	st, err := r.m.Status(ctx, job.Target)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return job, false, nil
	case err != nil:
		return job, false, err
	case st.State == StateDisabled:
		return job, true, nil
	}
	if r.spec.ForceUpdate {
		// The run's source and credentials replace the stored ones, so
		// the stored password need not (and, after a lost key, cannot)
		// be opened.
		if stored, err := r.m.storedJobRecord(ctx, job.Target); err == nil {
			if job.FolderMap == nil {
				job.FolderMap = stored.FolderMap
			}
			if job.Exclude == nil {
				job.Exclude = stored.Exclude
			}
		}
		return job, false, nil
	}
	stored, err := r.m.storedJob(ctx, job.Target)
	switch {
	case err == nil:
		rm.KeptSettings = true
		rm.IgnoredSettings = differingSettings(stored, job)
		return stored, false, nil
	case errors.Is(err, store.ErrNotFound):
		return job, false, nil
	}
	return job, false, err
}

// passOutcome sets rm's status from the error of the mailbox's pass and
// reports whether the collector should keep running after the run's
// first pass.
func passOutcome(ctx context.Context, rm *RunMailbox, perr error) (keep bool) {
	switch {
	case perr == nil:
		rm.Status = RunMailboxOK
		return true
	case errors.Is(perr, ErrDisabled):
		// Cut over between the check before the pass and the pass.
		rm.Status, rm.Message = RunMailboxDisabled, "collector disabled (cut over); skipped"
	case ctx.Err() != nil || ClassOf(perr) == ErrClassCanceled:
		rm.Status, rm.Class = RunMailboxInterrupted, ErrClassCanceled
		rm.Error = perr.Error()
	default:
		rm.Status, rm.Class = RunMailboxError, ClassOf(perr)
		rm.Error = perr.Error()
		// A job the run itself got wrong (allowlist, unknown target)
		// will not heal by retrying; anything else may.
		return rm.Class != ErrClassConfig
	}
	return false
}

// record writes rm and the run's updated totals in one transaction.
func (r *runner) record(i int, rm RunMailbox) error {
	m := r.m
	m.runMu.Lock()
	defer m.runMu.Unlock()
	r.mu.Lock()
	prev := r.status[i]
	run := r.run
	r.mu.Unlock()
	adjustTotals(&run, prev, -1)
	adjustTotals(&run, rm.Status, +1)
	run.Heartbeat = m.runTime()
	// The history must be written even when the run is being canceled.
	ctx, cancel := bookkeepingContext()
	defer cancel()
	var stored RunMailbox
	err := m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		old, err := getRunMailbox(tx, rm.RunID, rm.Target)
		if err != nil {
			return err
		}
		rm.Created = old.Created
		stored = rm
		if err := txPutJSON(tx, nsRunMailbox, runMailboxKey(rm.RunID, rm.Target), rm); err != nil {
			return err
		}
		if r.ownsPass(rm.Protocol) && !rm.Ended.IsZero() {
			// No collector record keeps this mailbox's status.
			if err := txUpdatePassStatus(tx, rm); err != nil {
				return err
			}
		}
		return txPutJSON(tx, nsRun, runKey(run.ID), run)
	})
	if err != nil {
		return fmt.Errorf("migration: run %d: record %s: %w", run.ID, rm.Target, err)
	}
	r.mu.Lock()
	r.status[i] = rm.Status
	r.run = run
	r.mu.Unlock()
	if r.spec.OnMailbox != nil {
		r.spec.OnMailbox(stored)
	}
	return nil
}

// adjustTotals adds delta to the counter of status s.
func adjustTotals(run *Run, s RunMailboxStatus, delta int) {
	switch s {
	case RunMailboxOK:
		run.Succeeded += delta
	case RunMailboxError:
		run.WithErrors += delta
	case RunMailboxDisabled:
		run.Disabled += delta
	case RunMailboxInterrupted:
		run.Interrupted += delta
	}
}

// runTime is the clock of the history: UTC without a monotonic reading,
// so a Run returned equals the Run stored.
func (m *Migrator) runTime() time.Time { return m.now().UTC().Round(0) }

// bookkeepingTimeout bounds a history write made after the run's context
// is done.
const bookkeepingTimeout = time.Minute

func bookkeepingContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), bookkeepingTimeout)
}

// markNotReached marks every mailbox still queued or running as
// interrupted.
func (r *runner) markNotReached() error {
	m := r.m
	m.runMu.Lock()
	defer m.runMu.Unlock()
	r.mu.Lock()
	var idx []int
	var targets []string
	for i, s := range r.status {
		if s == RunMailboxQueued || s == RunMailboxRunning {
			idx = append(idx, i)
			targets = append(targets, r.jobs[i].Target)
		}
	}
	run := r.run
	r.mu.Unlock()
	ctx, cancel := bookkeepingContext()
	defer cancel()
	run, err := m.interruptMailboxes(ctx, run, targets, "not reached: the run was stopped first")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.run = run
	if err != nil {
		return err
	}
	for _, i := range idx {
		r.status[i] = RunMailboxInterrupted
	}
	return nil
}

// setState records the run's state (and its end time if ended).
func (r *runner) setState(state RunState, ended bool) error {
	var id int64
	err := r.saveRun(func(run *Run) bool {
		id = run.ID
		run.State = state
		run.Heartbeat = r.m.runTime()
		if ended {
			run.Ended = run.Heartbeat
		}
		if err := r.failure(); err != nil && run.Error == "" {
			run.Error = err.Error()
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("migration: run %d: record state %s: %w", id, state, err)
	}
	return nil
}

// end records the run as ended in state and returns it.
func (r *runner) end(state RunState) (Run, error) {
	err := r.setState(state, true)
	if err == nil {
		err = r.failure()
	}
	return r.snapshot(), err
}

// collect keeps collecting the mailboxes of a continuous run until ctx is
// done or every one is cut over. The first pass has just been made, so
// each collector waits one interval before its next.
func (r *runner) collect(ctx context.Context, jobs []Job, interval time.Duration) {
	var wg sync.WaitGroup
	for _, job := range jobs {
		wg.Go(func() {
			t := time.NewTimer(interval)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := r.m.collect(ctx, job, r.id, interval, r.progress); err != nil && ctx.Err() == nil {
				r.m.log.Warn("collector stopped", "target", job.Target, "run", r.id, "err", err)
			}
		})
	}
	wg.Wait()
}

// differingSettings names the source and credential settings in which
// given differs from stored, so that a run which kept stored can say
// which of the settings it was given it did not use.
func differingSettings(stored, given Job) []string {
	var out []string
	diff := func(name string, differs bool) {
		if differs {
			out = append(out, name)
		}
	}
	s, g := stored.Source, given.Source
	diff("host", s.Host != g.Host)
	diff("port", s.Port != g.Port)
	diff("tls", s.TLS != g.TLS)
	diff("skip-verify", s.InsecureSkipVerify != g.InsecureSkipVerify)
	diff("ca-file", s.CAFile != g.CAFile)
	sc, gc := stored.Credentials, given.Credentials
	diff("auth mode", sc.Mode != gc.Mode)
	diff("login", sc.Login != gc.Login)
	diff("service account", sc.Service != gc.Service)
	diff("password", sc.Password != gc.Password)
	return out
}
