// Command mailserver is Mailyard's reference server: every listener from one
// TOML config file, on the embedded defaults (SQLite store and built-in
// directory in ./data, a self-signed certificate generated on first start,
// unprivileged ports), plus admin subcommands that work on the same data
// directory, also while the server runs. Only serve and init create the
// data directory; every other command refuses one that does not exist or
// is not Mailyard's.
//
//	mailserver [--config FILE] [--data DIR] [serve]
//	mailserver init
//	mailserver domain add|list|show|delete ...
//	mailserver user add|list|show|set|passwd|disable|enable|delete ... | user alias add|remove ...
//	mailserver alias add|list|show|delete ... | alias target add|remove ...
//	mailserver group add|list|show|delete ... | group member add|remove ...
//	mailserver mail list|cat ...
//	mailserver dkim keygen|rotate|list|export|import ... | dns DOMAIN
//	mailserver directory sync|status ... | route explain ADDRESS
//	mailserver queue ... | quarantine ... | check
//	mailserver help [COMMAND] | COMMAND -h
//
// Every command has its own help (`mailserver help user add`, `mailserver
// user add -h` or `--help`), which prints and exits 0 without touching the
// data directory. Flags are accepted as -flag and --flag, before or after
// the arguments; the global -config and -data also after the command
// name. Without -config the configuration file is $MAILYARD_CONFIG, so the
// admin commands read the server's file once that is exported. Without
// -password, user add and user passwd ask for the password twice on a
// terminal and read the first line of standard input otherwise. See
// mailserver.example.toml for every configuration key.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// errUsage marks errors that should print the command's usage text.
var errUsage = errors.New("usage")

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// run is main without the process exit, for tests. The configuration
// file is -config, else $MAILYARD_CONFIG, else none (the defaults).
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	configPath, dataDir, rest, err := globalArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "mailserver: %v\n", err)
		return exitUsage
	}
	if configPath == "" {
		configPath = os.Getenv("MAILYARD_CONFIG")
	}
	if len(rest) == 0 {
		rest = []string{"serve"}
	}
	if rest[0] == "help" || isHelp(rest[:1]) {
		return help(rest[1:], stdout, stderr)
	}
	c, cargs, ok := findCommand(commands(), rest)
	if !ok {
		if strings.HasPrefix(rest[0], "-") {
			err = fmt.Errorf("unknown flag %q before the command (mailserver help lists the flags)", rest[0])
		} else {
			err = unknownCommand(commands(), rest)
		}
		fmt.Fprintln(stderr, "mailserver:", err)
		return exitUsage
	}
	if isHelp(cargs) {
		printHelp(stdout, c)
		return exitOK
	}
	cfg, err := LoadConfig(configPath)
	if err != nil {
		fmt.Fprintln(stderr, "mailserver:", err)
		return exitUsage
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	logger := newLogger(cfg.Log, stderr)
	if c.name == "serve" {
		return runServe(cfg, cargs, logger, stderr)
	}
	a := &admin{cfg: cfg, logger: logger, stdin: stdin, stdout: stdout, stderr: stderr}
	err = a.run(context.Background(), c, cargs)
	switch {
	case errors.Is(err, errUsage):
		msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), errUsage.Error()), ": ")
		if msg == "" {
			msg = "wrong arguments"
		}
		fmt.Fprintf(stderr, "mailserver %s: %s\n\n", c.name, msg)
		printHelp(stderr, c)
		return exitUsage
	case errors.Is(err, errProblems):
		return exitFailed
	case err != nil:
		fmt.Fprintln(stderr, "mailserver:", err)
		return exitFailed
	}
	return exitOK
}

// runServe runs the server until SIGINT or SIGTERM.
func runServe(cfg Config, args []string, logger *slog.Logger, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "mailserver serve: unexpected argument %q\n\n", args[0])
		c, _, _ := findCommand(commands(), []string{"serve"})
		printHelp(stderr, c)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("server failed", "err", err)
		return exitFailed
	}
	return exitOK
}

// help runs `help [COMMAND]`: the global usage, one command's help, or
// the commands of a group ("help user").
func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stdout)
		return exitOK
	}
	cmds := commands()
	if c, rest, ok := findCommand(cmds, args); ok && len(rest) == 0 {
		printHelp(stdout, c)
		return exitOK
	}
	if g := group(cmds, args); len(g) > 0 {
		fmt.Fprintf(stdout, "%s commands:\n", strings.Join(args, " "))
		for _, c := range g {
			fmt.Fprintf(stdout, "  %-24s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(stdout, "\n`mailserver help %s SUBCOMMAND` shows one of them in full.\n", strings.Join(args, " "))
		return exitOK
	}
	fmt.Fprintln(stderr, "mailserver help:", unknownCommand(cmds, args))
	return exitUsage
}

// globalArgs takes the global flags -config and -data out of args, in any
// of the forms -config FILE, -config=FILE, --config FILE and
// --config=FILE, before the command name or after it (up to "--"), and
// returns the other arguments.
func globalArgs(args []string) (configPath, dataDir string, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "config" && name != "data") {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return "", "", nil, fmt.Errorf("flag -%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if value == "" {
			return "", "", nil, fmt.Errorf("flag -%s: empty value", name)
		}
		if name == "config" {
			configPath = value
		} else {
			dataDir = value
		}
	}
	return configPath, dataDir, rest, nil
}

// newLogger builds the structured logger the config asks for.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by Config.Validate
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
