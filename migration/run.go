package migration

import (
	"context"
	"errors"
	"time"
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
	// Pass, if set, replaces the IMAP collector's pass: the run calls it
	// once per job (no collector record is made or read, so ForceUpdate
	// and cut-over do not apply) and keeps its summary and error in the
	// history like a collector's. Jobs whose Protocol is ProtocolIMAP
	// still go to their collectors, so one run may mix IMAP and, say,
	// EWS jobs (Pass then looks at Job.Protocol and Job.Endpoint); a job
	// of another protocol than IMAP needs Pass. Another kind of source (migration/ews)
	// runs through the same history and reports this way. A continuous
	// run with Pass is refused.
	Pass func(ctx context.Context, job Job, progress ProgressFunc) (summary string, err error)
	// Protocol names the source protocol in the history ("" is IMAP; a
	// Pass of another source names its own, e.g. "EWS"). Jobs that name
	// no protocol take it; Defaults fill in only jobs of this protocol.
	Protocol string
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
	Kind RunKind
	// Protocol is RunSpec.Protocol: "" for IMAP.
	Protocol    string `json:",omitempty"`
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
	// IgnoredSettings names the settings given to the run that differ
	// from the kept ones ("host", "port", "tls", "login", "password",
	// ...): the run did not use them; ForceUpdate would have.
	IgnoredSettings []string `json:",omitempty"`
	// Protocol and Endpoint are the job's (Job.Protocol: "" or "IMAP"
	// for an IMAP collector, "EWS" and the EWS URL for Exchange).
	Protocol string `json:",omitempty"`
	Endpoint string `json:",omitempty"`
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
	if spec.Pass != nil && spec.Continuous {
		return Run{}, errors.New("migration: run: continuous collection needs the IMAP collectors; a run with its own Pass makes one pass")
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
