package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/internal/cliflags"
	"github.com/mailyard/mailyard/store/sqlite"
)

// errProblems makes `check` exit 1 after printing what it found.
var errProblems = errors.New("integrity problems found")

// admin runs the administrative subcommands on the data directory. They use
// the same store and directory code as the server, so they work while it
// runs (SQLite in WAL mode allows a second process).
type admin struct {
	cfg    Config
	logger *slog.Logger
	stdin  io.Reader
	stdout io.Writer
	// stderr gets prompts (password, confirmation).
	stderr io.Writer

	st   mailStore
	dir  *builtin.Directory
	keys *dkim.Keys
}

// open opens the existing store: an admin command never creates one, so
// a wrong -data or working directory, or a wrong [store] dsn, is an
// error, not a new empty store.
func (a *admin) open(ctx context.Context) error {
	st, err := openStore(ctx, a.cfg, a.logger, nil, openExisting)
	if err != nil {
		return err
	}
	a.st = st
	a.dir = builtin.New(st, builtin.Options{Accounts: davAccounts{st, st}, Logger: a.logger})
	a.keys = newDKIMKeys(st, a.cfg, a.logger)
	return nil
}

// dataDirError explains a data directory Open refused: which directory
// was looked at and how to name the right one.
func dataDirError(dataDir string, err error) error {
	abs, aerr := filepath.Abs(dataDir)
	if aerr != nil {
		abs = dataDir
	}
	switch {
	case errors.Is(err, sqlite.ErrNoDataDir):
		return fmt.Errorf("open store: %w\nhint: give the server's data directory with --data DIR, or its config file (data_dir) with --config FILE or MAILYARD_CONFIG=FILE; to create a new one at %s, run: mailserver --data %s init", err, abs, abs)
	case errors.Is(err, sqlite.ErrForeignDataDir):
		return fmt.Errorf("open store: %w\nhint: %s is not the server's data directory; give that with --data DIR, or its config file with --config FILE or MAILYARD_CONFIG=FILE", err, abs)
	}
	return fmt.Errorf("open store: %w", err)
}

// initDataDir creates the data directory (and with the PostgreSQL
// backend the database schema), or checks existing ones; serve creates
// them too, every other command needs them.
func (a *admin) initDataDir(ctx context.Context) error {
	st, err := openStore(ctx, a.cfg, a.logger, nil, openCreate)
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	abs, err := filepath.Abs(a.cfg.DataDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "data directory %s is ready\n", abs)
	if a.cfg.Store.Backend == backendPostgres {
		fmt.Fprintf(a.stdout, "database %s is ready\n", redactDSN(a.cfg.Store.DSN))
	}
	return nil
}

// run runs an admin command: init creates the data directory, every
// other command opens the existing one.
func (a *admin) run(ctx context.Context, c command, args []string) error {
	if c.name == "init" {
		if len(args) > 0 {
			return fmt.Errorf("%w: init takes no arguments", errUsage)
		}
		return a.initDataDir(ctx)
	}
	if c.name == "store copy" {
		// Opens its own source and target, whatever [store] says.
		return c.run(a, ctx, args)
	}
	if err := a.open(ctx); err != nil {
		return err
	}
	defer a.st.Close()
	if err := c.run(a, ctx, args); err != nil {
		return err
	}
	if changesDirectory(c.name) {
		a.notifyGeo(ctx, changedAddresses(args))
	}
	return nil
}

// parseFlags parses flags that may come before or after positional args.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	return cliflags.Parse(fs, args, errUsage)
}

// positional parses args that take no flags but -json and checks that
// there are between min and max positional arguments (max < 0: any).
func positional(name string, args []string, min, max int, asJSON *bool) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	if asJSON != nil {
		fs.BoolVar(asJSON, "json", false, "JSON output")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(pos) < min:
		return nil, fmt.Errorf("%w: %d argument(s) missing", errUsage, min-len(pos))
	case max >= 0 && len(pos) > max:
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, pos[max])
	}
	return pos, nil
}

func (a *admin) domainAdd(ctx context.Context, args []string) error {
	pos, err := positional("domain add", args, 1, -1, nil)
	if err != nil {
		return err
	}
	d, err := a.dir.CreateDomain(ctx, directory.Domain{Name: pos[0], Aliases: pos[1:]})
	if err != nil {
		return userError("domain "+pos[0], err)
	}
	fmt.Fprintf(a.stdout, "domain %s added\n", d.Name)
	return nil
}

func (a *admin) domainList(ctx context.Context, args []string) error {
	var asJSON bool
	if _, err := positional("domain list", args, 0, 0, &asJSON); err != nil {
		return err
	}
	var all []domainView
	after := ""
	for {
		ds, err := a.dir.ListDomains(ctx, after, listPage)
		if err != nil {
			return err
		}
		for _, d := range ds {
			all = append(all, viewDomain(d))
		}
		if len(ds) < listPage {
			break
		}
		after = ds[len(ds)-1].Name
	}
	if asJSON {
		return a.writeJSON(nonNil(all))
	}
	t := a.table("DOMAIN", "ALTERNATIVE NAMES", "CREATED")
	for _, d := range all {
		t.row(d.Name, strings.Join(d.AlternativeNames, ","), day(d.Created))
	}
	return t.flush()
}

// listPage is the page size of the directory listings.
const listPage = 500

func (a *admin) userAdd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	pwf := passwordFlags(fs)
	name := fs.String("name", "", "display name")
	qb := fs.Int64("quota-bytes", 0, "mailbox size limit in bytes (0: unlimited)")
	qm := fs.Int64("quota-messages", 0, "mailbox message limit (0: unlimited)")
	var aliases multiFlag
	fs.Var(&aliases, "alias", "another address (repeatable)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want one ADDRESS", errUsage)
	}
	password, err := a.readPassword(pwf)
	if err != nil {
		return err
	}
	u, err := a.dir.CreateUser(ctx, directory.User{
		Address: pos[0], Aliases: aliases, DisplayName: *name, QuotaBytes: *qb, QuotaMessages: *qm,
	}, password)
	if err != nil {
		return userError("user "+pos[0], err)
	}
	fmt.Fprintf(a.stdout, "user %s added (id %s)\n", u.Address, u.ID)
	return nil
}

func (a *admin) userList(ctx context.Context, args []string) error {
	var asJSON bool
	pos, err := positional("user list", args, 0, 1, &asJSON)
	if err != nil {
		return err
	}
	domain := ""
	if len(pos) > 0 {
		if domain, err = a.hostedDomain(ctx, pos[0]); err != nil {
			return err
		}
	}
	var all []userView
	after := ""
	for {
		us, err := a.dir.ListUsers(ctx, domain, after, listPage)
		if err != nil {
			return err
		}
		for _, u := range us {
			all = append(all, viewUser(u))
		}
		if len(us) < listPage {
			break
		}
		after = us[len(us)-1].Address
	}
	if asJSON {
		return a.writeJSON(nonNil(all))
	}
	t := a.table("ADDRESS", "ID", "STATE", "NAME", "ALIASES")
	for _, u := range all {
		t.row(u.Address, u.ID, u.stateText(), u.DisplayName, strings.Join(u.Aliases, ","))
	}
	return t.flush()
}

func (a *admin) lookupUser(ctx context.Context, addr string) (directory.User, error) {
	u, err := a.dir.UserByAddress(ctx, addr)
	if err != nil {
		return directory.User{}, userError("user "+addr, err)
	}
	return u, nil
}

func (a *admin) userPasswd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("user passwd", flag.ContinueOnError)
	pwf := passwordFlags(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want one ADDRESS", errUsage)
	}
	u, err := a.lookupUser(ctx, pos[0])
	if err != nil {
		return err
	}
	password, err := a.readPassword(pwf)
	if err != nil {
		return err
	}
	if err := a.dir.SetPassword(ctx, u.ID, password); err != nil {
		return userError("user "+u.Address, err)
	}
	fmt.Fprintf(a.stdout, "password of %s changed\n", u.Address)
	return nil
}

func (a *admin) userSetDisabled(ctx context.Context, args []string, disabled bool) error {
	state := "enabled"
	if disabled {
		state = "disabled"
	}
	pos, err := positional("user "+strings.TrimSuffix(state, "d"), args, 1, 1, nil)
	if err != nil {
		return err
	}
	u, err := a.lookupUser(ctx, pos[0])
	if err != nil {
		return err
	}
	if err := a.dir.SetDisabled(ctx, u.ID, disabled); err != nil {
		return userError("user "+u.Address, err)
	}
	fmt.Fprintf(a.stdout, "user %s %s\n", u.Address, state)
	return nil
}

func (a *admin) aliasAdd(ctx context.Context, args []string) error {
	pos, err := positional("alias add", args, 2, -1, nil)
	if err != nil {
		return err
	}
	al, err := a.dir.CreateAlias(ctx, directory.Alias{Address: pos[0], Targets: pos[1:]})
	if err != nil {
		return userError("alias "+pos[0], err)
	}
	fmt.Fprintf(a.stdout, "alias %s -> %s added\n", al.Address, strings.Join(al.Targets, ", "))
	return nil
}

func (a *admin) groupAdd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("group add", flag.ContinueOnError)
	var sendAs multiFlag
	fs.Var(&sendAs, "send-as", "address of a user who may send as the group (repeatable)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return fmt.Errorf("%w: ADDRESS missing", errUsage)
	}
	var ids []string
	for _, addr := range sendAs {
		u, err := a.lookupUser(ctx, addr)
		if err != nil {
			return err
		}
		ids = append(ids, u.ID)
	}
	g, err := a.dir.CreateGroup(ctx, directory.Group{Address: pos[0], Members: pos[1:], SendAs: ids})
	if err != nil {
		return userError("group "+pos[0], err)
	}
	fmt.Fprintf(a.stdout, "group %s added with %d members\n", g.Address, len(g.Members))
	return nil
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (a *admin) check(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return errUsage
	}
	// Deletions a crash interrupted between the directory entry and its
	// store account are finished first: the account is an orphan.
	done, err := a.dir.CompleteDeletions(ctx)
	for _, p := range done {
		fmt.Fprintf(a.stdout, "completed\tdeletion of %s %s (account %s)\n", p.Kind, p.Address, p.Account)
	}
	if err != nil {
		return err
	}
	problems, err := a.st.Check(ctx)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(a.stdout, "%s\t%s\n", p.Kind, p.Detail)
	}
	if len(problems) > 0 {
		return errProblems
	}
	fmt.Fprintln(a.stdout, "store ok")
	return nil
}
