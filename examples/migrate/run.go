package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mailyard/mailyard/migration"
)

// runOptions are the flags of `migrate run`.
type runOptions struct {
	csvPath, domain        string
	forceUpdate, twoWay    bool
	continuous             time.Duration
	parallel               int
	host                   string
	port                   int
	tlsMode, auth, service string
	passwordFile, exclude  string
	caFile                 string
	insecureSkipVerify     bool
	progressEvery          time.Duration
}

func (c *cli) runCmd(ctx context.Context, args []string) error {
	o, err := parseRunFlags(args)
	if err != nil {
		return err
	}
	spec, err := c.runSpec(o)
	if err != nil {
		return err
	}
	if len(c.cfg.Migration.Allowlist) == 0 {
		return errors.New("no source allowlist: give -allow HOSTS or allowlist in the [migration] section of the config file")
	}
	if o.parallel > 0 {
		c.cfg.Migration.Parallel = o.parallel
	}
	if err := c.open(ctx, true); err != nil {
		return err
	}
	defer c.close()
	return c.execute(ctx, spec, o.progressEvery)
}

// execute carries out a run with progress display, Ctrl-C handling and
// the closing line; the store is open.
func (c *cli) execute(ctx context.Context, spec migration.RunSpec, progressEvery time.Duration) error {
	t := newTracker(time.Now)
	disp := c.newDisplay(t, progressEvery)
	spec.OnStart = t.Start
	spec.OnMailbox = func(rm migration.RunMailbox) {
		if t.Mailbox(rm) {
			disp.mailboxEnded(rm)
		}
	}
	stopNotice := context.AfterFunc(ctx, func() {
		fmt.Fprintln(c.env.stderr, "migrate: stopping: waiting for the messages being copied (Ctrl-C again to kill)")
	})
	defer stopNotice()
	r, err := c.m.Run(ctx, spec, t.Progress)
	if c.env.terminal {
		c.logOut.set(c.env.stderr)
	}
	disp.stop()
	if r.ID == 0 {
		// Refused before anything was recorded.
		return err
	}
	fmt.Fprintf(c.env.stdout, "run %d %s: %d mailboxes, %d ok, %d with errors, %d cut over (skipped), %d interrupted\n",
		r.ID, r.State, r.Mailboxes, r.Succeeded, r.WithErrors, r.Disabled, r.Interrupted)
	return runOutcome(ctx, r, err)
}

// parseRunFlags reads the flags of `migrate run` and checks what needs
// neither the config file nor the data directory. --two-way is refused
// here, before the data directory is even opened.
func parseRunFlags(args []string) (runOptions, error) {
	var o runOptions
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&o.csvPath, "csv", "", "CSV file of mailboxes")
	fs.StringVar(&o.domain, "domain", "", "domain: every user (or, with --csv, the domain the list must be in)")
	fs.BoolVar(&o.forceUpdate, "force-update", false, "replace host, login and password of existing collectors")
	fs.BoolVar(&o.twoWay, "two-way", false, "two-way sync (refused: collection is one-way)")
	fs.DurationVar(&o.continuous, "continuous", 0, "keep collecting every DURATION after the first pass")
	fs.IntVar(&o.parallel, "parallel", 0, "mailboxes copied at once")
	fs.StringVar(&o.host, "host", "", "source host")
	fs.IntVar(&o.port, "port", 0, "source port")
	fs.StringVar(&o.tlsMode, "tls", "", "implicit, starttls or plain")
	fs.StringVar(&o.auth, "auth", "", "user, service-plain or service-exchange")
	fs.StringVar(&o.service, "service", "", "service account")
	fs.StringVar(&o.passwordFile, "password-file", "", "file with the default password")
	fs.StringVar(&o.exclude, "exclude", "", `folders not to copy, ";"-separated ("-": none)`)
	fs.StringVar(&o.caFile, "ca-file", "", "PEM file of the CAs of the source's certificate")
	fs.BoolVar(&o.insecureSkipVerify, "insecure-skip-verify", false, "accept any source certificate (labs only)")
	fs.DurationVar(&o.progressEvery, "progress-every", lineEvery, "period of progress lines when the output is not a terminal")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return o, err
	}
	if len(pos) > 0 {
		return o, fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	if o.csvPath == "" && o.domain == "" {
		return o, fmt.Errorf("%w: give --csv FILE or --domain DOMAIN", errUsage)
	}
	if o.continuous < 0 || o.parallel < 0 || o.progressEvery <= 0 {
		return o, fmt.Errorf("%w: --continuous, --parallel and --progress-every must not be negative", errUsage)
	}
	if o.twoWay {
		return o, migration.ErrTwoWay
	}
	return o, nil
}

// newDisplay shows the run's progress: bars on a terminal (log lines go
// above the bars instead of through them, until the bars stop), else a
// progress line each period every.
func (c *cli) newDisplay(t *tracker, every time.Duration) display {
	if c.env.terminal {
		bars := newBarDisplay(t, c.env.stdout)
		c.logOut.set(bars.p)
		return bars
	}
	return newLineDisplay(t, c.env.stdout, every)
}

// runOutcome is the command's result for run r, which c.m.Run ended with
// err: a continuous run that is stopped ends normally; a run with
// mailbox errors fails and says where to look.
func runOutcome(ctx context.Context, r migration.Run, err error) error {
	switch {
	case ctx.Err() != nil && r.State == migration.RunStopped:
		return nil
	case ctx.Err() != nil:
		return errInterrupted
	case err != nil:
		return err
	case r.WithErrors > 0:
		return fmt.Errorf("%w: %d of %d mailboxes (see: migrate history %d)", errMailboxErrors, r.WithErrors, r.Mailboxes, r.ID)
	}
	return nil
}

// runSpec builds the run from the options, the [migration] section and,
// for --csv, the file.
func (c *cli) runSpec(o runOptions) (migration.RunSpec, error) {
	mc := c.cfg.Migration
	d := mc.defaults()
	if o.host != "" {
		d.Source.Host = o.host
	}
	if o.port != 0 {
		d.Source.Port = o.port
	}
	if o.tlsMode != "" {
		d.Source.TLS = migration.TLSMode(o.tlsMode)
	}
	if o.caFile != "" {
		d.Source.CAFile = o.caFile
	}
	if o.insecureSkipVerify {
		d.Source.InsecureSkipVerify = true
	}
	if o.auth != "" {
		d.Credentials.Mode = migration.AuthMode(o.auth)
	}
	if o.service != "" {
		d.Credentials.Service = o.service
	}
	if o.exclude != "" {
		switch o.exclude {
		case "-":
			d.Exclude = []string{}
		default:
			d.Exclude = nil
			for f := range strings.SplitSeq(o.exclude, ";") {
				if f = strings.TrimSpace(f); f == "" {
					return migration.RunSpec{}, fmt.Errorf("%w: --exclude: empty folder name", errUsage)
				}
				d.Exclude = append(d.Exclude, f)
			}
		}
	}
	pw, err := c.password(o.passwordFile, "MIGRATE_PASSWORD", mc.PasswordFile)
	if err != nil {
		return migration.RunSpec{}, err
	}
	d.Credentials.Password = pw

	spec := migration.RunSpec{Kind: migration.RunFull, Domain: o.domain, Defaults: d, ForceUpdate: o.forceUpdate, TwoWay: o.twoWay}
	if o.continuous > 0 {
		spec.Continuous, spec.Interval = true, o.continuous
	}
	if o.csvPath != "" {
		f, err := os.Open(o.csvPath)
		if err != nil {
			return migration.RunSpec{}, err
		}
		defer f.Close()
		jobs, err := migration.ParseCSV(f, d)
		if err != nil {
			return migration.RunSpec{}, fmt.Errorf("%s: %w", o.csvPath, err)
		}
		spec.Kind, spec.Jobs = migration.RunList, jobs
	}
	return spec, nil
}

// password returns the secret from the file flag, else the environment
// variable, else the config's file; "" if none is given.
func (c *cli) password(file, envName, configFile string) (migration.Secret, error) {
	switch {
	case file != "":
		return readSecretFile(file)
	case c.env.getenv(envName) != "":
		return migration.Secret(c.env.getenv(envName)), nil
	case configFile != "":
		return readSecretFile(configFile)
	}
	return "", nil
}
