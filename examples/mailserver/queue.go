package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store/postgres"
)

// QueueConfig is the [queue] section: the outbound queue that relays mail
// to other servers (queue.Queue).
type QueueConfig struct {
	// Enabled accepts mail for remote recipients (authenticated users,
	// relaynets, relay domains, routes) and delivers it; without the
	// queue they get 451 4.3.2.
	Enabled bool `toml:"enabled"`
	// Concurrency and PerDestination bound deliveries in progress, in all
	// and per destination.
	Concurrency    int `toml:"concurrency"`
	PerDestination int `toml:"per_destination"`
	// RetryMin is the wait after the first failure, doubled per attempt up
	// to RetryMax.
	RetryMin Duration `toml:"retry_min"`
	RetryMax Duration `toml:"retry_max"`
	// DelayWarning sends the sender a "delayed" DSN ("0s": never).
	DelayWarning Duration `toml:"delay_warning"`
	// Expiry bounces what is still undelivered.
	Expiry Duration `toml:"expiry"`
	// Lease is how long a node holds the recipients it attempts: a
	// node killed mid-delivery has them attempted by another node once
	// it ends (or by itself when it restarts first).
	Lease Duration `toml:"lease"`
}

// defaultQueueConfig mirrors the queue.Queue defaults.
func defaultQueueConfig() QueueConfig {
	return QueueConfig{
		Enabled:        true,
		Concurrency:    queue.DefaultConcurrency,
		PerDestination: queue.DefaultPerDestination,
		RetryMin:       Duration{queue.DefaultRetryMin},
		RetryMax:       Duration{queue.DefaultRetryMax},
		DelayWarning:   Duration{queue.DefaultDelayWarning},
		Expiry:         Duration{queue.DefaultExpiry},
		Lease:          Duration{queue.DefaultLease},
	}
}

func (c QueueConfig) validate() error {
	switch {
	case c.Concurrency < 1:
		return errors.New(`key "queue.concurrency": must be at least 1`)
	case c.PerDestination < 1:
		return errors.New(`key "queue.per_destination": must be at least 1`)
	case c.RetryMin.Duration <= 0:
		return errors.New(`key "queue.retry_min": must be more than zero`)
	case c.RetryMax.Duration < c.RetryMin.Duration:
		return errors.New(`key "queue.retry_max": must not be less than retry_min`)
	case c.Expiry.Duration <= 0:
		return errors.New(`key "queue.expiry": must be more than zero`)
	case c.Lease.Duration <= 0:
		return errors.New(`key "queue.lease": must be more than zero`)
	}
	return nil
}

// newQueue opens the outbound queue: bodies in DATA_DIR/queue, or in
// the database with the PostgreSQL backend, where every node reads them
// (a node delivers what another queued). reg, if set, receives its
// metrics.
func newQueue(cfg Config, st mailStore, router queue.Router, logger *slog.Logger, metrics queue.Metrics) (*queue.Queue, error) {
	qc := cfg.Queue
	warn := qc.DelayWarning.Duration
	if warn == 0 {
		warn = -1 // queue.Options: negative is never
	}
	var bodies queue.Bodies
	owner := cfg.Hostname
	if pg, ok := st.(*postgres.Store); ok {
		bodies = pg
		owner = nodeName(cfg)
	}
	q, err := queue.New(queue.Options{
		Dir:            filepath.Join(cfg.DataDir, "queue"),
		Bodies:         bodies,
		Owner:          owner,
		Lease:          qc.Lease.Duration,
		Store:          st,
		Records:        st, // queues of releases before package queue, moved at Start
		Deliverer:      st,
		Router:         router,
		Resolver:       newResolver(cfg.DNS),
		Hostname:       cfg.Hostname,
		Concurrency:    qc.Concurrency,
		PerDestination: qc.PerDestination,
		RetryMin:       qc.RetryMin.Duration,
		RetryMax:       qc.RetryMax.Duration,
		DelayWarning:   warn,
		Expiry:         qc.Expiry.Duration,
		Logger:         logger,
		Metrics:        metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return q, nil
}

// nodeName names this node among those sharing one database, in the
// queue's leases: the nodes share the configured hostname (their MX
// name), so it adds the machine's name and the data directory, which
// stay the same when the node restarts (it then takes its leases back
// at once) and differ between nodes.
func nodeName(cfg Config) string {
	machine, err := os.Hostname()
	if err != nil {
		machine = "localhost"
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dir = cfg.DataDir
	}
	return cfg.Hostname + " " + machine + ":" + dir
}

// queueAdmin opens the queue of the data directory for the admin commands
// (not started: the running server delivers; it sees changes within
// seconds).
func (a *admin) queueAdmin() (*queue.Queue, error) {
	rules, err := a.cfg.Routing.routingRules()
	if err != nil {
		return nil, err
	}
	return newQueue(a.cfg, a.st, routing.NewTable(a.dir, routing.TableOptions{Logger: a.logger, Rules: rules}), a.logger, nil)
}

// queueList prints one line per queued recipient.
//
//	queue list
func (a *admin) queueList(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return errUsage
	}
	q, err := a.queueAdmin()
	if err != nil {
		return err
	}
	entries, err := q.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSIZE\tQUEUED\tFROM\tTO\tNEXT HOP\tATTEMPTS\tNEXT\tLAST ERROR")
	for _, e := range entries {
		next := e.Next.UTC().Format(time.RFC3339)
		if e.Held {
			next = "held"
		}
		from := e.From
		if from == "" {
			from = "<>"
		}
		hop := e.NextHop
		if hop == "" {
			hop = "MX"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, e.Size, e.Created.UTC().Format(time.RFC3339),
			from, e.Recipient, hop, e.Attempts, next, e.LastError)
	}
	return tw.Flush()
}

// queueShow prints one queued message, a block per recipient.
//
//	queue show ID
func (a *admin) queueShow(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errUsage
	}
	q, err := a.queueAdmin()
	if err != nil {
		return err
	}
	entries, err := q.Recipients(ctx, args[0])
	if err != nil {
		return err
	}
	e := entries[0]
	from := e.From
	if from == "" {
		from = "<>"
	}
	fmt.Fprintf(a.stdout, "id: %s\nfrom: %s\nsize: %d\nqueued: %s\n", e.ID, from, e.Size, e.Created.UTC().Format(time.RFC3339))
	for _, e := range entries {
		next := e.Next.UTC().Format(time.RFC3339)
		if e.Held {
			next = "held"
		}
		transport, hop := e.Route, e.NextHop
		if transport == "" {
			transport = "-"
		}
		if hop == "" {
			hop = "MX"
		}
		fmt.Fprintf(a.stdout, "\nrecipient: %s\ntransport: %s (next hop when queued: %s, tls %s)\nattempts: %d\nnext: %s\nlast error: %s\n",
			e.Recipient, transport, hop, e.TLS, e.Attempts, next, e.LastError)
	}
	return nil
}

// queueOp runs a per-message admin operation on each id given.
//
//	queue hold|release|retry|delete ID...
func (a *admin) queueOp(op string) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet("queue "+op, flag.ContinueOnError)
		ids, err := parseFlags(fs, args)
		if err != nil || len(ids) == 0 {
			return errUsage
		}
		q, err := a.queueAdmin()
		if err != nil {
			return err
		}
		fn := map[string]func(context.Context, string) error{
			"hold": q.Hold, "release": q.Release, "retry": q.RetryNow, "delete": q.Delete,
		}[op]
		for _, id := range ids {
			if err := fn(ctx, id); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: %s\n", id, op)
		}
		return nil
	}
}
