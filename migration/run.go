package migration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// RunKind says which mailboxes a run covers.
type RunKind string

// Run kinds, the "domain migration type" of the reference product.
const (
	// RunFull migrates every user of RunSpec.Domain, listed through
	// Options.Users.
	RunFull RunKind = "full"
	// RunList migrates the mailboxes named in RunSpec.Jobs ("by list").
	RunList RunKind = "list"
)

// MaxRunMailboxes bounds the mailboxes of one run (and the rows of a CSV
// file): larger migrations are split into several runs, which is also how
// they are planned (groups migrated one after another).
const MaxRunMailboxes = 100_000

// DefaultInterval is the pause between passes of a continuous run when
// RunSpec.Interval is zero.
const DefaultInterval = 5 * time.Minute

// RunSpec describes a bulk run.
type RunSpec struct {
	Kind RunKind
	// Domain is the mail domain to migrate. Required for RunFull; for
	// RunList, if set, every job's target must be in it.
	Domain string
	// Jobs are the mailboxes of a RunList run (from [ParseCSV] or built by
	// the caller). Fields they leave empty are taken from Defaults.
	Jobs []Job
	// Defaults fills in what a job lacks: Source (when the job has no
	// host; port, TLS mode and CA settings also one by one; the TLS mode
	// is TLSImplicit if neither gives one),
	// Credentials.Mode, Service and Password, and Exclude (when nil).
	// For RunFull every user gets Defaults with its own address as
	// login (the local part for AuthServiceExchange).
	Defaults Job
	// ForceUpdate replaces the source and credentials of collectors that
	// already exist with the run's; their exclusions and folder map are
	// replaced only where the run gives them. Without it a running
	// collector keeps its stored settings and the run only starts a pass
	// with them.
	ForceUpdate bool
	// TwoWay asks for two-way mail sync; it is refused with [ErrTwoWay]
	// before anything changes, since collection is one-way.
	TwoWay bool
	// Continuous keeps collecting after the first pass, every Interval
	// (DefaultInterval if zero), until the context is done or the
	// mailbox is cut over.
	Continuous bool
	Interval   time.Duration
	// OnStart, if set, is called once the run is recorded, before any
	// pass starts.
	OnStart func(Run)
	// OnMailbox, if set, is called when a mailbox of the run starts and
	// when its first pass ends, with the record as stored. It is called
	// from the run's workers and must be quick and safe for concurrent
	// use.
	OnMailbox func(RunMailbox)
}

// RunState is the state of a run.
type RunState string

// Run states.
const (
	// RunRunning: first passes are in progress.
	RunRunning RunState = "running"
	// RunCollecting: every first pass has ended and a continuous run
	// keeps collecting.
	RunCollecting RunState = "collecting"
	// RunCompleted: every mailbox got its pass (successful or not).
	RunCompleted RunState = "completed"
	// RunStopped: a continuous run was stopped by its caller after every
	// first pass had ended.
	RunStopped RunState = "stopped"
	// RunInterrupted: the run was canceled (Ctrl-C, shutdown) or could not
	// keep its history before every mailbox got its first pass; mailboxes
	// not reached are marked [RunMailboxInterrupted]. A rerun resumes.
	RunInterrupted RunState = "interrupted"
)

// RunSettings is the snapshot of a run's settings kept in the history.
// It holds no secret: Password is [Mask] when a default password was
// given and empty otherwise.
type RunSettings struct {
	Kind        RunKind
	Domain      string
	Source      Source
	AuthMode    AuthMode
	Service     string
	Password    string
	Exclude     []string
	ForceUpdate bool
	// TwoWay is always false: runs asking for it are refused.
	TwoWay     bool
	Continuous bool
	Interval   time.Duration
	Parallel   int
}

// Run is one bulk run in the history.
type Run struct {
	ID       int64
	Settings RunSettings
	State    RunState
	Started  time.Time
	// Ended is when the run stopped; zero while it runs or collects.
	Ended time.Time
	// Mailboxes is the number of mailboxes in the run. Succeeded,
	// WithErrors, Disabled and Interrupted count the first passes that
	// ended so; the rest are queued or in progress.
	Mailboxes   int
	Succeeded   int
	WithErrors  int
	Disabled    int
	Interrupted int
	// Error says why the run stopped early when it could not go on (its
	// history could not be written, or its process was killed); empty
	// otherwise.
	Error string `json:",omitempty"`
	// Heartbeat is refreshed while the run runs or collects. A run
	// whose heartbeat is older than [AbandonAfter] was killed (SIGKILL,
	// power loss): the next run records it as interrupted.
	Heartbeat time.Time `json:",omitzero"`
}

// Heartbeat period of a running run, and the silence after which a run
// still marked running is taken as abandoned.
const (
	HeartbeatEvery = time.Minute
	AbandonAfter   = 10 * HeartbeatEvery
)

// maxAbandonedScan bounds how many of the newest runs a new run checks
// for abandoned ones.
const maxAbandonedScan = 100

// InProgress is the number of mailboxes whose first pass has not ended.
func (r Run) InProgress() int {
	return r.Mailboxes - r.Succeeded - r.WithErrors - r.Disabled - r.Interrupted
}

// RunMailboxStatus is the status of one mailbox in a run.
type RunMailboxStatus string

// Per-mailbox statuses in a run.
const (
	RunMailboxQueued  RunMailboxStatus = "queued"  // not started yet
	RunMailboxRunning RunMailboxStatus = "running" // its pass is in progress
	RunMailboxOK      RunMailboxStatus = "ok"      // the pass succeeded
	RunMailboxError   RunMailboxStatus = "error"   // the pass failed (Error, Class)
	// RunMailboxDisabled: the collector is cut over; the run skipped it.
	RunMailboxDisabled RunMailboxStatus = "disabled"
	// RunMailboxInterrupted: the run was canceled before or during the
	// mailbox's pass.
	RunMailboxInterrupted RunMailboxStatus = "interrupted"
)

// RunMailbox is the result of one mailbox in a run.
type RunMailbox struct {
	RunID  int64
	Target string
	// Created is when the run registered the mailbox; Started and Ended
	// bound its first pass.
	Created time.Time
	Started time.Time `json:",omitzero"`
	Ended   time.Time `json:",omitzero"`
	Status  RunMailboxStatus
	// KeptSettings is true when an existing collector kept its stored
	// settings (a run without force-update).
	KeptSettings bool `json:",omitempty"`
	// Host, Port and Login are the source the pass used (never the
	// password).
	Host  string `json:",omitempty"`
	Port  int    `json:",omitempty"`
	Login string `json:",omitempty"`
	// Message is the pass's summary; Error and Class say why it failed.
	Message string     `json:",omitempty"`
	Error   string     `json:",omitempty"`
	Class   ErrorClass `json:",omitempty"`
}

// Run carries out spec: it records a new run in the history, then makes
// one pass for each mailbox, Options.Parallel at a time, and records each
// result as it ends. See [RunSpec] for how existing collectors are
// treated. progress receives the copying progress of every mailbox.
//
// A canceled ctx stops the run cleanly: passes in progress stop after the
// append they are making (everything appended is checkpointed, so a rerun
// resumes without duplicates), mailboxes not reached are marked
// interrupted and the run is recorded as [RunInterrupted]; Run then
// returns the run and ctx's error.
//
// A continuous run returns when ctx is done (or every collector is cut
// over); its state is then [RunStopped]. An invalid spec returns an error
// and records nothing; so does a request for two-way sync ([ErrTwoWay]).
//
// Before it starts, Run records as interrupted any recent run whose
// heartbeat has stopped (its process was killed), so the history stays
// consistent after a crash; the rerun resumes its mailboxes.
func (m *Migrator) Run(ctx context.Context, spec RunSpec, progress ProgressFunc) (Run, error) {
	if spec.TwoWay {
		return Run{}, ErrTwoWay
	}
	jobs, err := m.runJobs(ctx, &spec)
	if err != nil {
		return Run{}, err
	}
	interval := spec.Interval
	if spec.Continuous && interval <= 0 {
		interval = DefaultInterval
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	if err := m.recoverAbandoned(ctx); err != nil {
		return Run{}, err
	}
	run, err := m.startRun(ctx, spec, interval, jobs)
	if err != nil {
		return Run{}, err
	}
	if spec.OnStart != nil {
		spec.OnStart(run)
	}
	rr := &runner{m: m, id: run.ID, spec: spec, run: run, jobs: jobs, progress: progress, status: make([]RunMailboxStatus, len(jobs))}
	for i := range rr.status {
		rr.status[i] = RunMailboxQueued
	}
	stopBeat := rr.heartbeat()
	defer stopBeat()
	collect := rr.firstPasses(ctx)
	if ctx.Err() != nil || rr.failure() != nil {
		if err := rr.markNotReached(); err != nil {
			rr.setFailure(err)
		}
		if _, err := rr.end(RunInterrupted); err != nil {
			return rr.snapshot(), err
		}
		return rr.snapshot(), ctx.Err()
	}
	if !spec.Continuous {
		return rr.end(RunCompleted)
	}
	if err := rr.setState(RunCollecting, false); err != nil {
		return rr.snapshot(), err
	}
	rr.collect(ctx, collect, interval)
	return rr.end(RunStopped)
}

// runJobs validates spec and returns the run's jobs with defaults filled
// in and targets canonical.
func (m *Migrator) runJobs(ctx context.Context, spec *RunSpec) ([]Job, error) {
	if spec.Domain != "" {
		d, err := directory.CanonicalDomain(spec.Domain)
		if err != nil {
			return nil, fmt.Errorf("migration: run: %w", err)
		}
		spec.Domain = d
	}
	if spec.Interval < 0 {
		return nil, errors.New("migration: run: negative interval")
	}
	if err := checkDefaults(spec.Defaults); err != nil {
		return nil, fmt.Errorf("migration: run: defaults: %w", err)
	}
	var jobs []Job
	switch spec.Kind {
	case RunList:
		if len(spec.Jobs) == 0 {
			return nil, errors.New("migration: run: a by-list run needs at least one job")
		}
		if len(spec.Jobs) > MaxRunMailboxes {
			return nil, fmt.Errorf("migration: run: %d mailboxes; at most %d per run", len(spec.Jobs), MaxRunMailboxes)
		}
		seen := make(map[string]bool, len(spec.Jobs))
		for i, j := range spec.Jobs {
			j = fillDefaults(j, spec.Defaults)
			t, err := directory.CanonicalAddress(j.Target)
			if err != nil {
				return nil, fmt.Errorf("migration: run: job %d: target: %w", i+1, err)
			}
			j.Target = t
			if spec.Domain != "" && !strings.HasSuffix(t, "@"+spec.Domain) {
				return nil, fmt.Errorf("migration: run: job %d: target %s is not in domain %s", i+1, t, spec.Domain)
			}
			if seen[t] {
				return nil, fmt.Errorf("migration: run: job %d: target %s is listed twice", i+1, t)
			}
			seen[t] = true
			if j.Credentials.Login == "" {
				j.Credentials.Login = defaultLogin(t, j.Credentials.Mode)
			}
			if err := checkJob(j); err != nil {
				return nil, fmt.Errorf("migration: run: job %d (%s): %w", i+1, t, err)
			}
			jobs = append(jobs, j)
		}
	case RunFull:
		if spec.Domain == "" {
			return nil, errors.New("migration: run: a full run needs a domain")
		}
		if len(spec.Jobs) > 0 {
			return nil, errors.New("migration: run: a full run takes its mailboxes from the directory, not from jobs")
		}
		if m.opts.Users == nil {
			return nil, errors.New("migration: run: a full run needs Options.Users to list the domain's users")
		}
		after := ""
		for {
			users, err := m.opts.Users.ListUsers(ctx, spec.Domain, after, userPageSize)
			if err != nil {
				return nil, fmt.Errorf("migration: run: list users of %s: %w", spec.Domain, err)
			}
			for _, u := range users {
				if len(jobs) == MaxRunMailboxes {
					return nil, fmt.Errorf("migration: run: domain %s has more than %d users; run it by list in groups", spec.Domain, MaxRunMailboxes)
				}
				j := fillDefaults(Job{Target: u.Address}, spec.Defaults)
				j.Credentials.Login = defaultLogin(u.Address, j.Credentials.Mode)
				if err := checkJob(j); err != nil {
					return nil, fmt.Errorf("migration: run: %s: %w", u.Address, err)
				}
				jobs = append(jobs, j)
			}
			if len(users) == 0 {
				// A lister may cap the page below userPageSize, so
				// only an empty page ends the listing.
				break
			}
			after = users[len(users)-1].Address
		}
		if len(jobs) == 0 {
			return nil, fmt.Errorf("migration: run: domain %s has no users", spec.Domain)
		}
	default:
		return nil, fmt.Errorf("migration: run: unknown kind %q (want %q or %q)", spec.Kind, RunFull, RunList)
	}
	return jobs, nil
}

// fillDefaults returns j with what it lacks taken from d.
func fillDefaults(j, d Job) Job {
	if j.Source.Host == "" {
		j.Source.Host = d.Source.Host
	}
	if j.Source.Port == 0 {
		j.Source.Port = d.Source.Port
	}
	if j.Source.TLS == "" {
		j.Source.TLS = d.Source.TLS
	}
	if j.Source.TLS == "" {
		// The collector needs a mode; without one every pass would fail
		// as misconfigured after the run was recorded. Implicit TLS
		// (port 993) is the safe one.
		j.Source.TLS = TLSImplicit
	}
	if j.Source.CAFile == "" {
		j.Source.CAFile = d.Source.CAFile
	}
	j.Source.InsecureSkipVerify = j.Source.InsecureSkipVerify || d.Source.InsecureSkipVerify
	if j.Credentials.Mode == "" {
		j.Credentials.Mode = d.Credentials.Mode
		if j.Credentials.Mode == "" && j.Credentials.Service != "" {
			j.Credentials.Mode = AuthServicePlain
		}
	}
	if j.Credentials.Mode == "" {
		j.Credentials.Mode = AuthUser
	}
	if j.Credentials.Service == "" && j.Credentials.Mode != AuthUser {
		j.Credentials.Service = d.Credentials.Service
	}
	if j.Credentials.Password == "" {
		j.Credentials.Password = d.Credentials.Password
	}
	if j.Exclude == nil && d.Exclude != nil {
		j.Exclude = append([]string(nil), d.Exclude...)
	}
	if j.FolderMap == nil && d.FolderMap != nil {
		j.FolderMap = d.FolderMap
	}
	return j
}

// defaultLogin is the source login of a mailbox whose job names none: its
// address, or its local part (the mailbox alias) in the Exchange
// "domain\service\mailbox" form.
func defaultLogin(target string, mode AuthMode) string {
	if mode == AuthServiceExchange {
		if i := strings.LastIndexByte(target, '@'); i > 0 {
			return target[:i]
		}
	}
	return target
}

// checkSource validates source settings that are set.
func checkSource(s Source) error {
	if strings.ContainsAny(s.Host, " \t\r\n/@") {
		return fmt.Errorf("host %q is not a host name or address", s.Host)
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("port %d out of range 1-65535", s.Port)
	}
	switch s.TLS {
	case "", TLSImplicit, TLSStartTLS, TLSPlain:
	default:
		return fmt.Errorf("tls mode %q is not one of %s, %s, %s", s.TLS, TLSImplicit, TLSStartTLS, TLSPlain)
	}
	return nil
}

// checkAuthMode validates an authentication mode ("" allowed).
func checkAuthMode(mode AuthMode) error {
	switch mode {
	case "", AuthUser, AuthServicePlain, AuthServiceExchange:
		return nil
	}
	return fmt.Errorf("auth mode %q is not one of %s, %s, %s", mode, AuthUser, AuthServicePlain, AuthServiceExchange)
}

// checkDefaults validates the defaults of a run or a CSV file.
func checkDefaults(d Job) error {
	if err := checkSource(d.Source); err != nil {
		return err
	}
	return checkAuthMode(d.Credentials.Mode)
}

// checkJob validates a job after defaults have been filled in: the parts
// a run can tell are wrong without connecting anywhere.
func checkJob(j Job) error {
	if j.Source.Host == "" {
		return errors.New("no source host (give one for the job or as a default)")
	}
	if err := checkSource(j.Source); err != nil {
		return err
	}
	if err := checkAuthMode(j.Credentials.Mode); err != nil {
		return err
	}
	if j.Credentials.Mode != AuthUser && j.Credentials.Service == "" {
		return fmt.Errorf("auth mode %s needs a service account", j.Credentials.Mode)
	}
	if j.Credentials.Password == "" {
		return errors.New("no password (give one for the job or as a default)")
	}
	for _, f := range j.Exclude {
		if f == "" {
			return errors.New("empty folder name in exclusions")
		}
	}
	return nil
}

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
	job = r.jobs[i]
	target := job.Target
	rm := RunMailbox{RunID: r.id, Target: target, Started: m.runTime(), Status: RunMailboxRunning}

	st, serr := m.Status(ctx, target)
	switch {
	case serr == nil && st.State == StateDisabled:
		rm.Status, rm.Ended = RunMailboxDisabled, rm.Started
		rm.Message = "collector disabled (cut over); skipped"
		return Job{}, false, r.record(i, rm)
	case serr == nil && !r.spec.ForceUpdate:
		stored, err := m.storedJob(ctx, target)
		if err == nil {
			job, rm.KeptSettings = stored, true
		} else if !errors.Is(err, store.ErrNotFound) {
			serr = err
		}
	case serr == nil && r.spec.ForceUpdate:
		// Force-update replaces the source and credentials; the folder
		// map and exclusions stay as stored unless the run gives them
		// (nil: neither the job nor the defaults name any).
		if stored, err := m.storedJob(ctx, target); err == nil {
			if job.FolderMap == nil {
				job.FolderMap = stored.FolderMap
			}
			if job.Exclude == nil {
				job.Exclude = stored.Exclude
			}
		}
	case errors.Is(serr, store.ErrNotFound):
		serr = nil
	}
	rm.Host, rm.Port, rm.Login = job.Source.Host, job.Source.Port, job.Credentials.Login
	if serr != nil {
		if ctx.Err() != nil {
			rm.Status, rm.Ended, rm.Class = RunMailboxInterrupted, m.runTime(), ErrClassCanceled
			return Job{}, false, r.record(i, rm)
		}
		rm.Status, rm.Ended = RunMailboxError, m.runTime()
		rm.Error, rm.Class = serr.Error(), ErrClassTarget
		return Job{}, false, r.record(i, rm)
	}
	if err := r.record(i, rm); err != nil {
		return Job{}, false, err
	}

	ms, perr := m.sync(ctx, job, r.id, r.progress)
	rm.Ended = m.runTime()
	rm.Message = ms.LastMessage
	switch {
	case perr == nil:
		rm.Status = RunMailboxOK
		keep = true
	case errors.Is(perr, ErrDisabled):
		// Cut over between the check above and the pass.
		rm.Status, rm.Message = RunMailboxDisabled, "collector disabled (cut over); skipped"
	case ctx.Err() != nil || ClassOf(perr) == ErrClassCanceled:
		rm.Status, rm.Class = RunMailboxInterrupted, ErrClassCanceled
		rm.Error = perr.Error()
	default:
		rm.Status, rm.Class = RunMailboxError, ClassOf(perr)
		rm.Error = perr.Error()
		// A job the run itself got wrong (allowlist, unknown target)
		// will not heal by retrying; anything else may.
		keep = rm.Class != ErrClassConfig
	}
	if ms.State == StateDisabled {
		// Cut over while the pass ran.
		keep = false
	}
	return job, keep, r.record(i, rm)
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
