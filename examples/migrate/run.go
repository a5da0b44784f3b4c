package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
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
	// ews holds the --ews-* flags: the service account and client
	// settings for the ews rows of --csv (endpoint per row).
	ews ewsOptions
}

// maxEWSEndpoints bounds the distinct EWS endpoints of one run list
// (a client, with its connections, per endpoint).
const maxEWSEndpoints = 16

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
	clients, err := c.ewsClients(o, spec)
	if err != nil {
		return err
	}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	if err := c.open(ctx, true); err != nil {
		return err
	}
	defer c.close()
	if len(clients) > 0 {
		if spec.Pass, err = c.ewsPass(clients); err != nil {
			return err
		}
	}
	return c.execute(ctx, spec, o.progressEvery)
}

// ewsClients makes an EWS client per distinct endpoint of the ews rows
// of spec, with the --ews-* flags; none for a run without ews rows. It
// refuses, before anything is opened, ews rows in a continuous run and
// ews rows without --ews-user.
func (c *cli) ewsClients(o runOptions, spec migration.RunSpec) (map[string]*ews.Client, error) {
	var endpoints []string
	for _, j := range spec.Jobs {
		if j.Protocol == migration.ProtocolEWS && !slices.Contains(endpoints, j.Endpoint) {
			endpoints = append(endpoints, j.Endpoint)
		}
	}
	if len(endpoints) == 0 {
		return nil, nil
	}
	switch {
	case spec.Continuous:
		return nil, fmt.Errorf("%w: --continuous collects over IMAP only; the list has ews rows (run them without --continuous, or keep calendars current with ews subscribe)", errUsage)
	case o.ews.user == "":
		return nil, fmt.Errorf("%w: the list has ews rows: give the EWS service account with --ews-user and --ews-password-file", errUsage)
	case len(endpoints) > maxEWSEndpoints:
		return nil, fmt.Errorf("%w: the list names %d EWS endpoints; at most %d per run", errUsage, len(endpoints), maxEWSEndpoints)
	}
	pw, err := c.password(o.ews.passwordFile, "MIGRATE_EWS_PASSWORD", "")
	if err != nil {
		return nil, err
	}
	if pw == "" {
		return nil, fmt.Errorf("%w: the list has ews rows: no EWS password (--ews-password-file or MIGRATE_EWS_PASSWORD)", errUsage)
	}
	clients := make(map[string]*ews.Client, len(endpoints))
	for _, e := range endpoints {
		eo := o.ews
		eo.endpoint = e
		opts, err := c.ewsOptionsWith(eo, pw)
		if err == nil {
			clients[e], err = ews.NewClient(opts)
		}
		if err != nil {
			for _, cl := range clients {
				cl.Close()
			}
			return nil, fmt.Errorf("EWS endpoint %s: %w", e, err)
		}
	}
	return clients, nil
}

// ewsPass is the run's Pass for ews rows: the pass of an ews.Migrator
// reading from the row's endpoint (IMAP rows go to their collectors).
func (c *cli) ewsPass(clients map[string]*ews.Client) (func(context.Context, migration.Job, migration.ProgressFunc) (string, error), error) {
	ms := make(map[string]*ews.Migrator, len(clients))
	for e, cl := range clients {
		m, err := ews.NewMigrator(ews.MigratorOptions{Store: c.st, Directory: c.dir, Client: cl,
			MaxMessageSize: c.cfg.Migration.MaxMessageBytes, Logger: c.logger})
		if err != nil {
			return nil, err
		}
		ms[e] = m
	}
	return func(ctx context.Context, job migration.Job, progress migration.ProgressFunc) (string, error) {
		m, ok := ms[job.Endpoint]
		if !ok {
			// Only jobs of the list reach here, and each has its client.
			return "", &migration.Error{Class: migration.ErrClassConfig, Target: job.Target, Err: fmt.Errorf("no EWS client for endpoint %s", job.Endpoint)}
		}
		return m.Pass(ctx, job, progress)
	}, nil
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
	fs.StringVar(&o.ews.user, "ews-user", "", "for ews rows of --csv: EWS account to log in as (DOMAIN\\user or user@domain)")
	fs.StringVar(&o.ews.passwordFile, "ews-password-file", "", "file with its password (else MIGRATE_EWS_PASSWORD)")
	fs.StringVar(&o.ews.auth, "ews-auth", string(ews.AuthNTLM), "ntlm or basic")
	fs.StringVar(&o.ews.version, "ews-exchange", string(ews.Exchange2013SP1), "Exchange2013_SP1, Exchange2016 or Exchange2019")
	fs.StringVar(&o.ews.minTLS, "ews-min-tls", "1.2", "lowest TLS version: 1.0, 1.1, 1.2 or 1.3")
	fs.BoolVar(&o.ews.impersonate, "ews-impersonate", false, "act for each mailbox by ExchangeImpersonation (else delegate access)")
	fs.StringVar(&o.ews.caFile, "ews-ca-file", "", "PEM file of the CAs of the EWS endpoints' certificates")
	fs.BoolVar(&o.ews.insecureSkipVerify, "ews-insecure-skip-verify", false, "accept any EWS certificate (labs only)")
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
