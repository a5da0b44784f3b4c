package migration

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// UserLister lists a domain's users; the store-backed directory
// (directory/builtin) satisfies it. A run for a whole domain ([RunFull])
// needs it.
type UserLister interface {
	// ListUsers returns up to limit users of domain ordered by primary
	// address, starting after the address after ("" from the start); a
	// page may be shorter than limit, and an empty one ends the listing.
	ListUsers(ctx context.Context, domain, after string, limit int) ([]directory.User, error)
}

// userPageSize is how many users a full run asks a UserLister for at
// once.
const userPageSize = 1000

// Target is what a [Migrator] needs from the store it copies into: the
// records that hold collector state, run history, leases and checkpoints;
// the target mailboxes; the messages; and the account a job's address
// resolves to. Every store backend (*sqlite.Store, *memstore.Store)
// satisfies it.
//
// Migration relies on two guarantees of the store (package store's
// consistency rules):
//   - Append returns nil only once the message is durable, and a pass
//     writes a message's checkpoint only after its Append returned, so a
//     crash loses at most the checkpoints of finished appends (a later
//     pass recognises those copies instead of appending them twice), never
//     a checkpointed message.
//   - UpdateRecords is one transaction: a checkpoint's message and folder
//     records, a lease's take-over and a run's bookkeeping are written
//     together or not at all, and a Put with an expected version fails
//     with [store.ErrPreconditionFailed] if another writer got there
//     first. The functions passed to it may run more than once.
type Target interface {
	store.Records
	store.Mailboxes
	store.Messages
	// Account is store.Accounts.Account: a job's target address must
	// resolve to an existing account before anything is copied.
	Account(ctx context.Context, id string) (store.Account, error)
}

// Lookup is what a [Migrator] needs from the directory: a job's target
// address resolved to its account, and a report's domain checked as
// hosted here. [directory.Directory] satisfies it.
type Lookup interface {
	// LookupAddress resolves an address to an entry; directory.ErrNotFound
	// if it is unknown.
	LookupAddress(ctx context.Context, address string) (directory.Entry, error)
	// LookupDomain returns the hosted domain that name is (or is an
	// alternative name of); directory.ErrNotFound if it is not hosted.
	LookupDomain(ctx context.Context, name string) (directory.Domain, error)
}

// Options configure a [Migrator]. Zero durations and limits take the
// defaults named beside them.
type Options struct {
	// Store receives the mail and keeps collector state, run history and
	// checkpoints (in records). Required.
	Store Target
	// Directory resolves a job's target address to its account and tells
	// whether a report's domain is hosted here. Required.
	Directory Lookup
	// Users lists a domain's users for whole-domain runs; optional.
	Users UserLister
	// Allowlist holds the source hosts collectors may connect to: CIDR
	// blocks ("10.0.0.0/8") or exact host names ("mail.example.com",
	// case-insensitive). A host matches if its name is listed, or if it is
	// an IP literal inside a listed block, or if every address it resolves
	// to is inside a listed block. An empty list allows nothing.
	Allowlist []string
	// Resolver resolves source host names for the allowlist check and the
	// dial; nil means net.DefaultResolver.
	Resolver *net.Resolver
	Logger   *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time

	// MaxConnsPerHost bounds connections to one source host over all
	// collectors of this Migrator (4).
	MaxConnsPerHost int
	// Parallel is how many mailboxes a run copies at once (8).
	Parallel int
	// FolderParallel is how many folders of one mailbox are copied at once
	// (2), each on its own connection, within MaxConnsPerHost.
	FolderParallel int
	// AppendParallel is how many appends of one folder run at once (8):
	// messages, or batches of messages where the store takes them
	// (store.BatchAppender). The bodies are still read from the source
	// one after another, but each append's fsyncs and commit overlap the
	// next ones. Copies may then get target UIDs slightly out of source
	// order.
	AppendParallel int
	// BandwidthLimit caps the bytes per second read from all sources
	// together; 0 is unlimited.
	BandwidthLimit int64
	// DialTimeout bounds connect, TLS and greeting (30s); CommandTimeout
	// bounds waiting for any one response from the source (5m).
	DialTimeout, CommandTimeout time.Duration
	// MaxMessageSize: larger source messages are skipped and counted as
	// too large (64 MiB).
	MaxMessageSize int64
	// RetryMin and RetryMax bound the back-off between failed passes of
	// a continuous collector (1m, 30m).
	RetryMin, RetryMax time.Duration
	// SecretKey is the secret (at least MinSecretKeySize random bytes,
	// kept outside the store) from which the key that seals the source
	// passwords kept in collector records is derived (HKDF-SHA256, then
	// AES-256-GCM with the target address as associated data), so a copy
	// of the store reveals no password. Passes and runs that store or
	// read a password need it (without it they fail with ErrNoSecretKey,
	// class ErrClassConfig); Status, ListStatus, reports and Disable do
	// not. Records from before sealing are read in plain text and sealed
	// when next written.
	SecretKey []byte
	// NoIdle turns instant collection off: continuous collectors only
	// poll, and hold no IDLE connection (one per collector, outside
	// MaxConnsPerHost) to their source.
	NoIdle bool
}

// Migrator runs collectors, runs and reports over one store. It is safe for
// concurrent use.
type Migrator struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
	// allow is the parsed Allowlist.
	allow allowlist
	// hosts bounds connections per source host.
	hosts *hostLimiter
	// bw is the shared bandwidth limiter (nil: unlimited).
	bw *bandwidth
	// seal seals stored passwords (nil: no SecretKey).
	seal *sealer
	// heldBufs and heldSlots are the buffers of message bodies read into
	// memory before their append, and the bound on them (holdBuffer).
	heldBufs  sync.Pool
	heldSlots chan struct{}
	// heldBytes bounds the bodies read into memory for batch appends
	// (maxHeldBytes), over all passes of this Migrator.
	heldBytes *semaphore.Weighted
	// runMu serialises run-ID allocation and run bookkeeping.
	runMu sync.Mutex
	// active holds the targets with a pass in progress (closed when it
	// ends), so passes for one mailbox never overlap.
	activeMu sync.Mutex
	active   map[string]chan struct{}
}

// New checks opts, fills in defaults and returns a Migrator.
func New(opts Options) (*Migrator, error) {
	if opts.Store == nil {
		return nil, errors.New("migration: Options.Store is required")
	}
	if opts.Directory == nil {
		return nil, errors.New("migration: Options.Directory is required")
	}
	allow, err := parseAllowlist(opts.Allowlist)
	if err != nil {
		return nil, err
	}
	seal, err := newSealer(opts.SecretKey)
	if err != nil {
		return nil, err
	}
	setDefault := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setDefault(&opts.MaxConnsPerHost, 4)
	setDefault(&opts.Parallel, 8)
	setDefault(&opts.FolderParallel, 2)
	setDefault(&opts.AppendParallel, 8)
	setDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setDur(&opts.DialTimeout, 30*time.Second)
	setDur(&opts.CommandTimeout, 5*time.Minute)
	setDur(&opts.RetryMin, time.Minute)
	setDur(&opts.RetryMax, 30*time.Minute)
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = 64 << 20
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Migrator{
		opts:  opts,
		log:   opts.Logger.With("component", "migration"),
		now:   opts.Now,
		allow: allow,
		hosts: newHostLimiter(opts.MaxConnsPerHost),
		seal:  seal,

		heldSlots: make(chan struct{}, maxHeldBodies),
		heldBytes: semaphore.NewWeighted(maxHeldBytes),
	}
	if opts.BandwidthLimit > 0 {
		m.bw = newBandwidth(opts.BandwidthLimit, opts.Now)
	}
	return m, nil
}
