package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
)

// ewsOptions are the flags of `migrate ews sync`.
type ewsOptions struct {
	endpoint, user, passwordFile string
	auth, version, minTLS        string
	impersonate                  bool
	caFile                       string
	insecureSkipVerify           bool
	exclude                      string
	parallel                     int
	progressEvery                time.Duration
	// sourceDeletions is `ews sync --source-deletions`
	// (ews.MigratorOptions.SourceDeletions).
	sourceDeletions bool
	// targets are "TARGET" or "TARGET=SOURCE" (the source mailbox's
	// address when it differs from the target's).
	targets []string
	// domain is `ews sync --domain`: every user of the domain, each
	// from the Exchange mailbox of the same address (instead of targets).
	domain string
}

// ewsCmd is `migrate ews sync`, `ews subscribe`, `ews conflicts` and
// `ews test`.
func (c *cli) ewsCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: ews: the command is \"ews sync\", \"ews subscribe\", \"ews conflicts\" or \"ews test\"", errUsage)
	}
	switch args[0] {
	case "test":
		return c.ewsTest(ctx, args[1:])
	case "sync":
		return c.ewsSync(ctx, args[1:])
	case "subscribe":
		return c.ewsSubscribe(ctx, args[1:])
	case "conflicts":
		return c.ewsConflicts(ctx, args[1:])
	}
	return fmt.Errorf("%w: ews: unknown command %q", errUsage, args[0])
}

// ewsSync is `migrate ews sync`: one pass for each target from an
// Exchange mailbox over EWS (mail, calendar and contacts), kept in the
// run history like the IMAP runs.
func (c *cli) ewsSync(ctx context.Context, args []string) error {
	var sourceDeletions bool
	var domain string
	o, err := parseEWSFlags("ews sync", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&sourceDeletions, "source-deletions", false, "remove the copies of messages deleted in Exchange since the last pass, if unchanged in Mailyard")
		fs.StringVar(&domain, "domain", "", "every user of DOMAIN, from the Exchange mailbox of the same address (instead of TARGETs)")
	})
	if err != nil {
		return err
	}
	if (domain == "") == (len(o.targets) == 0) {
		return fmt.Errorf("%w: ews sync needs TARGETs or --domain DOMAIN, not both", errUsage)
	}
	o.sourceDeletions, o.domain = sourceDeletions, domain
	if o.parallel > 0 {
		c.cfg.Migration.Parallel = o.parallel
	}
	client, err := c.ewsClient(o)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := c.open(ctx, true); err != nil {
		return err
	}
	defer c.close()
	em, err := ews.NewMigrator(ews.MigratorOptions{Store: c.st, Directory: c.dir, Client: client,
		MaxMessageSize: c.cfg.Migration.MaxMessageBytes, SourceDeletions: o.sourceDeletions, Logger: c.logger})
	if err != nil {
		return err
	}
	spec, err := ewsRunSpec(o, em)
	if err != nil {
		return err
	}
	return c.execute(ctx, spec, o.progressEvery)
}

// errTestFailed marks a connection test that failed (its report is
// already printed).
var errTestFailed = errors.New("connection test failed")

// ewsTest is `migrate ews test`: the connection test of ews.Test for
// the source the flags describe and, with a MAILBOX, the right to reach
// it. It prints a line per step that passed, then the failed step or
// the server's version; it needs no data directory.
func (c *cli) ewsTest(ctx context.Context, args []string) error {
	o, err := parseEWSFlags("ews test", args, nil)
	if err != nil {
		return err
	}
	if len(o.targets) > 1 {
		return fmt.Errorf("%w: ews test takes at most one MAILBOX", errUsage)
	}
	opts, err := c.ewsOptions(o)
	if err != nil {
		return err
	}
	mailbox := ""
	if len(o.targets) == 1 {
		mailbox = o.targets[0]
	}
	rep := ews.Test(ctx, opts, mailbox)
	w := c.env.stdout
	u, _ := url.Parse(o.endpoint)
	type step struct {
		stage  ews.Stage
		detail string
	}
	steps := []step{
		{ews.StageConfig, o.endpoint},
		{ews.StageDNS, u.Hostname()},
		{ews.StageAllowlist, u.Hostname()},
		{ews.StageTCP, rep.Addr},
		{ews.StageTLS, rep.TLSVersion},
		{ews.StageAuth, fmt.Sprintf("%s as %s", opts.Auth, opts.Username)},
	}
	if mailbox != "" {
		steps = append(steps, step{ews.StageImpersonation, fmt.Sprintf("%s access to %s", opts.Access, mailbox)})
	}
	for _, st := range steps {
		if st.stage == rep.Stage || (st.stage == ews.StageAuth && rep.Stage == ews.StageRequest) {
			break
		}
		switch {
		case st.stage == ews.StageDNS && net.ParseIP(st.detail) != nil:
			st.detail = "not needed: " + st.detail + " is an address"
		case st.stage == ews.StageTLS && u.Scheme != "https":
			st.detail = "not used (http)"
		}
		fmt.Fprintf(w, "%-13s ok %s\n", st.stage, st.detail)
	}
	if rep.Stage != ews.StageOK {
		fmt.Fprintf(w, "%-13s FAILED: %v\n", rep.Stage, rep.Err)
		return fmt.Errorf("%w at %s", errTestFailed, rep.Stage)
	}
	fmt.Fprintf(w, "OK: Exchange %s\n", rep.Server)
	return nil
}

// ewsClient is the EWS client the flags describe, with the config's
// allowlist and the password from its file.
func (c *cli) ewsClient(o ewsOptions) (*ews.Client, error) {
	opts, err := c.ewsOptions(o)
	if err != nil {
		return nil, err
	}
	return ews.NewClient(opts)
}

// ewsOptions are the client options the flags describe.
func (c *cli) ewsOptions(o ewsOptions) (ews.Options, error) {
	pw, err := c.password(o.passwordFile, "MIGRATE_PASSWORD", c.cfg.Migration.PasswordFile)
	if err != nil {
		return ews.Options{}, err
	}
	if pw == "" {
		return ews.Options{}, fmt.Errorf("%w: ews: no password (--password-file or MIGRATE_PASSWORD)", errUsage)
	}
	return c.ewsOptionsWith(o, pw)
}

// ewsOptionsWith are the client options o describes, with password pw.
func (c *cli) ewsOptionsWith(o ewsOptions, pw migration.Secret) (ews.Options, error) {
	if len(c.cfg.Migration.Allowlist) == 0 {
		return ews.Options{}, errors.New("no source allowlist: give -allow HOSTS or allowlist in the [migration] section of the config file")
	}
	allow, err := migration.NewAllowlist(c.cfg.Migration.Allowlist)
	if err != nil {
		return ews.Options{}, err
	}
	opts := ews.Options{URL: o.endpoint, Version: ews.Version(o.version), Auth: ews.Auth(o.auth),
		Username: o.user, Password: pw, Access: ews.AccessDelegate,
		CAFile: o.caFile, InsecureSkipVerify: o.insecureSkipVerify, Allowlist: allow, Logger: c.logger}
	if o.impersonate {
		opts.Access = ews.AccessImpersonation
	}
	if opts.MinTLSVersion, err = tlsVersion(o.minTLS); err != nil {
		return ews.Options{}, fmt.Errorf("%w: --min-tls: %v", errUsage, err)
	}
	return opts, nil
}

// ewsRunSpec is the run of `ews sync`: a by-list run whose jobs name
// the source mailbox as their login and the endpoint as their source,
// or with --domain a full run of the domain's users, each from the
// mailbox of its own address (migration.RunFull).
func ewsRunSpec(o ewsOptions, em *ews.Migrator) (migration.RunSpec, error) {
	src, err := migration.EndpointSource(o.endpoint)
	if err != nil {
		return migration.RunSpec{}, fmt.Errorf("%w: --endpoint: %v", errUsage, err)
	}
	d := migration.Job{Source: src, Endpoint: o.endpoint,
		Credentials: migration.Credentials{Mode: migration.AuthServicePlain, Service: o.user, Password: migration.Mask}}
	switch o.exclude {
	case "":
	case "-":
		d.Exclude = []string{}
	default:
		for f := range strings.SplitSeq(o.exclude, ";") {
			if f = strings.TrimSpace(f); f == "" {
				return migration.RunSpec{}, fmt.Errorf("%w: --exclude: empty folder name", errUsage)
			}
			d.Exclude = append(d.Exclude, f)
		}
	}
	spec := migration.RunSpec{Kind: migration.RunList, Defaults: d, Pass: em.Pass, Protocol: "EWS"}
	if o.domain != "" {
		spec.Kind, spec.Domain = migration.RunFull, o.domain
		return spec, nil
	}
	for _, t := range o.targets {
		target, source, _ := strings.Cut(t, "=")
		spec.Jobs = append(spec.Jobs, migration.Job{Target: target, Credentials: migration.Credentials{Login: source}})
	}
	return spec, nil
}

// parseEWSFlags reads the flags the ews commands share, and those more
// adds; cmd names the command in errors.
func parseEWSFlags(cmd string, args []string, more func(*flag.FlagSet)) (ewsOptions, error) {
	var o ewsOptions
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.StringVar(&o.endpoint, "endpoint", "", "EWS URL, e.g. https://mail.example.com/EWS/Exchange.asmx")
	fs.StringVar(&o.user, "user", "", "account to log in as (DOMAIN\\user or user@domain)")
	fs.StringVar(&o.passwordFile, "password-file", "", "file with its password")
	fs.StringVar(&o.auth, "auth", string(ews.AuthNTLM), "ntlm or basic")
	fs.StringVar(&o.version, "exchange", string(ews.Exchange2013SP1), "Exchange2013_SP1, Exchange2016 or Exchange2019")
	fs.StringVar(&o.minTLS, "min-tls", "1.2", "lowest TLS version: 1.0, 1.1, 1.2 or 1.3")
	fs.BoolVar(&o.impersonate, "impersonate", false, "act for each mailbox by ExchangeImpersonation (else delegate access)")
	fs.StringVar(&o.caFile, "ca-file", "", "PEM file of the CAs of the source's certificate")
	fs.BoolVar(&o.insecureSkipVerify, "insecure-skip-verify", false, "accept any source certificate (labs only)")
	fs.StringVar(&o.exclude, "exclude", "", `folders not to copy, ";"-separated ("-": none)`)
	fs.IntVar(&o.parallel, "parallel", 0, "mailboxes copied at once")
	fs.DurationVar(&o.progressEvery, "progress-every", lineEvery, "period of progress lines when the output is not a terminal")
	if more != nil {
		more(fs)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return o, err
	}
	if o.endpoint == "" || o.user == "" {
		return o, fmt.Errorf("%w: %s needs --endpoint and --user", errUsage, cmd)
	}
	if o.parallel < 0 || o.progressEvery <= 0 {
		return o, fmt.Errorf("%w: --parallel and --progress-every must not be negative", errUsage)
	}
	o.targets = pos
	return o, nil
}

// tlsVersion parses "1.0" to "1.3".
func tlsVersion(s string) (uint16, error) {
	switch s {
	case "1.0":
		return tls.VersionTLS10, nil
	case "1.1":
		return tls.VersionTLS11, nil
	case "1.2", "":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unknown TLS version %q", s)
}
