// Command mailserver is Mailyard's reference server: every listener from one
// TOML config file, on the embedded defaults (SQLite store and built-in
// directory in ./data, a self-signed certificate generated on first start,
// unprivileged ports), plus admin subcommands that work on the same data
// directory, also while the server runs. Only serve and init create the
// data directory; every other command refuses one that does not exist or
// is not Mailyard's.
//
//	mailserver [-config FILE] [-data DIR] [serve]
//	mailserver init
//	mailserver domain add NAME [ALTERNATIVE-NAME...] | domain list
//	mailserver user add ADDRESS [-password PW] [-name NAME] [-quota-bytes N] [-quota-messages N]
//	mailserver user list [DOMAIN] | user passwd ADDRESS [-password PW] | user disable|enable|delete ADDRESS
//	mailserver alias add ADDRESS TARGET...
//	mailserver group add ADDRESS MEMBER... [-send-as USER...]
//	mailserver mail list ADDRESS [MAILBOX] | mail cat ADDRESS MAILBOX UID
//	mailserver dkim keygen|rotate|list|export|import ... | dns DOMAIN [-json]
//	mailserver directory sync [-full] [-force] [NAME...] | directory status [-log] [NAME...]
//	mailserver route explain ADDRESS [-from SENDER] [-client IP] [-auth]
//	mailserver queue list | queue show ID | queue hold|release|retry|delete ID...
//	mailserver quarantine list | quarantine release|delete ID...
//	mailserver check
//
// Without -password, user add and user passwd read the password from the
// first line of standard input. See mailserver.example.toml for every
// configuration key.
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
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// errUsage marks errors that should print the usage text.
var errUsage = errors.New("usage")

const usage = `usage: mailserver [-config FILE] [-data DIR] COMMAND [ARGS]

commands:
  serve                                 run every listener (the default); creates the data directory
  init                                  create the data directory (every other command needs it)
  domain add NAME [ALT-NAME...]         host a mail domain (with alternative names)
  domain list
  user add ADDRESS [-password PW] [-name NAME] [-quota-bytes N] [-quota-messages N]
  user list [DOMAIN]
  user passwd ADDRESS [-password PW]
  user disable ADDRESS | user enable ADDRESS
  user delete ADDRESS                   delete the user with its mailbox and all its mail
  alias add ADDRESS TARGET...
  resource add ADDRESS [-name N] [-kind room|equipment] [-capacity N] [-location L]
           [-policy auto|manual] [-approver USER-ADDRESS]...
                                        a bookable room or equipment with its own calendar
  resource list [DOMAIN]                one line each: address kind capacity policy approvers name
  resource policy ADDRESS auto|manual [-approver USER-ADDRESS]...
                                        auto accepts when free; manual leaves it to the approvers
  group add ADDRESS MEMBER... [-send-as USER-ADDRESS]...
  mail list ADDRESS [MAILBOX]           one line per message: UID size date flags
  mail cat ADDRESS MAILBOX UID          the raw message on standard output
  dkim keygen DOMAIN [-alg rsa|ed25519] [-selector S]
                                        new key; the first of its algorithm signs at once
  dkim rotate DOMAIN [-alg A] [-selector S]
                                        step 1 publishes a new key, step 2 (run again) switches signing
  dkim list [DOMAIN]
  dkim export DOMAIN SELECTOR           private key as PKCS#8 PEM on standard output
  dkim import DOMAIN SELECTOR FILE      a PEM private key (published, not signing)
  dns DOMAIN [-json] [-mx HOST] [-dmarc-rua ADDRESS] [-dav-port PORT]
                                        the DNS records the domain must publish
  directory sync [-full] [-force] [NAME...]
                                        sync [[directory.ldap]] connections now
  directory status [-log] [NAME...]     the last sync of each connection
  route explain ADDRESS [-from SENDER] [-client IP] [-auth]
                                        which routing rules apply to ADDRESS, and why
  queue list                            the outbound queue: one line per recipient
  queue show ID                         one queued message: sender, size, and per recipient its
                                        transport, attempts, next attempt and last error
  queue hold|release|retry|delete ID... stop, resume, retry now or drop (no DSN) a message
  quarantine list                       messages a milter quarantined: one line each
  quarantine release|delete ID...       deliver a held message as it would have been, or drop it
  check                                 store integrity check (exit 1 on problems)

Without -password the password is read from the first line of standard input.
`

// run is main without the process exit, for tests.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mailserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := fs.String("config", "", "configuration file (TOML); defaults apply without one")
	dataDir := fs.String("data", "", "data directory (overrides data_dir)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, "mailserver:", err)
		return 2
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	logger := newLogger(cfg.Log, stderr)

	rest := fs.Args()
	if len(rest) == 0 || rest[0] == "serve" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := serve(ctx, cfg, logger); err != nil {
			logger.Error("server failed", "err", err)
			return 1
		}
		return 0
	}
	a := &admin{cfg: cfg, logger: logger, stdin: stdin, stdout: stdout}
	err = a.run(context.Background(), rest)
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprint(stderr, usage)
		return 2
	case errors.Is(err, errProblems):
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "mailserver:", err)
		return 1
	}
	return 0
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
