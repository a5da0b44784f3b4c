package ews

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/lease"
)

// Record namespaces of the calendar [Syncer] (see [Namespaces]).
const (
	// nsSync: key target -> syncState (the calendar's SyncFolderItems
	// state and the store collection's sync token last pushed).
	nsSync = "migration.ews.sync"
	// nsLink: key target<sep>"n"<sep>object name -> link, and
	// target<sep>"i"<sep>ItemId -> object name: which Exchange item and
	// which store object are one event, and the ChangeKey and ETag each
	// had when the sync last wrote or read it.
	nsLink = "migration.ews.link"
	// nsConflict: key target<sep>time<sep>UID -> Conflict, the conflict
	// log an administrator reads ([Syncer.Conflicts]).
	nsConflict = "migration.ews.conflict"
	// nsLease: key lower-cased target -> the lease (package store/lease)
	// of the syncer running that target's loop.
	nsLease = "migration.ews.lease"
)

// ErrBusy is matched (errors.Is) by the report of a target whose
// calendar another syncer (another process, another node) is syncing
// right now: this syncer waits for its lease.
var ErrBusy = errors.New("ews: the calendar is being synced by another process")

// SyncTarget is what a [Syncer] needs from the store: a migration
// [Target] and the change feed that wakes the sync when a user changes
// an event in Mailyard. Every store backend satisfies it.
type SyncTarget interface {
	Target
	store.Feed
}

// AccessMode says how an [AccessList] selects the users whose calendar
// is synced both ways.
type AccessMode string

// Access modes.
const (
	// AllowList: only the listed users are synced both ways (the zero
	// mode; with an empty list nobody is).
	AllowList AccessMode = "allow"
	// DenyList: every user but the listed ones is synced both ways.
	DenyList AccessMode = "deny"
)

// AccessList selects the users whose calendars a [Syncer] syncs both
// ways; the others get the one-way import Exchange → Mailyard only.
type AccessList struct {
	Mode AccessMode
	// Entries are target addresses ("anna@example.com") or whole domains
	// ("@example.com"), compared without regard to case.
	Entries []string
}

// TwoWay reports whether the list selects target for two-way sync.
func (a AccessList) TwoWay(target string) bool {
	target = strings.ToLower(target)
	_, domain, _ := strings.Cut(target, "@")
	listed := false
	for _, e := range a.Entries {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == target || (strings.HasPrefix(e, "@") && e[1:] == domain) {
			listed = true
			break
		}
	}
	if a.Mode == DenyList {
		return !listed
	}
	return listed
}

func (a AccessList) check() error {
	if a.Mode != "" && a.Mode != AllowList && a.Mode != DenyList {
		return fmt.Errorf("ews: access list mode %q (want %q or %q)", a.Mode, AllowList, DenyList)
	}
	for _, e := range a.Entries {
		e = strings.TrimSpace(e)
		if e == "" || e == "@" || !strings.Contains(e, "@") {
			return fmt.Errorf("ews: access list entry %q is neither an address nor @domain", e)
		}
	}
	return nil
}

// SyncerOptions configure a [Syncer]. Zero values take the defaults
// named beside them.
type SyncerOptions struct {
	// Store holds the calendars, the sync state, the links and the
	// conflict log. Required.
	Store SyncTarget
	// Directory resolves a job's target address to its account. Required.
	Directory migration.Lookup
	// Client is the Exchange side. Required.
	Client *Client
	// Access selects the two-way users; the others are imported one way.
	Access AccessList
	// Interval is the period of the scheduled SyncFolderItems pass that
	// catches whatever notifications missed (5m).
	Interval time.Duration
	// PollInterval is how often the pull subscription is asked for
	// events (GetEvents), so Exchange changes arrive within about this
	// long (2s).
	PollInterval time.Duration
	// SubscriptionTimeout is the pull subscription's timeout in minutes
	// (10): Exchange drops it when not polled for that long.
	SubscriptionTimeout int
	// PageSize is SyncFolderItems' MaxChangesReturned (100).
	PageSize int
	// MaxConflicts is how many conflicts the log keeps per target; the
	// oldest go first (1000).
	MaxConflicts int
	// MaxAttachmentSize and MaxEventAttachments bound the file
	// attachments synced either way, as MigratorOptions' do the
	// migrated ones (10 MiB each): an Exchange attachment over them is
	// not copied into Mailyard (and never deleted in Exchange for its
	// absence there), an ATTACH over them is not sent to Exchange.
	MaxAttachmentSize, MaxEventAttachments int64
	// LeaseTTL is how long a target's lease lasts without renewal
	// (lease.DefaultTTL): a syncer that died (SIGKILL, a lost node)
	// leaves its targets to another syncer after this long, at once if
	// it was a process of the same host that no longer exists. A
	// waiting syncer tries again every LeaseTTL/4.
	LeaseTTL time.Duration
	// OnCycle, if set, is called after each pass of a job's loop.
	OnCycle func(CycleReport)
	Logger  *slog.Logger
	// Now is the clock of the conflict log (time.Now).
	Now func() time.Time
}

// CycleReport is what one pass of a job's sync loop did.
type CycleReport struct {
	Target string
	// TwoWay says the target is synced both ways.
	TwoWay bool
	// Trigger is what started the pass: "start", "schedule",
	// "notification" (Exchange events) or "change" (the store's feed).
	Trigger string
	// Pulled counts events written into Mailyard from Exchange, Pushed
	// those written to Exchange, Deleted the deletions either way,
	// Conflicts the conflicts decided, Skipped the events of Mailyard no
	// EWS item can hold (an RRULE without an EWS pattern, a VTODO).
	Pulled, Pushed, Deleted, Conflicts, Skipped int
	// Err is the pass's failure (a *[migration.Error]); the loop goes on
	// and retries at the next trigger.
	Err error
}

// Syncer keeps Exchange calendars and Mailyard calendars in step during
// coexistence (see the package documentation, "Two-way calendar sync").
type Syncer struct {
	opts SyncerOptions
	mig  *Migrator
}

// NewSyncer checks opts and returns a syncer.
func NewSyncer(opts SyncerOptions) (*Syncer, error) {
	if opts.Store == nil || opts.Directory == nil || opts.Client == nil {
		return nil, errors.New("ews: SyncerOptions need Store, Directory and Client")
	}
	if err := opts.Access.check(); err != nil {
		return nil, err
	}
	if opts.Interval < 0 || opts.PollInterval < 0 || opts.PageSize < 0 || opts.MaxConflicts < 0 || opts.SubscriptionTimeout < 0 || opts.LeaseTTL < 0 {
		return nil, errors.New("ews: SyncerOptions must not be negative")
	}
	setDefault(&opts.Interval, 5*time.Minute)
	setDefault(&opts.PollInterval, 2*time.Second)
	setDefault(&opts.SubscriptionTimeout, 10)
	setDefault(&opts.PageSize, 100)
	setDefault(&opts.MaxConflicts, 1000)
	setDefault(&opts.LeaseTTL, lease.DefaultTTL)
	opts.SubscriptionTimeout = min(opts.SubscriptionTimeout, 1440)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m, err := NewMigrator(MigratorOptions{Store: opts.Store, Directory: opts.Directory, Client: opts.Client,
		PageSize: opts.PageSize, Logger: opts.Logger, Now: opts.Now,
		MaxAttachmentSize: opts.MaxAttachmentSize, MaxEventAttachments: opts.MaxEventAttachments})
	if err != nil {
		return nil, err
	}
	return &Syncer{opts: opts, mig: m}, nil
}

// Run keeps the calendars of jobs in sync until ctx is done, each job in
// its own loop. A loop first takes the target's lease in the store, so
// that two syncers (two processes, two nodes on one PostgreSQL) never
// sync one target at once: while another holds it, the loop reports a
// *[migration.Error] wrapping [ErrBusy] (Trigger "lease") once and
// waits, trying again every LeaseTTL/4, and takes the target over when
// the holder releases it or its lease expires. The lease is renewed
// while the loop runs and released when it stops; a loop whose lease
// was lost (this process stalled past its expiry and another took
// over) stops its passes and waits again. Holding the lease, the loop
// runs a pass at start, a pass when the pull subscription
// reports changes in the Exchange calendar, a pass when the store
// reports a change of the target's calendar (two-way jobs), and a
// scheduled pass every Interval. A failed pass is reported through
// OnCycle and logged, and the loop goes on. Everything a pass did is
// durable when it ends, so Run after a stop (even SIGKILL) resumes
// where the last one was. Run returns ctx's error.
func (s *Syncer) Run(ctx context.Context, jobs []Job) error {
	seen := map[string]bool{}
	for _, j := range jobs {
		k := strings.ToLower(j.Target)
		if j.Target == "" || seen[k] {
			return fmt.Errorf("ews: sync: target %q is empty or listed twice", j.Target)
		}
		seen[k] = true
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() { s.loop(ctx, j) })
	}
	wg.Wait()
	return ctx.Err()
}

// SyncOnce runs one pass for job: Exchange → Mailyard, then, for a
// two-way job, Mailyard → Exchange.
//
// It holds the target's lease for the pass, and fails with ErrBusy when
// another syncer holds it.
func (s *Syncer) SyncOnce(ctx context.Context, job Job) CycleReport {
	l, err := s.acquire(ctx, job)
	if err != nil {
		return CycleReport{Target: job.Target, TwoWay: s.opts.Access.TwoWay(job.Target), Trigger: "start", Err: err}
	}
	defer l.Release()
	w, err := s.worker(ctx, job)
	if err != nil {
		return CycleReport{Target: job.Target, TwoWay: s.opts.Access.TwoWay(job.Target), Trigger: "start", Err: err}
	}
	return w.cycle(ctx, "start", true)
}

// worker is the state of one job's loop.
type worker struct {
	s      *Syncer
	p      *pass
	twoWay bool
	coll   store.Collection
	// pushed is the collection's sync token after the last push.
	pushed uint64
}

func (s *Syncer) worker(ctx context.Context, job Job) (*worker, error) {
	account, err := migration.ResolveTarget(ctx, s.opts.Directory, s.opts.Store, job.Target)
	if err != nil {
		return nil, err
	}
	p := &pass{m: s.mig, job: job, account: account, mb: s.opts.Client.Mailbox(job.Mailbox)}
	coll, err := p.defaultCollection(ctx, calendarKind)
	if err != nil {
		return nil, p.fail(ctx, calendarKind.folder, err)
	}
	return &worker{s: s, p: p, twoWay: s.opts.Access.TwoWay(job.Target), coll: coll}, nil
}

// acquire takes job's target lease, or fails with a *migration.Error:
// wrapping ErrBusy (and naming the holder) when another syncer holds it.
func (s *Syncer) acquire(ctx context.Context, job Job) (*lease.Lease, error) {
	l, err := lease.Acquire(ctx, lease.Options{Records: s.opts.Store, Namespace: nsLease, Key: strings.ToLower(job.Target),
		TTL: s.opts.LeaseTTL, Now: s.opts.Now, Logger: s.opts.Logger})
	if held, ok := errors.AsType[*lease.HeldError](err); ok {
		h := held.Holder
		return nil, &migration.Error{Class: migration.ErrClassConfig, Target: job.Target,
			Err: fmt.Errorf("%w (process %d on %s, since %s)", ErrBusy, h.PID, h.Host, h.Since.UTC().Format(time.RFC3339))}
	}
	if err != nil {
		class := migration.ErrClassTarget // the store failed
		if ctx.Err() != nil {
			class = migration.ErrClassCanceled
		}
		return nil, &migration.Error{Class: class, Target: job.Target, Err: err}
	}
	return l, nil
}

// loop is Run for one job: it waits for the target's lease, and syncs
// while it holds it.
func (s *Syncer) loop(ctx context.Context, job Job) {
	log := s.opts.Logger.With("target", job.Target)
	for {
		var l *lease.Lease
		for waiting := false; l == nil; {
			var err error
			if l, err = s.acquire(ctx, job); err != nil {
				if ctx.Err() != nil {
					return
				}
				if !waiting || !errors.Is(err, ErrBusy) {
					s.report(CycleReport{Target: job.Target, TwoWay: s.opts.Access.TwoWay(job.Target), Trigger: "lease", Err: err})
					log.Info("ews sync: waiting for the target's lease", "err", err)
				}
				waiting = errors.Is(err, ErrBusy)
				if !sleep(ctx, s.opts.LeaseTTL/4) {
					return
				}
			}
		}
		held, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-l.Lost():
				cancel()
			case <-held.Done():
			}
		}()
		s.hold(held, job, log)
		lost := held.Err() != nil && ctx.Err() == nil
		cancel()
		l.Release()
		if !lost {
			return
		}
		log.Warn("ews sync: the target's lease was lost to another syncer; waiting for it again")
	}
}

// hold is the loop of one job while its syncer holds the target's
// lease; it returns when ctx ends (the lease lost, or Run stopped), or
// when the store's change feed closes.
func (s *Syncer) hold(ctx context.Context, job Job, log *slog.Logger) {
	var w *worker
	for w == nil {
		var err error
		if w, err = s.worker(ctx, job); err != nil {
			s.report(CycleReport{Target: job.Target, TwoWay: s.opts.Access.TwoWay(job.Target), Trigger: "start", Err: err})
			log.Warn("ews sync: cannot start", "err", err)
			if !sleep(ctx, s.opts.Interval) {
				return
			}
		}
	}
	var changes <-chan store.Change
	if w.twoWay {
		sub, err := s.opts.Store.Subscribe(ctx, w.p.account)
		if err != nil {
			s.report(CycleReport{Target: job.Target, TwoWay: true, Trigger: "start", Err: w.p.fail(ctx, calendarKind.folder, err)})
			return
		}
		defer sub.Close()
		changes = sub.C()
	}
	// Subscribed before the first pass, so that nothing changed during
	// it goes unnoticed.
	n := &notifier{mb: w.p.mb, timeout: s.opts.SubscriptionTimeout}
	defer n.close()
	if err := n.subscribe(ctx); err != nil {
		log.Warn("ews sync: subscribe", "err", err)
	}
	s.report(w.cycle(ctx, "start", true))
	poll := time.NewTicker(s.opts.PollInterval)
	defer poll.Stop()
	schedule := time.NewTicker(s.opts.Interval)
	defer schedule.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-schedule.C:
			s.report(w.cycle(ctx, "schedule", true))
		case <-poll.C:
			if w.twoWay && w.localChanged(ctx) {
				s.report(w.cycle(ctx, "change", false))
			}
			changed, err := n.poll(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("ews sync: notifications", "err", err)
			}
			if changed {
				s.report(w.cycle(ctx, "notification", true))
			}
		case c, ok := <-changes:
			if !ok {
				return
			}
			if c.Kind == store.ChangeOverflow || (c.Kind == store.ChangeCollection && c.CollectionID == w.coll.ID) {
				s.report(w.cycle(ctx, "change", false))
			}
		}
	}
}

// localChanged reports whether the calendar's sync token moved since
// the last push: a change the feed did not deliver because another
// process wrote it (SQLite's feed is per process; PostgreSQL's
// LISTEN/NOTIFY reaches every process).
func (w *worker) localChanged(ctx context.Context) bool {
	c, err := w.s.opts.Store.Collection(ctx, w.p.account, store.KindCalendar, w.coll.Name)
	return err == nil && c.SyncToken != w.pushed
}

func (s *Syncer) report(r CycleReport) {
	if s.opts.OnCycle != nil {
		s.opts.OnCycle(r)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// notifier holds a pull subscription to the Exchange calendar
// ([MS-OXWSNTIF] §3.1.4.3), made again when Exchange dropped it.
type notifier struct {
	mb      *Mailbox
	timeout int
	id, wm  string
}

func (n *notifier) subscribe(ctx context.Context) error {
	id, wm, err := n.mb.Subscribe(ctx, []FolderRef{{Distinguished: "calendar"}}, n.timeout)
	if err != nil {
		return err
	}
	n.id, n.wm = id, wm
	return nil
}

// poll reports whether the calendar changed since the last poll. A
// subscription Exchange dropped (expired, overflowed, unknown after a
// restart of the server) is made again and reported as a change, so
// that SyncFolderItems finds what happened in between.
func (n *notifier) poll(ctx context.Context) (bool, error) {
	if n.id == "" {
		if err := n.subscribe(ctx); err != nil {
			return false, err
		}
		return true, nil
	}
	changed := false
	for {
		events, more, err := n.mb.GetEvents(ctx, n.id, n.wm)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && (e.Code == "ErrorSubscriptionNotFound" || e.Code == "ErrorExpiredSubscription" ||
				e.Code == "ErrorMissedNotificationEvents" || e.Code == "ErrorInvalidWatermark") {
				n.id = ""
				return true, nil
			}
			return changed, err
		}
		for _, ev := range events {
			if ev.Watermark != "" {
				n.wm = ev.Watermark
			}
			if ev.Kind != "StatusEvent" {
				changed = true
			}
		}
		if !more {
			return changed, nil
		}
	}
}

func (n *notifier) close() {
	if n.id == "" {
		return
	}
	// The loop's context is done; Unsubscribe gets a short one of its own.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.mb.Unsubscribe(ctx, n.id)
}
