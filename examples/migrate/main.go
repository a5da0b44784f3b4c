// Command migrate moves mailboxes from another IMAP server (Exchange,
// Dovecot, an old corporate system) into a Mailyard server's data
// directory, with live progress, a run history and reports. It opens the
// same SQLite store and built-in directory as examples/mailserver, also
// while the server runs.
//
//	migrate [-data DIR | -config FILE] [-allow LIST] run (--csv FILE | --domain D) [options]
//	migrate status [ADDRESS]
//	migrate history [ID]
//	migrate report (--domain D | --mailboxes A,B) [--csv FILE] [--html FILE] [--mail-to ADDR ...]
//	migrate disable ADDRESS...
//	migrate ews sync --endpoint URL --user LOGIN [--impersonate] (--domain D | TARGET[=SOURCE]...)
//	migrate ews subscribe --endpoint URL --user LOGIN [--two-way LIST] (--domain D | TARGET[=SOURCE]...)
//	migrate ews conflicts ADDRESS
//	migrate ews test --endpoint URL --user LOGIN [--impersonate] [MAILBOX]
//
// Ctrl-C stops a run cleanly: copies in progress finish, the run is
// recorded as interrupted, and running the same command again resumes
// without copying anything twice. Passwords are read from files (or the
// MIGRATE_PASSWORD and MIGRATE_SMTP_PASSWORD environment variables),
// never from the command line, and are never printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/cliflags"
	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/store/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal a second one kills the process at once.
		<-ctx.Done()
		stop()
	}()
	terminal := isatty.IsTerminal(os.Stdout.Fd()) || isatty.IsCygwinTerminal(os.Stdout.Fd())
	os.Exit(run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, terminal: terminal}))
}

// env is the process's surroundings, replaced in tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// terminal says stdout is a terminal: progress is drawn as bars.
	terminal bool
}

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1 // an error, or a run with mailboxes in error
	exitUsage       = 2
	exitInterrupted = 130 // stopped by SIGINT/SIGTERM (128 + SIGINT)
)

// errUsage marks errors that print the usage text.
var errUsage = errors.New("usage")

// errInterrupted marks a run stopped by a signal.
var errInterrupted = errors.New("interrupted")

// errMailboxErrors marks a run that ended with mailboxes in error.
var errMailboxErrors = errors.New("some mailboxes failed")

const usage = `usage: migrate [--data DIR | --config FILE] [--allow LIST] [--log-level LEVEL] [--cpuprofile FILE] COMMAND [ARGS]

Flags are written --flag here; -flag is the same (as in mailserver).

commands:
  run (--csv FILE | --domain DOMAIN) [options]
        copy mailboxes: the ones listed in a CSV file, or every user of DOMAIN
        --force-update            replace host, login and password of existing collectors
        --continuous DURATION     keep collecting every DURATION after the first pass
        --parallel N              mailboxes copied at once
        --host H --port P --tls implicit|starttls|plain
        --auth user|service-plain|service-exchange --service ACCOUNT
        --password-file FILE      default password (or MIGRATE_PASSWORD)
        --exclude "A;B"           folders not to copy ("-": none)
        --ca-file FILE --insecure-skip-verify
  status [ADDRESS]                collectors, or one collector with its folders
  history [ID] [--before ID | --after ADDRESS] [--limit N]
                                  runs, or one run with its mailboxes
  report (--domain DOMAIN | --mailboxes A,B) [--csv FILE] [--html FILE]
        [--mail-to ADDRESS --mail-from ADDRESS --smtp HOST:PORT --smtp-user USER
         --smtp-password-file FILE --smtp-tls starttls|implicit|none --smtp-ca FILE]
                                  per mailbox and folder: source, target, skipped, failed
  disable ADDRESS...              cut over: stop collecting these mailboxes
  ews sync --endpoint URL --user LOGIN [options] (--domain DOMAIN | TARGET[=SOURCE]...)
                                  copy Exchange mailboxes over EWS: mail, calendar, contacts
        --impersonate             act for each mailbox by ExchangeImpersonation (else delegate access)
        --auth ntlm|basic --password-file FILE (or MIGRATE_PASSWORD)
        --exchange Exchange2013_SP1|Exchange2016|Exchange2019 --min-tls 1.0|1.1|1.2|1.3
        --ca-file FILE --insecure-skip-verify --exclude "A;B" --parallel N
        --source-deletions        remove the copies of messages deleted in Exchange since
                                  the last pass, if still as copied (default: never remove)
  ews subscribe --endpoint URL --user LOGIN [options] (--domain DOMAIN | TARGET[=SOURCE]...)
                                  keep calendars in sync with Exchange until Ctrl-C (rerun resumes):
                                  SyncFolderItems every --interval, pull notifications every --poll
        --two-way LIST            addresses or @domains, ","-separated: the access list
        --two-way-mode allow|deny allow: only LIST syncs both ways; deny: all but LIST
                                  (the others: one-way, Exchange -> Mailyard)
        --interval DURATION (5m) --poll DURATION (2s), and the connection options of ews sync
  ews conflicts ADDRESS [--skip N] [--limit N] [--full]
                                  the two-way sync's conflict log, with the losing versions
  ews test --endpoint URL --user LOGIN [options] [MAILBOX]
                                  connection test: DNS, allowlist, TCP, TLS, login, and the
                                  right to reach MAILBOX; names the step that failed, else
                                  prints the Exchange version (the connection options of ews sync)

CSV columns (header row, any order): target, login, password, service, auth,
host, port, tls, exclude. Only target is required; empty cells take the
defaults from the options and the [migration] section of the config file.
`

// run is main without the process exit, for tests.
func run(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "the mail server's configuration file (TOML)")
	dataDir := fs.String("data", "", "the mail server's data directory (overrides data_dir)")
	allow := fs.String("allow", "", "source hosts collectors may connect to: CIDR blocks or host names, comma-separated (adds to [migration] allowlist)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the command to this file (benchmarks)")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(e.stderr, "migrate: %v\n%s", err, usage)
		return exitUsage
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(e.stderr, "migrate: -cpuprofile:", err)
			return exitUsage
		}
		defer stop()
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(e.stderr, "migrate: -log-level: %v\n", err)
		return exitUsage
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(e.stderr, "migrate:", err)
		return exitUsage
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if *allow != "" {
		for a := range strings.SplitSeq(*allow, ",") {
			cfg.Migration.Allowlist = append(cfg.Migration.Allowlist, strings.TrimSpace(a))
		}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	logOut := &switchWriter{w: e.stderr}
	c := &cli{env: e, cfg: cfg, logOut: logOut, logger: slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))}
	err = c.dispatch(ctx, rest[0], rest[1:])
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage):
		if msg := strings.TrimPrefix(err.Error(), errUsage.Error()); msg != "" {
			fmt.Fprintf(e.stderr, "migrate %s%s\n", rest[0], msg)
		}
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	case errors.Is(err, errInterrupted) || ctx.Err() != nil:
		// A signal that arrives before a run is recorded (opening the
		// store, listing a domain's users) fails the command with the
		// context's error: that is an interruption too.
		fmt.Fprintln(e.stderr, "migrate: interrupted; run the same command again to resume")
		return exitInterrupted
	default:
		fmt.Fprintln(e.stderr, "migrate:", err)
		return exitFailed
	}
}

// startCPUProfile starts a CPU profile (runtime/pprof) into the file
// path and returns what stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// cli holds what the commands share.
type cli struct {
	env    env
	cfg    config
	logger *slog.Logger
	// logOut is where log lines go: standard error, or above the
	// progress bars while they are drawn.
	logOut *switchWriter

	st  *sqlite.Store
	dir *builtin.Directory
	m   *migration.Migrator
}

func (c *cli) dispatch(ctx context.Context, cmd string, args []string) error {
	commands := map[string]func(context.Context, []string) error{
		"run":     c.runCmd,
		"status":  c.statusCmd,
		"history": c.historyCmd,
		"report":  c.reportCmd,
		"disable": c.disableCmd,
		"ews":     c.ewsCmd,
	}
	h := commands[cmd]
	if h == nil {
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	return h(ctx, args)
}

// open opens the data directory the way examples/mailserver's admin
// commands do: SQLite in WAL mode lets this process work while the
// server runs. withKey loads the secret key (secret_key_file) that seals
// stored source passwords, which runs need and the commands that only
// show masked settings do not.
func (c *cli) open(ctx context.Context, withKey bool) error {
	var key []byte
	if withKey {
		var err error
		if key, err = loadSecretKey(c.cfg.Migration.SecretKeyFile); err != nil {
			return err
		}
	}
	fi, err := os.Stat(c.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w (give -data DIR or -config FILE of the mail server)", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", c.cfg.DataDir)
	}
	// A bulk copier: waiting a moment for concurrent appends and
	// checkpoints to join one transaction costs a copy nothing and saves
	// commits (fsyncs and WAL page writes).
	st, err := sqlite.Open(ctx, c.cfg.DataDir, sqlite.Options{Logger: c.logger, GroupCommitWindow: 2 * time.Millisecond, MustExist: true})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	c.st = st
	c.dir = builtin.New(st, builtin.Options{Accounts: st, Logger: c.logger})
	mc := c.cfg.Migration
	m, err := migration.New(migration.Options{
		Store:           st,
		Directory:       c.dir,
		Users:           c.dir,
		Allowlist:       mc.Allowlist,
		Logger:          c.logger,
		MaxConnsPerHost: mc.MaxConnsPerHost,
		Parallel:        mc.Parallel,
		FolderParallel:  mc.FolderParallel,
		BandwidthLimit:  mc.BandwidthLimit,
		MaxMessageSize:  mc.MaxMessageBytes,
		SecretKey:       key,
	})
	if err != nil {
		st.Close()
		return err
	}
	c.m = m
	return nil
}

func (c *cli) close() {
	if c.st != nil {
		c.st.Close()
	}
}

// parseFlags parses flags that may come before or after positional
// arguments; -flag and --flag are the same.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	return cliflags.Parse(fs, args, errUsage)
}

// switchWriter is an io.Writer whose destination can change.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// set changes the destination.
func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w = w
}

// readSecretFile returns the first line of a password file.
func readSecretFile(path string) (migration.Secret, error) {
	line, err := readFirstLine(path, "the password")
	return migration.Secret(line), err
}

// readFirstLine returns the first line of a small file that holds what.
func readFirstLine(path, what string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// A password file holds one line; refuse anything large rather than
	// read it whole.
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return "", err
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("%s: longer than 4096 bytes; want one line with %s", path, what)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("%s: empty first line; want %s", path, what)
	}
	return line, nil
}
