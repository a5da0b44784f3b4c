package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/internal/cliflags"
	"github.com/mailyard/mailyard/store"
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

	st   *sqlite.Store
	dir  *builtin.Directory
	keys *dkim.Keys
}

// open opens the existing data directory: an admin command never creates
// one, so a wrong -data or working directory is an error, not a new empty
// store.
func (a *admin) open(ctx context.Context) error {
	st, err := sqlite.Open(ctx, a.cfg.DataDir, sqlite.Options{Logger: a.logger, MustExist: true})
	if err != nil {
		return dataDirError(a.cfg.DataDir, err)
	}
	a.st = st
	a.dir = builtin.New(st, builtin.Options{Accounts: st, Logger: a.logger})
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
		return fmt.Errorf("open store: %w\nhint: give the server's data directory with -data DIR or data_dir in -config FILE; to create a new one at %s, run: mailserver -data %s init", err, abs, abs)
	case errors.Is(err, sqlite.ErrForeignDataDir):
		return fmt.Errorf("open store: %w\nhint: %s is not the server's data directory; give that with -data DIR or data_dir in -config FILE", err, abs)
	}
	return fmt.Errorf("open store: %w", err)
}

// initDataDir creates the data directory, or checks an existing one; serve
// creates it too, every other command needs it.
func (a *admin) initDataDir(ctx context.Context) error {
	st, err := sqlite.Open(ctx, a.cfg.DataDir, sqlite.Options{Logger: a.logger})
	if err != nil {
		return dataDirError(a.cfg.DataDir, err)
	}
	if err := st.Close(); err != nil {
		return err
	}
	abs, err := filepath.Abs(a.cfg.DataDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "data directory %s is ready\n", abs)
	return nil
}

func (a *admin) run(ctx context.Context, args []string) error {
	if len(args) < 1 {
		return errUsage
	}
	if args[0] == "init" {
		if len(args) > 1 {
			return errUsage
		}
		return a.initDataDir(ctx)
	}
	cmd := args[0]
	if len(args) >= 2 {
		cmd += " " + args[1]
	}
	handlers := map[string]func(context.Context, []string) error{
		"domain add":   a.domainAdd,
		"domain list":  a.domainList,
		"user add":     a.userAdd,
		"user list":    a.userList,
		"user passwd":  a.userPasswd,
		"user disable": func(ctx context.Context, args []string) error { return a.userSetDisabled(ctx, args, true) },
		"user enable":  func(ctx context.Context, args []string) error { return a.userSetDisabled(ctx, args, false) },
		"alias add":    a.aliasAdd,
		"group add":    a.groupAdd,
		"mail list":    a.mailList,
		"mail cat":     a.mailCat,
		"dkim keygen":  a.dkimKeygen,
		"dkim rotate":  a.dkimRotate,
		"dkim list":    a.dkimList,
		"dkim export":  a.dkimExport,
		"dkim import":  a.dkimImport,
	}
	handlers["directory sync"] = a.directorySync
	handlers["directory status"] = a.directoryStatus
	handlers["user delete"] = a.userDelete
	handlers["route explain"] = a.routeExplain
	handlers["queue list"] = a.queueList
	handlers["queue show"] = a.queueShow
	for _, op := range []string{"hold", "release", "retry", "delete"} {
		handlers["queue "+op] = a.queueOp(op)
	}
	handlers["quarantine list"] = a.quarantineList
	maps.Copy(handlers, a.resourceCommands())
	for _, op := range []string{"release", "delete"} {
		handlers["quarantine "+op] = a.quarantineOp(op)
	}
	var h func(context.Context, []string) error
	var rest []string
	if args[0] == "check" {
		h, rest = a.check, args[1:]
	} else if args[0] == "dns" {
		h, rest = a.dnsRecords, args[1:]
	} else if h = handlers[cmd]; h != nil {
		rest = args[2:]
	} else {
		return errUsage
	}
	if err := a.open(ctx); err != nil {
		return err
	}
	defer a.st.Close()
	return h(ctx, rest)
}

// parseFlags parses flags that may come before or after positional args.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	return cliflags.Parse(fs, args, errUsage)
}

// readPassword returns the -password value or the first line of stdin.
func (a *admin) readPassword(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("empty password: give -password or a line on standard input")
	}
	return pw, nil
}

func (a *admin) domainAdd(ctx context.Context, args []string) error {
	if len(args) < 1 {
		return errUsage
	}
	d, err := a.dir.CreateDomain(ctx, directory.Domain{Name: args[0], Aliases: args[1:]})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "domain %s added\n", d.Name)
	return nil
}

func (a *admin) domainList(ctx context.Context, args []string) error {
	after := ""
	for {
		ds, err := a.dir.ListDomains(ctx, after, 500)
		if err != nil {
			return err
		}
		for _, d := range ds {
			fmt.Fprintf(a.stdout, "%s\t%s\n", d.Name, strings.Join(d.Aliases, ","))
		}
		if len(ds) < 500 {
			return nil
		}
		after = ds[len(ds)-1].Name
	}
}

func (a *admin) userAdd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	pw := fs.String("password", "", "password (default: first line of stdin)")
	name := fs.String("name", "", "display name")
	qb := fs.Int64("quota-bytes", 0, "mailbox size limit in bytes (0: unlimited)")
	qm := fs.Int64("quota-messages", 0, "mailbox message limit (0: unlimited)")
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) != 1 {
		return errUsage
	}
	password, err := a.readPassword(*pw)
	if err != nil {
		return err
	}
	u, err := a.dir.CreateUser(ctx, directory.User{
		Address: pos[0], DisplayName: *name, QuotaBytes: *qb, QuotaMessages: *qm,
	}, password)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "user %s added (id %s)\n", u.Address, u.ID)
	return nil
}

func (a *admin) userList(ctx context.Context, args []string) error {
	domain := ""
	if len(args) > 0 {
		domain = args[0]
	}
	after := ""
	for {
		us, err := a.dir.ListUsers(ctx, domain, after, 500)
		if err != nil {
			return err
		}
		for _, u := range us {
			state := "enabled"
			if u.Disabled {
				state = "disabled"
			}
			fmt.Fprintf(a.stdout, "%s\t%s\t%s\t%s\n", u.Address, u.ID, state, u.DisplayName)
		}
		if len(us) < 500 {
			return nil
		}
		after = us[len(us)-1].Address
	}
}

func (a *admin) lookupUser(ctx context.Context, addr string) (directory.User, error) {
	u, err := a.dir.UserByAddress(ctx, addr)
	if err != nil {
		return directory.User{}, fmt.Errorf("user %s: %w", addr, err)
	}
	return u, nil
}

func (a *admin) userPasswd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("user passwd", flag.ContinueOnError)
	pw := fs.String("password", "", "new password (default: first line of stdin)")
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) != 1 {
		return errUsage
	}
	u, err := a.lookupUser(ctx, pos[0])
	if err != nil {
		return err
	}
	password, err := a.readPassword(*pw)
	if err != nil {
		return err
	}
	if err := a.dir.SetPassword(ctx, u.ID, password); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "password of %s changed\n", u.Address)
	return nil
}

func (a *admin) userSetDisabled(ctx context.Context, args []string, disabled bool) error {
	if len(args) != 1 {
		return errUsage
	}
	u, err := a.lookupUser(ctx, args[0])
	if err != nil {
		return err
	}
	if err := a.dir.SetDisabled(ctx, u.ID, disabled); err != nil {
		return err
	}
	state := "enabled"
	if disabled {
		state = "disabled"
	}
	fmt.Fprintf(a.stdout, "user %s %s\n", u.Address, state)
	return nil
}

func (a *admin) aliasAdd(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return errUsage
	}
	al, err := a.dir.CreateAlias(ctx, directory.Alias{Address: args[0], Targets: args[1:]})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "alias %s -> %s added\n", al.Address, strings.Join(al.Targets, ", "))
	return nil
}

func (a *admin) groupAdd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("group add", flag.ContinueOnError)
	var sendAs multiFlag
	fs.Var(&sendAs, "send-as", "address of a user who may send as the group (repeatable)")
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) < 1 {
		return errUsage
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
		return err
	}
	fmt.Fprintf(a.stdout, "group %s added with %d members\n", g.Address, len(g.Members))
	return nil
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (a *admin) mailList(ctx context.Context, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return errUsage
	}
	u, err := a.lookupUser(ctx, args[0])
	if err != nil {
		return err
	}
	mbox := store.Inbox
	if len(args) == 2 {
		mbox = args[1]
	}
	msgs, err := a.st.ListMessages(ctx, u.ID, mbox, nil)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(a.stdout)
	for _, m := range msgs {
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\n", m.UID, m.Size, m.InternalDate.UTC().Format(time.RFC3339), strings.Join(m.Flags, " "))
	}
	return w.Flush()
}

func (a *admin) mailCat(ctx context.Context, args []string) error {
	if len(args) != 3 {
		return errUsage
	}
	u, err := a.lookupUser(ctx, args[0])
	if err != nil {
		return err
	}
	uid, err := strconv.ParseUint(args[2], 10, 32)
	if err != nil {
		return fmt.Errorf("UID %q: %w", args[2], err)
	}
	rc, err := a.st.OpenBody(ctx, u.ID, args[1], uint32(uid))
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(a.stdout, rc)
	return err
}

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
