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
)

// Errors.
var (
	// ErrSafetyGuard: a full sync would have removed more than
	// Config.MaxDeleteShare of the synced users or groups; it removed
	// nothing. Check the base DNs and filters, or force the sync.
	ErrSafetyGuard = errors.New("ldap: safety guard: sync would remove too many entries")
	// ErrUnavailable: no configured server could be reached (or none
	// accepted the service bind).
	ErrUnavailable = errors.New("ldap: no server available")
	// ErrSyncRunning: a sync of this connection is already running.
	ErrSyncRunning = errors.New("ldap: a sync is already running")
)

// workers is how many directory writes a sync keeps in flight; the
// embedded store commits concurrent writes together.
const workers = 32

// Options are a Connector's dependencies. Dir is required.
type Options struct {
	// Dir receives the synced entries.
	Dir *directory.Builtin
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
	cfg     Config
	dir     *directory.Builtin
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
	c := &Connector{cfg: cfg, dir: opts.Dir, records: opts.Records, log: opts.Logger, now: opts.Now, dial: newDialer(cfg)}
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
	// Full reads every entry and removes what vanished. Otherwise only
	// entries changed since the last run are read (uSNChanged or
	// modifyTimestamp), which cannot see deletions; a sync without a
	// cursor for the server it reaches is full anyway.
	Full bool
	// Force overrides the safety guard.
	Force bool
}

// Status returns the stored status of the connection.
func (c *Connector) Status(ctx context.Context) (Status, error) {
	return ReadStatus(ctx, c.records, c.cfg.Name)
}

// Sync runs one sync and returns its status (also stored, see
// [ReadStatus]). Problems with single entries are counted, logged and
// listed in Status.Errors without failing the run; the error is for a
// run that could not complete (no server, a failed search, the safety
// guard), in which case nothing was removed and the cursor is unchanged.
func (c *Connector) Sync(ctx context.Context, opts SyncOptions) (Status, error) {
	if !c.syncMu.TryLock() {
		return Status{}, ErrSyncRunning
	}
	defer c.syncMu.Unlock()
	prev, err := c.Status(ctx)
	if err != nil {
		return Status{}, err
	}
	r := &run{now: c.now, dom: c.newDomains(), st: Status{
		Name: c.cfg.Name, State: StateRunning, Started: c.now(),
		Cursor: prev.Cursor, CursorServer: prev.CursorServer, LastFull: prev.LastFull,
	}}
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
			"duration", r.st.Duration)
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
	if !d.c.cfg.CreateDomains {
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
	if _, err := d.c.dir.LookupDomain(ctx, a.Domain); errors.Is(err, directory.ErrNotFound) {
		if _, err := d.c.dir.CreateDomain(ctx, directory.Domain{Name: a.Domain, Tenant: d.c.cfg.Tenant}); err != nil && !errors.Is(err, directory.ErrExists) {
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
	})
	if res.Change != directory.SyncUnchanged {
		r.logf("user %s %s", e.Mail, changeWord(res.Change))
	}
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
			if _, err := c.dir.GroupByExternalID(ctx, c.Source(), e.ID); !errors.Is(err, directory.ErrNotFound) {
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
		res, err := c.dir.UpsertSourcedGroup(ctx, g)
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
	goneUsers := vanished(existingUsers, seenUsers)
	goneGroups := vanished(existingGroups, seenGroups)
	if !force {
		if err := c.guard("users", len(goneUsers), len(existingUsers)); err != nil {
			r.logf("%v", err)
			return err
		}
		if err := c.guard("groups", len(goneGroups), len(existingGroups)); err != nil {
			r.logf("%v", err)
			return err
		}
	}
	c.applyGroups(ctx, r, groups, dnAddr)
	if err := c.syncAddressBook(ctx, conn, r, seenUsers, seenGroups); err != nil {
		return err
	}
	for _, ref := range goneGroups {
		if err := c.dir.DeleteGroup(ctx, ref.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
			r.errorf("delete group %s: %v", ref.ExternalID, err)
			continue
		}
		r.logf("group %s deleted (gone from the directory)", ref.ExternalID)
		r.count(func(s *Status) { s.Deleted++ })
	}
	for _, ref := range goneUsers {
		if c.cfg.DisableDeleted {
			u, err := c.dir.User(ctx, ref.ID)
			if err == nil && !u.Disabled {
				err = c.dir.SetDisabled(ctx, ref.ID, true)
				if err == nil {
					r.logf("user %s disabled (gone from the directory)", u.Address)
					r.count(func(s *Status) { s.Disabled++ })
				}
			}
			if err != nil {
				r.errorf("disable user %s: %v", ref.ExternalID, err)
			}
			continue
		}
		u, _ := c.dir.User(ctx, ref.ID)
		if err := c.dir.DeleteUser(ctx, ref.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
			r.errorf("delete user %s: %v", ref.ExternalID, err)
			continue
		}
		r.logf("user %s deleted (gone from the directory)", u.Address)
		r.count(func(s *Status) { s.Deleted++ })
	}
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
			g, err := c.dir.Group(ctx, ref.ID)
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
