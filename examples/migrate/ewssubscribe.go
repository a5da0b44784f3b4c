package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mailyard/mailyard/migration/ews"
)

// subscribeOptions are the flags `ews subscribe` adds to ewsOptions.
type subscribeOptions struct {
	domain       string
	twoWayMode   string
	twoWayList   string
	interval     time.Duration
	pollInterval time.Duration
}

// ewsSubscribe is `migrate ews subscribe`: keep the calendars of a list
// of users, or of every user of a domain, in sync with Exchange until
// Ctrl-C: two-way for the users the access list selects, one-way
// (Exchange → Mailyard) for the others. Every pass is durable, so the
// same command run again resumes where the last one stopped.
func (c *cli) ewsSubscribe(ctx context.Context, args []string) error {
	var so subscribeOptions
	o, err := parseEWSFlags("ews subscribe", args, func(fs *flag.FlagSet) {
		fs.StringVar(&so.domain, "domain", "", "every user of DOMAIN (instead of TARGETs)")
		fs.StringVar(&so.twoWayMode, "two-way-mode", "allow", "allow: only --two-way users sync both ways; deny: all but them")
		fs.StringVar(&so.twoWayList, "two-way", "", `addresses or "@domain"s, ","-separated, the access list of --two-way-mode`)
		fs.DurationVar(&so.interval, "interval", 5*time.Minute, "period of the full SyncFolderItems pass")
		fs.DurationVar(&so.pollInterval, "poll", 2*time.Second, "period of GetEvents on the pull subscription")
	})
	if err != nil {
		return err
	}
	if (so.domain == "") == (len(o.targets) == 0) {
		return fmt.Errorf("%w: ews subscribe needs TARGETs or --domain DOMAIN, not both", errUsage)
	}
	if so.interval <= 0 || so.pollInterval <= 0 {
		return fmt.Errorf("%w: --interval and --poll must be positive", errUsage)
	}
	access := ews.AccessList{Mode: ews.AccessMode(so.twoWayMode)}
	for e := range strings.SplitSeq(so.twoWayList, ",") {
		if e = strings.TrimSpace(e); e != "" {
			access.Entries = append(access.Entries, e)
		}
	}
	client, err := c.ewsClient(o)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := c.open(ctx, false); err != nil {
		return err
	}
	defer c.close()
	s, err := ews.NewSyncer(ews.SyncerOptions{Store: c.st, Directory: c.dir, Client: client, Access: access,
		Interval: so.interval, PollInterval: so.pollInterval, Logger: c.logger, OnCycle: c.cyclePrinter()})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	jobs, err := c.subscribeJobs(ctx, o.targets, so.domain)
	if err != nil {
		return err
	}
	twoWay := 0
	for _, j := range jobs {
		if access.TwoWay(j.Target) {
			twoWay++
		}
	}
	fmt.Fprintf(c.env.stdout, "syncing the calendars of %d mailboxes (%d two-way, %d one-way); Ctrl-C stops, the same command resumes\n",
		len(jobs), twoWay, len(jobs)-twoWay)
	err = s.Run(ctx, jobs)
	fmt.Fprintln(c.env.stdout, "stopped: every change synced so far is kept; run the same command again to resume")
	if errors.Is(err, context.Canceled) {
		return errInterrupted
	}
	return err
}

// subscribeJobs are the mailboxes of `ews subscribe`: TARGET[=SOURCE]
// arguments, or every user of domain with the same address on both
// sides.
func (c *cli) subscribeJobs(ctx context.Context, targets []string, domain string) ([]ews.Job, error) {
	var jobs []ews.Job
	for _, t := range targets {
		target, source, _ := strings.Cut(t, "=")
		if source == "" {
			source = target
		}
		jobs = append(jobs, ews.Job{Target: target, Mailbox: source})
	}
	if domain == "" {
		return jobs, nil
	}
	const page = 500
	for after := ""; ; {
		users, err := c.dir.ListUsers(ctx, domain, after, page)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			jobs = append(jobs, ews.Job{Target: u.Address, Mailbox: u.Address})
			after = u.Address
		}
		if len(users) < page {
			break
		}
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("domain %s has no users", domain)
	}
	return jobs, nil
}

// cyclePrinter prints each pass that changed something or failed; the
// jobs' loops call it at once.
func (c *cli) cyclePrinter() func(ews.CycleReport) {
	var mu sync.Mutex
	return func(r ews.CycleReport) {
		mu.Lock()
		defer mu.Unlock()
		c.printCycle(r)
	}
}

func (c *cli) printCycle(r ews.CycleReport) {
	mode := "one-way"
	if r.TwoWay {
		mode = "two-way"
	}
	now := time.Now().UTC().Format(time.RFC3339)
	switch {
	case r.Err != nil && !errors.Is(r.Err, context.Canceled):
		fmt.Fprintf(c.env.stdout, "%s %s %s %s: error: %v\n", now, r.Target, mode, r.Trigger, r.Err)
	case r.Pulled+r.Pushed+r.Deleted+r.Conflicts+r.Skipped > 0:
		fmt.Fprintf(c.env.stdout, "%s %s %s %s: %d from Exchange, %d to Exchange, %d deleted, %d conflicts, %d not representable in EWS\n",
			now, r.Target, mode, r.Trigger, r.Pulled, r.Pushed, r.Deleted, r.Conflicts, r.Skipped)
	}
}

// ewsConflicts is `migrate ews conflicts ADDRESS`: the conflict log of
// a target's two-way calendar sync, oldest first, with the losing
// versions.
func (c *cli) ewsConflicts(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ews conflicts", flag.ContinueOnError)
	skip := fs.Int("skip", 0, "conflicts to skip")
	limit := fs.Int("limit", 50, "conflicts to show")
	full := fs.Bool("full", false, "print the losing versions")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *skip < 0 || *limit <= 0 {
		return fmt.Errorf("%w: ews conflicts ADDRESS [--skip N] [--limit N] [--full]", errUsage)
	}
	if err := c.open(ctx, false); err != nil {
		return err
	}
	defer c.close()
	list, err := ews.ReadConflicts(ctx, c.st, pos[0], *skip, *limit)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintf(c.env.stdout, "no conflicts for %s\n", pos[0])
		return nil
	}
	for _, k := range list {
		fmt.Fprintf(c.env.stdout, "%s  %s  uid %s  %q: %s; %s won (Exchange modified %s, Mailyard modified %s)\n",
			k.Time.Format(time.RFC3339), k.Target, k.UID, k.Subject, k.Reason, k.Winner, stamp(k.ExchangeModified), stamp(k.MailyardModified))
		if *full && len(k.Loser) > 0 {
			fmt.Fprintf(c.env.stdout, "  losing version:\n    %s\n", strings.ReplaceAll(strings.TrimSpace(string(k.Loser)), "\n", "\n    "))
		}
	}
	return nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
