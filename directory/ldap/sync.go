package ldap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/lease"
)

// Errors.
var (
	// ErrSafetyGuard: a full sync would have disabled or deleted more
	// than Config.MaxDeleteShare of the synced users, or removed more of
	// the synced groups; it changed nothing. Check the base DNs and
	// filters, or force the sync.
	ErrSafetyGuard = errors.New("ldap: safety guard: sync would remove too many entries")
	// ErrUnavailable: no configured server could be reached (or none
	// accepted the service bind).
	ErrUnavailable = errors.New("ldap: no server available")
	// ErrSyncRunning: a sync of this connection is already running, in
	// this process or in another one sharing the store (a node of a
	// cluster on one PostgreSQL; the error then names it).
	ErrSyncRunning = errors.New("ldap: a sync is already running")
	// ErrNotDue: SyncOptions.Every is set and a sync of this connection
	// (by any process sharing the store) started more recently.
	ErrNotDue = errors.New("ldap: no sync due yet")
)

// workers is how many directory writes a sync keeps in flight; the
// embedded store commits concurrent writes together.
const workers = 32

// Options are a Connector's dependencies. Dir is required.
type Options struct {
	// Dir receives the synced entries. It must also be a GroupTarget,
	// and a ContactTarget, VanishedDeleter or DomainCreator when the
	// Config uses address-book filters, DeleteVanishedAfter or
	// CreateDomains; a *builtin.Directory is all of them.
	Dir Target
	// Records keeps the sync status and change cursor; usually the same
	// store as Dir's.
	Records store.Records
	// Logger receives sync progress (never passwords). Nil discards.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Connector syncs one external directory into the built-in one and
// checks the passwords of its users by binding as them. It is safe for
// concurrent use; syncs of one Connector never overlap.
type Connector struct {
	targets // Options.Dir and the optional interfaces found on it

	cfg     Config
	records store.Records
	log     *slog.Logger
	now     func() time.Time
	dial    *dialer

	syncMu sync.Mutex
	// dnCache maps normalised DNs of synced users and groups to their
	// primary addresses, for resolving group members in incremental
	// syncs. Nil until a sync fills it.
	cacheMu sync.Mutex
	dnCache map[string]string
}

var _ directory.SourceAuthenticator = (*Connector)(nil)

// New returns a connector for cfg (validated, defaults applied).
func New(cfg Config, opts Options) (*Connector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Dir == nil || opts.Records == nil {
		return nil, errors.New("ldap: Options.Dir and Options.Records are required")
	}
	cfg = cfg.withDefaults()
	t, err := findTargets(opts.Dir, cfg)
	if err != nil {
		return nil, err
	}
	c := &Connector{cfg: cfg, targets: t, records: opts.Records, log: opts.Logger, now: opts.Now, dial: newDialer(cfg)}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Source returns the directory source name, "ldap:NAME".
func (c *Connector) Source() string { return c.cfg.Source() }

// Name returns the connection's name.
func (c *Connector) Name() string { return c.cfg.Name }

// SyncOptions select the kind of sync.
type SyncOptions struct {
	// Full reads every entry and deals with what vanished: users are
	// disabled with their mail kept (and deleted once
	// Config.DeleteVanishedAfter has passed), groups and address-book
	// entries are removed. Otherwise only
	// entries changed since the last run are read (uSNChanged or
	// modifyTimestamp), which cannot see deletions; a sync without a
	// cursor for the server it reaches is full anyway.
	Full bool
	// Force overrides the safety guard.
	Force bool
	// Every, if set, makes this a scheduled sync: it runs only if the
	// last sync of this connection, by any process sharing the store,
	// started at least 9/10 of Every ago (the slack lets a scheduler
	// that ticks every Every run on each tick); otherwise Sync returns
	// ErrNotDue and changes nothing. Several nodes that each schedule a
	// sync every Every thus sync the connection once per Every between
	// them.
	Every time.Duration
	// FullEvery, if set, makes the sync full when the last full sync
	// succeeded FullEvery ago or longer (also when Full is false).
	FullEvery time.Duration
}

// Status returns the stored status of the connection.
func (c *Connector) Status(ctx context.Context) (Status, error) {
	return ReadStatus(ctx, c.records, c.cfg.Name)
}

// Sync runs one sync and returns its status (also stored, see
// [ReadStatus]). Problems with single entries are counted, logged and
// listed in Status.Errors without failing the run; the error is for a
// run that could not complete (no server, a failed search, the safety
// guard), in which case nothing was removed or disabled and the cursor
// is unchanged. Every run first completes mailbox deletions that a crash
// interrupted ([VanishedDeleter.CompleteDeletions], if the target has it).
//
// One sync of a connection runs at a time among all the processes that
// share the store: a sync holds a lease (package store/lease, namespace
// "ldapsync.lease", keyed by the connection's name) while it runs, and a
// sync started meanwhile anywhere is ErrSyncRunning. A process that dies
// mid-sync loses the lease when it expires (2 minutes without renewal),
// and a sync that loses its lease stops.
func (c *Connector) Sync(ctx context.Context, opts SyncOptions) (Status, error) {
	if !c.syncMu.TryLock() {
		return Status{}, ErrSyncRunning
	}
	defer c.syncMu.Unlock()
	l, err := lease.Acquire(ctx, lease.Options{Records: c.records, Namespace: nsLease, Key: c.cfg.Name, Now: c.now, Logger: c.log})
	if errors.Is(err, lease.ErrHeld) {
		return Status{}, fmt.Errorf("%w: %w", ErrSyncRunning, err)
	}
	if err != nil {
		return Status{}, err
	}
	defer l.Release()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-l.Lost():
			cancel(errors.New("ldap: sync lease lost to another process"))
		case <-ctx.Done():
		}
	}()
	prev, err := c.Status(ctx)
	if err != nil {
		return Status{}, err
	}
	now := c.now()
	if opts.Every > 0 && !prev.Started.IsZero() && now.Sub(prev.Started) < opts.Every-opts.Every/10 {
		return prev, ErrNotDue
	}
	if opts.FullEvery > 0 && now.Sub(prev.LastFull) >= opts.FullEvery {
		opts.Full = true
	}
	r := &run{now: c.now, dom: c.newDomains(), st: Status{
		Name: c.cfg.Name, State: StateRunning, Started: c.now(),
		Cursor: prev.Cursor, CursorServer: prev.CursorServer, LastFull: prev.LastFull,
		Vanished: prev.Vanished, VanishedUsers: prev.VanishedUsers,
	}}
	c.completeDeletions(ctx, r)
	full := opts.Full || prev.Cursor == ""
	r.st.Kind = "incremental"
	if full {
		r.st.Kind = "full"
	}
	conn, server, err := c.dial.connect(ctx, c.cfg.BindDN, c.cfg.BindPassword)
	if err == nil {
		defer conn.Close()
		stop := watch(ctx, conn)
		defer stop()
		r.st.Server = server
		if !full && prev.CursorServer != server {
			r.logf("server %s is not the one the change cursor belongs to (%s): full sync", server, prev.CursorServer)
			full, r.st.Kind = true, "full"
		}
		r.logf("%s sync from %s started", r.st.Kind, server)
		_ = writeStatus(ctx, c.records, r.snapshot())
		if full {
			err = c.fullSync(ctx, conn, r, opts.Force)
		} else {
			err = c.incrementalSync(ctx, conn, r, prev.Cursor)
		}
	}
	r.st.Finished = c.now()
	r.st.Duration = r.st.Finished.Sub(r.st.Started)
	if err != nil {
		r.errorf("%v", err)
		r.st.State = StateError
		r.st.Cursor, r.st.CursorServer = prev.Cursor, prev.CursorServer
		c.log.WarnContext(ctx, "ldap sync failed", "name", c.cfg.Name, "err", err)
	} else {
		r.st.State = StateSuccess
		if r.st.Kind == "full" {
			r.st.LastFull = r.st.Started
		}
		c.log.InfoContext(ctx, "ldap sync done", "name", c.cfg.Name, "kind", r.st.Kind, "added", r.st.Added,
			"updated", r.st.Updated, "disabled", r.st.Disabled, "deleted", r.st.Deleted, "skipped", r.st.Skipped,
			"reappeared", r.st.Reappeared, "vanished", r.st.Vanished, "duration", r.st.Duration)
	}
	r.logf("%s sync %s in %s", r.st.Kind, r.st.State, r.st.Duration.Round(time.Millisecond))
	st := r.snapshot()
	if werr := writeStatus(context.WithoutCancel(ctx), c.records, st); werr != nil && err == nil {
		err = werr
	}
	return st, err
}

// cursor tracks the highest change marker seen.
type cursor struct {
	mu      sync.Mutex
	numeric bool
	max     string
}

func (c *cursor) see(v string) {
	if v == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.numeric {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return
		}
		if m, _ := strconv.ParseUint(c.max, 10, 64); c.max == "" || n > m {
			c.max = v
		}
		return
	}
	// GeneralizedTime in UTC ("20250301120000Z", possibly with a
	// fraction) orders as text when the lengths agree.
	if len(v) > len(c.max) || len(v) == len(c.max) && v > c.max {
		c.max = v
	}
}

func (c *Connector) numericCursor() bool {
	return strings.EqualFold(c.cfg.Mapping.Changed, "uSNChanged")
}

// pool runs directory writes with bounded concurrency.
type pool struct {
	wg  sync.WaitGroup
	sem chan struct{}
}

func newPool() *pool { return &pool{sem: make(chan struct{}, workers)} }

func (p *pool) Go(fn func()) {
	p.sem <- struct{}{}
	p.wg.Add(1)
	go func() {
		defer func() { <-p.sem; p.wg.Done() }()
		fn()
	}()
}

func (p *pool) Wait() { p.wg.Wait() }

// domains makes sure the domains of synced addresses are hosted, creating
// them in the tenant when Config.CreateDomains is set.
type domains struct {
	c     *Connector
	mu    sync.Mutex
	known map[string]bool
}

func (d *domains) ensure(ctx context.Context, addr string) {
	if d.c.domainCreator == nil { // Config.CreateDomains unset
		return
	}
	a, err := directory.ParseAddress(addr)
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.known[a.Domain] {
		return
	}
	if _, err := d.c.domainCreator.LookupDomain(ctx, a.Domain); errors.Is(err, directory.ErrNotFound) {
		if _, err := d.c.domainCreator.CreateDomain(ctx, directory.Domain{Name: a.Domain, Tenant: d.c.cfg.Tenant}); err != nil && !errors.Is(err, directory.ErrExists) {
			return
		}
	}
	d.known[a.Domain] = true
}

func (c *Connector) newDomains() *domains { return &domains{c: c, known: map[string]bool{}} }

func (c *Connector) userSpec(e Entry) directory.User {
	return directory.User{
		Address: e.Mail, Aliases: e.Aliases, DisplayName: e.DisplayName, GivenName: e.GivenName,
		Surname: e.Surname, Title: e.Title, Department: e.Department, Company: e.Company, Office: e.Office,
		Phone: e.Phone, Mobile: e.Mobile, Disabled: e.Disabled,
		QuotaBytes: c.cfg.QuotaBytes, QuotaMessages: c.cfg.QuotaMessages,
		Source: c.Source(), ExternalID: e.ID, ExternalDN: e.DN,
	}
}

// applyUser writes one user and counts the outcome.
func (c *Connector) applyUser(ctx context.Context, r *run, e Entry) {
	r.dom.ensure(ctx, e.Mail)
	res, err := c.dir.UpsertSourcedUser(ctx, c.userSpec(e), e.Photo)
	if err != nil {
		r.errorf("user %s (%s): %v", e.Mail, printableDN(e.DN), err)
		r.count(func(s *Status) { r.writeFailed = true })
		return
	}
	for _, s := range res.Skipped {
		r.logf("user %s: left out %s", e.Mail, s)
	}
	r.count(func(s *Status) {
		s.countChange(res.Change)
		if e.Disabled && res.Change != directory.SyncUnchanged {
			s.Disabled++
		}
		if res.Reappeared {
			s.Reappeared++
			s.Vanished = max(s.Vanished-1, 0)
			s.VanishedUsers = slices.DeleteFunc(s.VanishedUsers, func(v VanishedUser) bool { return v.Address == e.Mail })
		}
	})
	if res.Reappeared {
		r.logf("user %s is listed again: %s", e.Mail, c.reappearedWord(ctx, res.ID))
	}
	if res.Change != directory.SyncUnchanged {
		r.logf("user %s %s", e.Mail, changeWord(res.Change))
	}
}

// reappearedWord says whether a user listed again is enabled.
func (c *Connector) reappearedWord(ctx context.Context, id string) string {
	u, err := c.dir.User(ctx, id)
	switch {
	case err != nil:
		return "vanished mark cleared"
	case u.LocallyDisabled:
		return "vanished mark cleared, still disabled by an administrator"
	case u.Disabled:
		return "vanished mark cleared, disabled at the source"
	}
	return "enabled again"
}

// countChange counts one written entry by its outcome.
func (s *Status) countChange(c directory.SyncChange) {
	switch c {
	case directory.SyncAdded:
		s.Added++
	case directory.SyncUpdated:
		s.Updated++
	default:
		s.Unchanged++
	}
}

func changeWord(c directory.SyncChange) string {
	switch c {
	case directory.SyncAdded:
		return "added"
	case directory.SyncUpdated:
		return "updated"
	}
	return "unchanged"
}

// readUsers runs the user search with filter, mapping and applying each
// entry; it returns the IDs seen.
func (c *Connector) readUsers(ctx context.Context, conn *goldap.Conn, r *run, filter string, cur *cursor, dnAddr map[string]string) (map[string]bool, error) {
	seen := map[string]bool{}
	p := newPool()
	err := pagedSearch(conn, c.cfg.UserBase, filter, c.cfg.Mapping.userAttributes(), c.cfg.PageSize, func(le *goldap.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := c.cfg.Mapping.MapUser(le)
		if err != nil {
			r.errorf("%v", err)
			return nil
		}
		cur.see(e.Changed)
		if excluded(c.cfg.ExcludeUsers, e) {
			r.logf("user %s excluded", e.Mail)
			r.count(func(s *Status) { s.Skipped++ })
			return nil
		}
		seen[e.ID] = true
		dnAddr[normalizeDN(e.DN)] = e.Mail
		p.Go(func() { c.applyUser(ctx, r, e) })
		return nil
	})
	p.Wait()
	return seen, err
}

// readGroups runs the group search with filter and returns the mapped,
// not excluded groups.
func (c *Connector) readGroups(ctx context.Context, conn *goldap.Conn, r *run, filter string, cur *cursor, dnAddr map[string]string) ([]Entry, error) {
	var out []Entry
	err := pagedSearch(conn, c.cfg.GroupBase, filter, c.cfg.Mapping.groupAttributes(), c.cfg.PageSize, func(le *goldap.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := c.cfg.Mapping.MapGroup(le)
		if err != nil {
			r.errorf("%v", err)
			return nil
		}
		cur.see(e.Changed)
		if excluded(c.cfg.ExcludeGroups, e) {
			r.logf("group %s excluded", e.Mail)
			r.count(func(s *Status) { s.Skipped++ })
			return nil
		}
		dnAddr[normalizeDN(e.DN)] = e.Mail
		out = append(out, e)
		return nil
	})
	return out, err
}

// applyGroups writes groups with their members resolved through dnAddr,
// in two passes so that nested groups resolve: first the groups that do
// not exist yet are created (members that are groups created later in
// the same pass are skipped), then every group is written with all its
// members. Existing groups are thus written once, and never lose a
// nested member in between.
func (c *Connector) applyGroups(ctx context.Context, r *run, groups []Entry, dnAddr map[string]string) {
	var added sync.Map
	apply := func(e Entry, create bool) {
		if create {
			if _, err := c.groups.GroupByExternalID(ctx, c.Source(), e.ID); !errors.Is(err, directory.ErrNotFound) {
				return // exists (or unreadable): the second pass writes it
			}
		}
		r.dom.ensure(ctx, e.Mail)
		g := directory.Group{
			Address: e.Mail, Aliases: e.Aliases, DisplayName: e.DisplayName,
			Source: c.Source(), ExternalID: e.ID, ExternalDN: e.DN,
		}
		for _, dn := range e.Members {
			if a, ok := dnAddr[dn]; ok {
				g.Members = append(g.Members, a)
			}
		}
		res, err := c.groups.UpsertSourcedGroup(ctx, g)
		if err != nil {
			r.errorf("group %s (%s): %v", e.Mail, printableDN(e.DN), err)
			r.count(func(s *Status) { r.writeFailed = true })
			return
		}
		if create {
			added.Store(e.ID, true)
			r.count(func(s *Status) { s.Added++ })
			r.logf("group %s added", e.Mail)
			return
		}
		for _, s := range res.Skipped {
			r.logf("group %s: left out %s", e.Mail, s)
		}
		if _, ok := added.Load(e.ID); ok {
			return // counted when created
		}
		r.count(func(s *Status) {
			if res.Change == directory.SyncUnchanged {
				s.Unchanged++
			} else {
				s.Updated++
			}
		})
		if res.Change != directory.SyncUnchanged {
			r.logf("group %s %s", e.Mail, changeWord(res.Change))
		}
	}
	p := newPool()
	for _, e := range groups {
		p.Go(func() { apply(e, true) })
	}
	p.Wait()
	for _, e := range groups {
		p.Go(func() { apply(e, false) })
	}
	p.Wait()
}

func (c *Connector) fullSync(ctx context.Context, conn *goldap.Conn, r *run, force bool) error {
	cur := &cursor{numeric: c.numericCursor()}
	dnAddr := map[string]string{}
	existingUsers, err := c.dir.ListSourced(ctx, c.Source(), directory.KindUser)
	if err != nil {
		return err
	}
	existingGroups, err := c.dir.ListSourced(ctx, c.Source(), directory.KindGroup)
	if err != nil {
		return err
	}
	seenUsers, err := c.readUsers(ctx, conn, r, c.cfg.UserFilter, cur, dnAddr)
	if err != nil {
		return err
	}
	var groups []Entry
	if c.cfg.GroupFilter != "" {
		if groups, err = c.readGroups(ctx, conn, r, c.cfg.GroupFilter, cur, dnAddr); err != nil {
			return err
		}
	}
	seenGroups := map[string]bool{}
	for _, g := range groups {
		seenGroups[g.ID] = true
	}
	goneUsers, err := c.sortVanished(ctx, vanished(existingUsers, seenUsers), r.st.Started)
	if err != nil {
		return err
	}
	goneGroups := vanished(existingGroups, seenGroups)
	if !force {
		// The users the source listed at the last full sync: a share of
		// them vanishing at once is a misconfiguration more likely than
		// a reorganisation. Users deleted after their retention period
		// were guarded when they vanished, but deleting many at once is
		// guarded again.
		listed := len(existingUsers) - len(goneUsers.kept) - len(goneUsers.expired)
		for _, g := range []struct {
			what           string
			gone, existing int
		}{
			{"users", len(goneUsers.fresh), listed},
			{"vanished users to delete with their mailbox", len(goneUsers.expired), len(existingUsers)},
			{"groups", len(goneGroups), len(existingGroups)},
		} {
			if err := c.guard(g.what, g.gone, g.existing); err != nil {
				r.logf("%v", err)
				return err
			}
		}
	}
	c.applyGroups(ctx, r, groups, dnAddr)
	if err := c.syncAddressBook(ctx, conn, r, seenUsers, seenGroups); err != nil {
		return err
	}
	for _, ref := range goneGroups {
		if err := c.groups.DeleteGroup(ctx, ref.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
			r.errorf("delete group %s: %v", ref.ExternalID, err)
			continue
		}
		r.logf("group %s deleted (gone from the directory)", ref.ExternalID)
		r.count(func(s *Status) { s.Deleted++ })
	}
	c.applyVanished(ctx, r, goneUsers, r.st.Started)
	c.cacheMu.Lock()
	c.dnCache = dnAddr
	c.cacheMu.Unlock()
	r.advance(cur)
	return nil
}

// advance moves the change cursor to the highest marker seen, unless an
// entry could not be written: then the next incremental sync reads it
// (and everything after the old cursor) again rather than skipping it
// until the next full sync. Entries that cannot be mapped at all do not
// hold the cursor back; reading them again would not help.
func (r *run) advance(cur *cursor) {
	if cur.max == "" {
		return
	}
	if r.writeFailed {
		r.logf("change cursor kept at %s: some entries could not be written", r.st.Cursor)
		return
	}
	r.st.Cursor, r.st.CursorServer = cur.max, r.st.Server
}

// goneUsers are the synced users a full sync did not find, by how long
// they have been missing.
type goneUsers struct {
	fresh   []directory.User // missing since this run
	kept    []directory.User // missing since an earlier run, kept
	expired []directory.User // missing for Config.DeleteVanishedAfter or longer
}

// sortVanished reads the users of refs and sorts them by how long they
// have been missing as of now.
func (c *Connector) sortVanished(ctx context.Context, refs []directory.SourcedRef, now time.Time) (goneUsers, error) {
	var g goneUsers
	for _, ref := range refs {
		u, err := c.dir.User(ctx, ref.ID)
		if errors.Is(err, directory.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return goneUsers{}, err
		}
		switch {
		case u.Vanished.IsZero():
			g.fresh = append(g.fresh, u)
		case c.cfg.DeleteVanishedAfter > 0 && !u.Vanished.After(now.Add(-c.cfg.DeleteVanishedAfter)):
			g.expired = append(g.expired, u)
		default:
			g.kept = append(g.kept, u)
		}
	}
	return g, nil
}

// applyVanished disables the users missing from the source, keeping their
// mail, and deletes those missing for longer than the retention period
// with their mailbox; Status.Vanished and VanishedUsers list the users
// kept.
func (c *Connector) applyVanished(ctx context.Context, r *run, g goneUsers, now time.Time) {
	var kept []VanishedUser
	for _, u := range slices.Concat(g.fresh, g.kept) {
		disabled, err := c.dir.MarkVanished(ctx, u.ID, now)
		if errors.Is(err, directory.ErrNotFound) {
			continue
		}
		if err != nil {
			r.errorf("disable vanished user %s: %v", u.Address, err)
			continue
		}
		since := u.Vanished
		if since.IsZero() {
			since = now
			r.logf("user %s vanished from the directory: disabled, account and mail kept", u.Address)
		}
		if disabled {
			r.count(func(s *Status) { s.Disabled++ })
		}
		kept = append(kept, VanishedUser{Address: u.Address, Since: since.UTC()})
	}
	cutoff := now.Add(-c.cfg.DeleteVanishedAfter)
	for _, u := range g.expired {
		err := c.deleter.DeleteVanished(ctx, u.ID, cutoff)
		if errors.Is(err, directory.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			if _, gerr := c.dir.User(ctx, u.ID); !errors.Is(gerr, directory.ErrNotFound) {
				r.errorf("delete vanished user %s: %v", u.Address, err)
				continue
			}
			// The user is deleted, its mailbox not yet.
			r.errorf("user %s: %v (the next sync completes it)", u.Address, err)
		}
		r.logf("user %s deleted with its account and mail (missing from the directory since %s, longer than %s)",
			u.Address, u.Vanished.UTC().Format(time.RFC3339), c.cfg.DeleteVanishedAfter)
		r.count(func(s *Status) {
			s.Deleted++
			if len(s.DeletedUsers) < MaxStatusUsers {
				s.DeletedUsers = append(s.DeletedUsers, u.Address)
			}
		})
	}
	slices.SortFunc(kept, func(a, b VanishedUser) int { return strings.Compare(a.Address, b.Address) })
	r.count(func(s *Status) {
		s.Vanished = len(kept)
		s.VanishedUsers = kept[:min(len(kept), MaxStatusUsers)]
	})
}

// completeDeletions finishes the mailbox deletions that a crash or a
// store error interrupted, whoever started them.
func (c *Connector) completeDeletions(ctx context.Context, r *run) {
	if c.deleter == nil {
		return
	}
	done, err := c.deleter.CompleteDeletions(ctx)
	for _, p := range done {
		r.logf("%s %s: account deleted, completing its deletion of %s", p.Kind, p.Address, p.Deleted.UTC().Format(time.RFC3339))
	}
	if err != nil {
		r.errorf("completing interrupted deletions: %v", err)
	}
}

// guard enforces Config.MaxDeleteShare.
func (c *Connector) guard(what string, gone, existing int) error {
	if gone == 0 || existing == 0 {
		return nil
	}
	if float64(gone)/float64(existing) > c.cfg.MaxDeleteShare {
		return fmt.Errorf("%w: %d of %d %s (more than %.0f%%)", ErrSafetyGuard, gone, existing, what, c.cfg.MaxDeleteShare*100)
	}
	return nil
}

func vanished(existing []directory.SourcedRef, seen map[string]bool) []directory.SourcedRef {
	var out []directory.SourcedRef
	for _, ref := range existing {
		if !seen[ref.ExternalID] {
			out = append(out, ref)
		}
	}
	return out
}

// changedFilter restricts filter to entries changed at or after the
// cursor: uSNChanged above it, or modifyTimestamp at or after it (the
// same second again, since timestamps are that coarse; rewriting an
// unchanged entry writes nothing).
func (c *Connector) changedFilter(filter, cursor string) string {
	attr := c.cfg.Mapping.Changed
	v := cursor
	if c.numericCursor() {
		n, _ := strconv.ParseUint(cursor, 10, 64)
		v = strconv.FormatUint(n+1, 10)
	}
	return "(&" + filter + "(" + attr + ">=" + goldap.EscapeFilter(v) + "))"
}

func (c *Connector) incrementalSync(ctx context.Context, conn *goldap.Conn, r *run, since string) error {
	cur := &cursor{numeric: c.numericCursor(), max: since}
	dnAddr, err := c.knownDNs(ctx)
	if err != nil {
		return err
	}
	changed := map[string]string{}
	seenUsers, err := c.readUsers(ctx, conn, r, c.changedFilter(c.cfg.UserFilter, since), cur, changed)
	if err != nil {
		return err
	}
	// Groups to refresh: those changed, and those listing a changed user
	// (whose address may have changed with a rename).
	var groups []Entry
	if c.cfg.GroupFilter != "" {
		if groups, err = c.readGroups(ctx, conn, r, c.changedFilter(c.cfg.GroupFilter, since), cur, changed); err != nil {
			return err
		}
		have := map[string]bool{}
		for _, g := range groups {
			have[g.ID] = true
		}
		if len(seenUsers) > 0 && c.cfg.Mapping.Member != "" {
			var dns []string
			for dn := range changed {
				dns = append(dns, dn)
			}
			slices.Sort(dns)
			for chunk := range slices.Chunk(dns, 50) {
				var or strings.Builder
				for _, dn := range chunk {
					or.WriteString("(" + c.cfg.Mapping.Member + "=" + goldap.EscapeFilter(dn) + ")")
				}
				more, err := c.readGroups(ctx, conn, r, "(&"+c.cfg.GroupFilter+"(|"+or.String()+"))", cur, changed)
				if err != nil {
					return err
				}
				for _, g := range more {
					if !have[g.ID] {
						have[g.ID] = true
						groups = append(groups, g)
					}
				}
			}
		}
	}
	for dn, a := range changed {
		dnAddr[dn] = a
	}
	c.applyGroups(ctx, r, groups, dnAddr)
	c.cacheMu.Lock()
	for dn, a := range changed {
		c.dnCache[dn] = a
	}
	c.cacheMu.Unlock()
	r.advance(cur)
	return nil
}

// knownDNs returns a copy of the DN-to-address map of synced entries,
// built from the directory when no sync of this process filled it.
func (c *Connector) knownDNs(ctx context.Context) (map[string]string, error) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	if c.dnCache == nil {
		m := map[string]string{}
		users, err := c.dir.ListSourced(ctx, c.Source(), directory.KindUser)
		if err != nil {
			return nil, err
		}
		for _, ref := range users {
			u, err := c.dir.User(ctx, ref.ID)
			if err != nil {
				continue
			}
			m[normalizeDN(u.ExternalDN)] = u.Address
		}
		groups, err := c.dir.ListSourced(ctx, c.Source(), directory.KindGroup)
		if err != nil {
			return nil, err
		}
		for _, ref := range groups {
			g, err := c.groups.Group(ctx, ref.ID)
			if err != nil {
				continue
			}
			m[normalizeDN(g.ExternalDN)] = g.Address
		}
		c.dnCache = m
	}
	out := make(map[string]string, len(c.dnCache))
	for k, v := range c.dnCache {
		out[k] = v
	}
	return out, nil
}
