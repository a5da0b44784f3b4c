package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailyard/mailyard/smtp"
)

// MilterConfig is one [[milter]] section: a mail filter (antivirus, DLP)
// asked about every message on the listeners it names (smtp.Milter).
type MilterConfig struct {
	// Name identifies the milter in logs and metrics (default: address).
	Name string `toml:"name"`
	// Address is tcp:host:port or unix:/path.
	Address string `toml:"address"`
	// Listeners are the SMTP listeners that ask this milter: "smtp",
	// "submission", "submissions". Default ["smtp"].
	Listeners []string `toml:"listeners"`
	// ConnectTimeout, CommandTimeout and ReadTimeout bound connecting,
	// sending one command and waiting for one reply.
	ConnectTimeout Duration `toml:"connect_timeout"`
	CommandTimeout Duration `toml:"command_timeout"`
	ReadTimeout    Duration `toml:"read_timeout"`
	// OnFailure is what happens when the milter is down, times out or
	// breaks the protocol: "tempfail" (default), "accept" or "reject".
	OnFailure string `toml:"on_failure"`
	// Actions are the modifications it may make: "add_header",
	// "change_header", "quarantine". Default: all three.
	Actions []string `toml:"actions"`
}

// milterActionNames maps the config words to smtp.MilterActions.
var milterActionNames = map[string]smtp.MilterActions{
	"add_header":    smtp.MilterAddHeader,
	"change_header": smtp.MilterChangeHeader,
	"quarantine":    smtp.MilterQuarantine,
}

// smtpListeners are the names a milter's listeners key may use.
var smtpListeners = []string{"smtp", "submission", "submissions"}

// milter converts the section into the library's configuration; errors
// name the key of the i-th [[milter]] section.
func (m MilterConfig) milter(i int) (smtp.Milter, error) {
	key := func(k string) string { return fmt.Sprintf("milter[%d].%s", i, k) }
	if m.Address == "" {
		return smtp.Milter{}, fmt.Errorf("key %q: must be set (tcp:host:port or unix:/path)", key("address"))
	}
	if _, _, err := smtp.ParseMilterAddress(m.Address); err != nil {
		return smtp.Milter{}, fmt.Errorf("key %q: %w", key("address"), err)
	}
	out := smtp.Milter{
		Name: m.Name, Address: m.Address,
		ConnectTimeout: m.ConnectTimeout.Duration, CommandTimeout: m.CommandTimeout.Duration, ReadTimeout: m.ReadTimeout.Duration,
	}
	if m.OnFailure != "" {
		fa, err := smtp.ParseMilterFailAction(m.OnFailure)
		if err != nil {
			return smtp.Milter{}, fmt.Errorf("key %q: %w", key("on_failure"), err)
		}
		out.OnFailure = fa
	}
	if m.Actions != nil && len(m.Actions) == 0 {
		return smtp.Milter{}, fmt.Errorf("key %q: must not be empty (leave it out for all actions)", key("actions"))
	}
	for _, a := range m.Actions {
		v, ok := milterActionNames[a]
		if !ok {
			return smtp.Milter{}, fmt.Errorf("key %q: %q is not one of add_header, change_header, quarantine", key("actions"), a)
		}
		out.Actions |= v
	}
	for _, l := range m.Listeners {
		if !containsString(smtpListeners, l) {
			return smtp.Milter{}, fmt.Errorf("key %q: %q is not one of %s", key("listeners"), l, strings.Join(smtpListeners, ", "))
		}
	}
	return out, nil
}

// validateMilters checks every [[milter]] section; names must be unique,
// as they label the metrics.
func validateMilters(ms []MilterConfig) error {
	names := map[string]bool{}
	for i, m := range ms {
		spec, err := m.milter(i)
		if err != nil {
			return err
		}
		name := spec.Name
		if name == "" {
			name = spec.Address
		}
		if names[name] {
			return fmt.Errorf("key %q: %q is used by an earlier [[milter]]", fmt.Sprintf("milter[%d].name", i), name)
		}
		names[name] = true
	}
	return nil
}

// miltersFor returns the milters a listener asks, in configuration order.
func miltersFor(ms []MilterConfig, listener string) []smtp.Milter {
	var out []smtp.Milter
	for i, m := range ms {
		ls := m.Listeners
		if ls == nil {
			ls = []string{"smtp"}
		}
		if !containsString(ls, listener) {
			continue
		}
		spec, _ := m.milter(i) // validated with the config
		out = append(out, spec)
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// newQuarantine opens the quarantine, where messages a milter
// quarantines wait for an administrator: DATA_DIR/quarantine on SQLite,
// the database on PostgreSQL (so any node releases what any node held).
func newQuarantine(cfg Config, st mailStore, outbound smtp.Outbound, logger *slog.Logger) (*smtp.Quarantine, error) {
	opts := smtp.QuarantineOptions{Records: st, Deliverer: st, Queue: outbound, Logger: logger}
	if b, ok := st.(smtp.QuarantineBodies); ok && cfg.Store.Backend == backendPostgres {
		opts.Bodies = b
	} else {
		opts.Dir = filepath.Join(cfg.DataDir, "quarantine")
	}
	q, err := smtp.NewQuarantine(opts)
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	return q, nil
}

// quarantineAdmin opens the quarantine with an (unstarted) outbound queue
// for the remote recipients of released messages: the running server
// delivers them within seconds.
func (a *admin) quarantineAdmin() (*smtp.Quarantine, error) {
	var outbound smtp.Outbound
	if a.cfg.Queue.Enabled {
		q, err := a.queueAdmin()
		if err != nil {
			return nil, err
		}
		outbound = q
	}
	return newQuarantine(a.cfg, a.st, outbound, a.logger)
}

// quarantineList prints one line per held message.
//
//	quarantine list
func (a *admin) quarantineList(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return errUsage
	}
	q, err := a.quarantineAdmin()
	if err != nil {
		return err
	}
	held, err := q.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSIZE\tRECEIVED\tFROM\tTO\tMILTER\tREASON")
	for _, m := range held {
		from := m.From
		if from == "" {
			from = "<>"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Size, m.Created.UTC().Format(time.RFC3339),
			from, strings.Join(m.Recipients, ","), m.Milter, m.Reason)
	}
	return tw.Flush()
}

// quarantineOp releases or deletes each id given.
//
//	quarantine release|delete ID...
func (a *admin) quarantineOp(op string) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet("quarantine "+op, flag.ContinueOnError)
		ids, err := parseFlags(fs, args)
		if err != nil || len(ids) == 0 {
			return errUsage
		}
		q, err := a.quarantineAdmin()
		if err != nil {
			return err
		}
		fn := q.Release
		if op == "delete" {
			fn = q.Delete
		}
		for _, id := range ids {
			if err := fn(ctx, id); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: %sd\n", id, strings.TrimSuffix(op, "e"))
		}
		return nil
	}
}
