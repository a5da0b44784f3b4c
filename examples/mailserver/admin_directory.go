package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/directory/ldap"
	"github.com/mailyard/mailyard/store"
)

// DirectoryConfig is the [directory] section: external directories whose
// users, groups and address-book entries are synced into the built-in
// directory.
type DirectoryConfig struct {
	LDAP []LDAPConfig `toml:"ldap"`
}

// LDAPServerConfig is one server of a [[directory.ldap]] connection.
type LDAPServerConfig struct {
	URL      string `toml:"url"`
	Priority int    `toml:"priority"`
	Weight   int    `toml:"weight"`
}

// LDAPConfig is one [[directory.ldap]] section; see
// mailserver.example.toml for every key.
type LDAPConfig struct {
	Name    string             `toml:"name"`
	Preset  string             `toml:"preset"`
	Servers []LDAPServerConfig `toml:"servers"`
	// StartTLS, CAFile: TLS for ldap:// URLs, and the CA that signed the
	// servers' certificates (PEM; empty: the system's).
	StartTLS bool   `toml:"start_tls"`
	CAFile   string `toml:"ca_file"`
	BindDN   string `toml:"bind_dn"`
	// BindPassword or, better, BindPasswordFile (first line).
	BindPassword     string   `toml:"bind_password"`
	BindPasswordFile string   `toml:"bind_password_file"`
	DialTimeout      Duration `toml:"dial_timeout"`
	Timeout          Duration `toml:"timeout"`
	PageSize         int      `toml:"page_size"`

	BaseDN                 string `toml:"base_dn"`
	UserBase               string `toml:"user_base"`
	UserFilter             string `toml:"user_filter"`
	GroupBase              string `toml:"group_base"`
	GroupFilter            string `toml:"group_filter"`
	AddressBookUserBase    string `toml:"address_book_user_base"`
	AddressBookUserFilter  string `toml:"address_book_user_filter"`
	AddressBookGroupBase   string `toml:"address_book_group_base"`
	AddressBookGroupFilter string `toml:"address_book_group_filter"`
	LoginAttribute         string `toml:"login_attribute"`

	ExcludeUsers  []string `toml:"exclude_users"`
	ExcludeGroups []string `toml:"exclude_groups"`

	Tenant         string  `toml:"tenant"`
	CreateDomains  bool    `toml:"create_domains"`
	QuotaBytes     int64   `toml:"quota_bytes"`
	QuotaMessages  int64   `toml:"quota_messages"`
	MaxDeleteShare float64 `toml:"max_delete_share"`
	// DeleteVanishedAfter is how long a user missing from the directory
	// stays disabled with its mail kept before a full sync deletes it
	// (zero: never; `user delete` does it).
	DeleteVanishedAfter Duration `toml:"delete_vanished_after"`

	// SyncInterval is the period of incremental syncs, FullSyncInterval
	// that of full syncs (which also see deletions). Zero: 15m and 24h.
	SyncInterval     Duration `toml:"sync_interval"`
	FullSyncInterval Duration `toml:"full_sync_interval"`

	// Attributes override single attributes of the preset, by mapping
	// field: id, mail, aliases (comma-separated), login, display_name,
	// given_name, surname, title, department, company, office, phone,
	// mobile, photo, disabled, disabled_bits, disabled_values
	// (comma-separated), group_name, member, member_of, changed.
	Attributes map[string]string `toml:"attributes"`
}

// Defaults of the sync schedule.
const (
	defaultSyncInterval     = 15 * time.Minute
	defaultFullSyncInterval = 24 * time.Hour
)

func (d *DirectoryConfig) validate() error {
	if d == nil {
		return nil
	}
	seen := map[string]bool{}
	for i, l := range d.LDAP {
		key := fmt.Sprintf("directory.ldap[%d]", i)
		if seen[l.Name] {
			return fmt.Errorf("key %q: name %q is used twice", key+".name", l.Name)
		}
		seen[l.Name] = true
		if l.BindPassword != "" && l.BindPasswordFile != "" {
			return fmt.Errorf("keys %q and %q: set one", key+".bind_password", key+".bind_password_file")
		}
		if _, err := l.mapping(); err != nil {
			return fmt.Errorf("section %q: %w", key, err)
		}
		cfg, err := l.connection(false)
		if err != nil {
			return fmt.Errorf("section %q: %w", key, err)
		}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("section %q: %w", key, err)
		}
	}
	return nil
}

// mapping returns the preset with the overrides of [attributes].
func (l LDAPConfig) mapping() (ldap.Mapping, error) {
	preset := l.Preset
	if preset == "" {
		preset = "ad"
	}
	m, err := ldap.Preset(preset)
	if err != nil {
		return m, err
	}
	fields := map[string]*string{
		"id": &m.ID, "mail": &m.Mail, "login": &m.Login, "display_name": &m.DisplayName,
		"given_name": &m.GivenName, "surname": &m.Surname, "title": &m.Title, "department": &m.Department,
		"company": &m.Company, "office": &m.Office, "phone": &m.Phone, "mobile": &m.Mobile, "photo": &m.Photo,
		"disabled": &m.Disabled, "group_name": &m.GroupName, "member": &m.Member, "member_of": &m.MemberOf,
		"changed": &m.Changed,
	}
	for k, v := range l.Attributes {
		switch k {
		case "aliases":
			m.Aliases = splitList(v)
			continue
		case "disabled_values":
			m.DisabledBits, m.DisabledValues = 0, splitList(v)
			continue
		case "disabled_bits":
			n, err := strconv.ParseInt(v, 0, 64)
			if err != nil {
				return m, fmt.Errorf("attributes: disabled_bits: %w", err)
			}
			m.DisabledBits = n
			continue
		}
		f, ok := fields[k]
		if !ok {
			return m, fmt.Errorf("attributes: unknown key %q", k)
		}
		*f = v
		if k == "id" {
			m.IDBinary = strings.EqualFold(v, "objectGUID")
		}
	}
	return m, nil
}

func splitList(v string) []string {
	var out []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// connection converts the section; with secrets set it reads the
// password and CA files.
func (l LDAPConfig) connection(secrets bool) (ldap.Config, error) {
	m, err := l.mapping()
	if err != nil {
		return ldap.Config{}, err
	}
	cfg := ldap.Config{
		Name: l.Name, StartTLS: l.StartTLS, BindDN: l.BindDN, BindPassword: l.BindPassword,
		DialTimeout: l.DialTimeout.Duration, Timeout: l.Timeout.Duration, PageSize: l.PageSize, Mapping: m,
		BaseDN: l.BaseDN, UserBase: l.UserBase, UserFilter: l.UserFilter, GroupBase: l.GroupBase, GroupFilter: l.GroupFilter,
		AddressBookUserBase: l.AddressBookUserBase, AddressBookUserFilter: l.AddressBookUserFilter,
		AddressBookGroupBase: l.AddressBookGroupBase, AddressBookGroupFilter: l.AddressBookGroupFilter,
		LoginAttribute: l.LoginAttribute, ExcludeUsers: l.ExcludeUsers, ExcludeGroups: l.ExcludeGroups,
		Tenant: l.Tenant, CreateDomains: l.CreateDomains, QuotaBytes: l.QuotaBytes, QuotaMessages: l.QuotaMessages,
		MaxDeleteShare: l.MaxDeleteShare, DeleteVanishedAfter: l.DeleteVanishedAfter.Duration,
	}
	for _, s := range l.Servers {
		cfg.Servers = append(cfg.Servers, ldap.Server{URL: s.URL, Priority: s.Priority, Weight: s.Weight})
	}
	if l.BindPasswordFile != "" && cfg.BindPassword == "" {
		// Validation must pass before the file is read.
		cfg.BindPassword = "(from bind_password_file)"
	}
	if !secrets {
		return cfg, nil
	}
	if l.BindPasswordFile != "" {
		data, err := os.ReadFile(l.BindPasswordFile)
		if err != nil {
			return cfg, fmt.Errorf("bind_password_file: %w", err)
		}
		cfg.BindPassword, _, _ = strings.Cut(string(data), "\n")
		cfg.BindPassword = strings.TrimRight(cfg.BindPassword, "\r")
	}
	if l.CAFile != "" {
		pem, err := os.ReadFile(l.CAFile)
		if err != nil {
			return cfg, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("ca_file %s: no PEM certificate", l.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// ldapSource is one configured connection with its schedule.
type ldapSource struct {
	conn      *ldap.Connector
	every     time.Duration
	fullEvery time.Duration
}

// newLDAPSources builds the connectors of cfg.Directory.
func newLDAPSources(cfg Config, dir *builtin.Directory, records store.Records, logger *slog.Logger) ([]ldapSource, error) {
	if cfg.Directory == nil {
		return nil, nil
	}
	var out []ldapSource
	for _, l := range cfg.Directory.LDAP {
		lc, err := l.connection(true)
		if err != nil {
			return nil, fmt.Errorf("directory.ldap %q: %w", l.Name, err)
		}
		c, err := ldap.New(lc, ldap.Options{Dir: dir, Records: records, Logger: logger.With("ldap", l.Name)})
		if err != nil {
			return nil, fmt.Errorf("directory.ldap %q: %w", l.Name, err)
		}
		s := ldapSource{conn: c, every: l.SyncInterval.Duration, fullEvery: l.FullSyncInterval.Duration}
		if s.every <= 0 {
			s.every = defaultSyncInterval
		}
		if s.fullEvery <= 0 {
			s.fullEvery = defaultFullSyncInterval
		}
		out = append(out, s)
	}
	return out, nil
}

// newAuthenticator routes logins: users synced from a configured source
// bind at it, every other user is checked against the local hash.
func newAuthenticator(dir *builtin.Directory, sources []ldapSource) *directory.SourcedAuth {
	a := &directory.SourcedAuth{Users: dir, Sources: map[string]directory.SourceAuthenticator{}}
	for _, s := range sources {
		a.Sources[s.conn.Source()] = s.conn
	}
	return a
}

// runDirectorySync syncs every source at start and then on its schedule
// (a full sync when FullSyncInterval has passed since the last one),
// until ctx ends. With several nodes on one store, each source is synced
// by one node at a time, about once per interval among them all.
func runDirectorySync(ctx context.Context, sources []ldapSource, logger *slog.Logger) {
	var wg sync.WaitGroup
	for _, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(s.every)
			defer t.Stop()
			for {
				// Every and FullEvery are judged under the sync's lease
				// against the stored status, so nodes sharing a store
				// sync once per interval between them.
				_, err := s.conn.Sync(ctx, ldap.SyncOptions{Every: s.every, FullEvery: s.fullEvery})
				switch {
				case errors.Is(err, ldap.ErrNotDue), errors.Is(err, ldap.ErrSyncRunning):
					logger.Debug("directory sync skipped", "ldap", s.conn.Name(), "why", err)
				case err != nil && ctx.Err() == nil:
					// Details are in the stored status and the connector's log.
					logger.Warn("directory sync failed", "ldap", s.conn.Name(), "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

// directorySources returns the configured connectors whose names are in
// names (all without names); an unknown name is an error.
func (a *admin) directorySources(names []string) ([]ldapSource, error) {
	all, err := newLDAPSources(a.cfg, a.dir, a.st, a.logger)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, errors.New("no [[directory.ldap]] section in the configuration")
	}
	if len(names) == 0 {
		return all, nil
	}
	var out []ldapSource
	for _, n := range names {
		i := slices.IndexFunc(all, func(s ldapSource) bool { return s.conn.Name() == n })
		if i < 0 {
			return nil, fmt.Errorf("no [[directory.ldap]] section named %q", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// directorySync runs `directory sync [-full] [-force] [NAME...]`: one sync
// now, in this process, printing its outcome.
func (a *admin) directorySync(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("directory sync", flag.ContinueOnError)
	full := fs.Bool("full", false, "full sync (sees deletions)")
	force := fs.Bool("force", false, "override the safety guard")
	names, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	sources, err := a.directorySources(names)
	if err != nil {
		return err
	}
	var failed []error
	for _, s := range sources {
		st, err := s.conn.Sync(ctx, ldap.SyncOptions{Full: *full, Force: *force})
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", s.conn.Name(), err))
		}
		if st.Name != "" {
			a.printStatus(st, false)
		}
	}
	return errors.Join(failed...)
}

// directoryStatus runs `directory status [-log] [NAME...]`: the stored
// status of the last run of each connection (also the server's runs).
func (a *admin) directoryStatus(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("directory status", flag.ContinueOnError)
	showLog := fs.Bool("log", false, "print the last run's log")
	names, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		if a.cfg.Directory == nil || len(a.cfg.Directory.LDAP) == 0 {
			return errors.New("no [[directory.ldap]] section in the configuration")
		}
		for _, l := range a.cfg.Directory.LDAP {
			names = append(names, l.Name)
		}
	}
	for _, n := range names {
		st, err := ldap.ReadStatus(ctx, a.st, n)
		if err != nil {
			return err
		}
		a.printStatus(st, *showLog)
	}
	return nil
}

// printStatus prints a sync status: the summary, the users missing from
// the directory (disabled, mail kept) and those deleted, the errors and,
// with showLog, the log.
func (a *admin) printStatus(st ldap.Status, showLog bool) {
	fmt.Fprintln(a.stdout, st.String())
	if !st.LastFull.IsZero() {
		fmt.Fprintf(a.stdout, "  last full sync: %s; cursor %s at %s\n", st.LastFull.UTC().Format(time.RFC3339), st.Cursor, st.CursorServer)
	}
	for _, v := range st.VanishedUsers {
		fmt.Fprintf(a.stdout, "  vanished: %s (disabled, mail kept; missing since %s)\n", v.Address, v.Since.UTC().Format(time.RFC3339))
	}
	if more := st.Vanished - len(st.VanishedUsers); more > 0 {
		fmt.Fprintf(a.stdout, "  vanished: %d more\n", more)
	}
	for _, d := range st.DeletedUsers {
		fmt.Fprintf(a.stdout, "  deleted with its mailbox: %s\n", d)
	}
	for _, e := range st.Errors {
		fmt.Fprintf(a.stdout, "  error: %s\n", e)
	}
	if showLog {
		for _, l := range st.Log {
			fmt.Fprintf(a.stdout, "  %s\n", l)
		}
	}
}

// userDelete runs `user delete ADDRESS [-yes]` (asking first without
// -yes): the user goes with its store
// account and all its mail. This is the explicit step that removes a
// mailbox: a directory sync only disables the users that vanished from
// it (unless delete_vanished_after is set). The directory logs the
// deletion.
func (a *admin) userDelete(ctx context.Context, args []string) error {
	addr, yes, err := deleteArgs("user delete", args)
	if err != nil {
		return err
	}
	u, err := a.lookupUser(ctx, addr)
	if err != nil {
		return err
	}
	if err := a.confirm(yes, "delete user "+u.Address+" with its mailbox and all its mail"); err != nil {
		return err
	}
	if err := a.dir.DeleteUser(ctx, u.ID); err != nil {
		return userError("user "+u.Address, err)
	}
	fmt.Fprintf(a.stdout, "user %s deleted with its mailbox (id %s)\n", u.Address, u.ID)
	if u.IsSourced() && u.Vanished.IsZero() {
		fmt.Fprintf(a.stdout, "note: %s still lists the user; its next sync creates it again, with an empty mailbox\n", u.Source)
	}
	return nil
}
