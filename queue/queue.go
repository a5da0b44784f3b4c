package queue

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

// Defaults applied to zero Options fields.
const (
	// DefaultRetryMin is the wait after the first failed attempt; each
	// further failure doubles it, up to DefaultRetryMax. Postfix's
	// minimal_backoff_time; short enough for greylisting (RFC 6647 §2.1).
	DefaultRetryMin = 5 * time.Minute
	// DefaultRetryMax caps the wait between attempts (Postfix's
	// maximal_backoff_time is 4000s).
	DefaultRetryMax = time.Hour
	// DefaultDelayWarning is when the sender gets a "delayed" DSN.
	DefaultDelayWarning = 4 * time.Hour
	// DefaultExpiry is when the queue gives up and bounces: RFC 5321
	// §4.5.4.1 asks for at least 4-5 days.
	DefaultExpiry = 5 * 24 * time.Hour
	// DefaultConcurrency bounds deliveries in progress in all.
	DefaultConcurrency = 64
	// DefaultPerDestination bounds connections to one destination.
	DefaultPerDestination = 8
	// DefaultPollInterval is how often the scheduler asks the store for
	// due recipients without being woken, to see changes made by other
	// processes (the admin commands).
	DefaultPollInterval = 5 * time.Second
	// DefaultLease is how long a claimed recipient stays leased to the
	// queue that claimed it: longer than any one attempt takes.
	DefaultLease = 15 * time.Minute
	// DefaultMaxInFlight bounds the recipients claimed and not yet
	// settled: the queue's memory follows this, not the backlog.
	DefaultMaxInFlight = 10000
	// DefaultConnectTimeout bounds one TCP connect.
	DefaultConnectTimeout = 30 * time.Second
)

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("queue: closed")

// Resolver is the DNS the queue uses to find next hops: MX
// (RFC 5321 §5.1) and address records. *net.Resolver and dkim.Resolver
// implementations satisfy it.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Options configure a [Queue]. Store, Deliverer and Router are required,
// and Dir unless Bodies is set; every other zero field takes the
// documented default.
type Options struct {
	// Dir holds one fsynced file per queued message body when Bodies is
	// nil. It is created if missing. Give every Queue its own directory.
	Dir string
	// Store keeps the recipients ([Store]), committed durably before
	// Enqueue returns. store/sqlite and store/memstore implement it.
	Store Store
	// Bodies, if set, keeps the bodies instead of Dir, where every node
	// sharing Store reads them ([Bodies]; store/postgres implements
	// it). Nodes that share a Store need it: a node claims recipients
	// other nodes queued.
	Bodies Bodies
	// Records, if set, is where releases before package queue kept the
	// queue (namespace [Namespace], one JSON record per recipient): Start
	// moves what it finds there into Store once, so that nothing queued
	// before an upgrade is lost.
	Records store.Records
	// Deliverer and Router deliver DSNs: the original sender is resolved
	// with Router and a local sender's DSN is stored with Deliverer; a
	// remote sender's DSN is queued like any message.
	Deliverer store.Deliverer
	Router    Router
	// Routes finds each recipient's next hop and credentials by transport
	// name when it is delivered. Default: Router, if it implements
	// Routes (*routing.Table does); without one, the hop routing gave at
	// enqueue time is used, without credentials.
	Routes Routes
	// Resolver finds MX and address records. Default net.DefaultResolver.
	Resolver Resolver
	// Dial opens TCP connections. Default: a net.Dialer with
	// DefaultConnectTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Hostname is announced in EHLO, DSNs' Reporting-MTA and their
	// MAILER-DAEMON sender. Default os.Hostname().
	Hostname string
	// Owner names this queue in the leases it takes ([Store]
	// ClaimRecipients); a queue restarted with the same Owner takes its
	// previous run's leases back at once. Give each node sharing a Store
	// its own. Default: Hostname.
	Owner string
	// TLSConfig is the base client TLS configuration (RootCAs for hops with
	// TLS policy "verify"). Default: the system roots.
	TLSConfig *tls.Config

	// Concurrency bounds deliveries in progress (default 64);
	// PerDestination bounds concurrent connections to one destination
	// (default 8). Each connection is reused for the destination's next
	// message while there is one.
	Concurrency    int
	PerDestination int
	// MaxInFlight bounds the recipients claimed from the Store and not
	// yet settled (default 10000).
	MaxInFlight int
	// Lease is how long a claim lasts (default 15m). An attempt that
	// starts more than a quarter of the Lease after its claim was taken
	// (or last renewed) first renews it for a whole Lease, together with
	// the claims of every job waiting for the same destination, in one
	// store write; so every attempt starts with at least three quarters
	// of the Lease left on its claim (half a Lease before the cut below),
	// and the attempts that start soon after their claim, as nearly all
	// do, cost no renewal. A
	// job whose claim ended while it waited for a worker is dropped and
	// claimed again, and an attempt still running a quarter of the Lease
	// before the claim ends has its connection cut (it is retried), so no
	// attempt outlives its claim and its outcome has time to be settled.
	Lease time.Duration
	// RetryMin, RetryMax: after the n-th failed attempt the next is
	// RetryMin*2^(n-1) later, at most RetryMax (defaults 5m and 1h).
	RetryMin, RetryMax time.Duration
	// DelayWarning is how long a recipient may wait before the sender
	// gets one "delayed" DSN (default 4h; negative: never).
	DelayWarning time.Duration
	// Expiry is how long a recipient is retried before it bounces
	// (default 5 days).
	Expiry time.Duration
	// PollInterval is how often the scheduler looks for due recipients
	// without being woken, to pick up changes made by other processes
	// (default 5s).
	PollInterval time.Duration

	// Logger receives one line per attempt and per DSN. Default: discard.
	Logger *slog.Logger
	// Metrics, if set, receives the queue's metrics: recipients by
	// state (ready, deferred, held), the oldest message's age, delivery
	// results (delivered, deferred, bounced, expired), DSNs sent and
	// workers per destination. One queue per Metrics.
	Metrics Metrics
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Dir == "" && o.Bodies == nil {
		errs = append(errs, errors.New("option Dir is required without Bodies"))
	}
	if o.Store == nil {
		errs = append(errs, errors.New("option Store is required"))
	}
	if o.Deliverer == nil {
		errs = append(errs, errors.New("option Deliverer is required"))
	}
	if o.Router == nil {
		errs = append(errs, errors.New("option Router is required"))
	}
	if o.Concurrency < 0 || o.PerDestination < 0 || o.MaxInFlight < 0 || o.Lease < 0 || o.RetryMin < 0 || o.RetryMax < 0 || o.Expiry < 0 || o.PollInterval < 0 {
		errs = append(errs, errors.New("options Concurrency, PerDestination, MaxInFlight, Lease, RetryMin, RetryMax, Expiry and PollInterval must not be negative"))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("queue: invalid options: %w", errors.Join(errs...))
	}
	if o.Routes == nil {
		o.Routes, _ = o.Router.(Routes)
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: DefaultConnectTimeout}
		o.Dial = d.DialContext
	}
	if o.Hostname == "" {
		o.Hostname = defaultHostname()
	}
	defaultTo(&o.Owner, o.Hostname)
	if o.TLSConfig == nil {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	defaultTo(&o.Concurrency, DefaultConcurrency)
	defaultTo(&o.PerDestination, DefaultPerDestination)
	defaultTo(&o.MaxInFlight, DefaultMaxInFlight)
	defaultTo(&o.Lease, DefaultLease)
	defaultTo(&o.RetryMin, DefaultRetryMin)
	defaultTo(&o.RetryMax, DefaultRetryMax)
	defaultTo(&o.DelayWarning, DefaultDelayWarning)
	defaultTo(&o.Expiry, DefaultExpiry)
	defaultTo(&o.PollInterval, DefaultPollInterval)
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Queue is the durable outbound queue: messages for recipients that
// routing sends to other hosts wait here until a next hop accepts them,
// they fail permanently, or they expire.
//
// How a message goes through the queue:
//
//  1. Enqueue (or the server: Spool at DATA) writes the body to a new
//     file in Dir and fsyncs the file and the directory, or to the
//     shared [Bodies].
//  2. One row per recipient (sender, recipient, transport name, attempt
//     state; no credentials) is added to the [Store] in one transaction.
//     Only then does Enqueue (Commit) return, and the server answer 250:
//     nothing acknowledged is lost.
//  3. The scheduler claims due recipients from the Store, found by its
//     index on the next attempt time, with a lease (at most MaxInFlight
//     at a time: memory follows what is in flight, not the backlog). For
//     each it looks up the next hop and credentials by transport name in
//     the current routing configuration ([Routes]), groups recipients by
//     message and destination (the hop, and for MX delivery the
//     recipient's domain) and hands each group to a worker of that
//     destination (at most PerDestination per destination, Concurrency
//     in all). A worker keeps its connection for the destination's next
//     message.
//  4. The worker finds the hosts: MX records sorted by preference with the
//     domain itself as implicit MX when there are none (RFC 5321 §5.1), a
//     null MX (RFC 7505) fails permanently; then each host's addresses.
//     It connects to them in order until one answers.
//  5. TLS follows the hop's policy: STARTTLS (RFC 3207) when offered
//     (opportunistic, the default), required, or required with a verified
//     certificate; AUTH (RFC 4954, via go-sasl PLAIN) only over TLS.
//  6. MAIL, one RCPT per recipient, DATA streamed from the file. SIZE and
//     SMTPUTF8 are declared when the server offers them; a message that
//     needs SMTPUTF8 fails permanently at a server without it (RFC 6531
//     §3.2).
//  7. Each recipient is settled in the Store: removed on 2xx or a
//     permanent (5xx) failure, and on a temporary failure given its next
//     attempt time: RetryMin doubled per attempt up to RetryMax (RFC 5321
//     §4.5.4.1). Once it has waited DelayWarning the sender gets one
//     "delayed" DSN; after Expiry it bounces. When no recipient of a
//     message is left, its file is removed.
//  8. DSNs (RFC 3464 multipart/report) have the null sender and go to the
//     envelope sender through routing, locally or through the queue. A
//     message with the null sender never gets one (RFC 3461 §6.2, RFC 5321
//     §4.5.5), which ends bounce loops.
//
// Guarantees: a recipient is only removed after the next hop accepted the
// message, or after its DSN is durable; a crash (even SIGKILL) at any
// point repeats at most the attempts in progress (at-least-once; a
// duplicate needs a crash between the next hop's 250 and the settlement).
// A restarted queue with the same Owner takes its leases back at Start;
// another node's crashed claims wait for their lease to end. Start removes
// bodies without recipients (left by a crash before step 2, never
// acknowledged). Admin operations (List, Recipients, Hold, Release,
// RetryNow, Delete) work on the Store, from this process or another; a
// running queue sees another process's changes within PollInterval.
//
// DKIM signing happens when mail is accepted (smtp.Options.DKIMKeys on
// submission), so the queue sends the bytes as accepted; DSNs are not
// signed.
type Queue struct {
	opts    Options
	bodies  Bodies
	log     *slog.Logger
	metrics *queueMetrics

	mu       sync.Mutex
	dests    map[string]*destination // by destination key
	inflight int                     // recipients claimed, not yet settled
	active   int                     // workers running
	started  bool
	closed   bool
	noTLS    *plainHosts // next hops that did not offer STARTTLS
	wake     chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	runCtx   context.Context
	spooling sync.WaitGroup   // bodies written but not yet committed or aborted
	spooled  map[string]int64 // their sizes, by id
}

// New returns a queue on opts. It does not deliver until Start; the
// admin operations work without Start.
func New(opts Options) (*Queue, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	bodies := o.Bodies
	if bodies == nil {
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("queue: dir: %w", err)
		}
		bodies = dirBodies{dir: o.Dir, store: o.Store}
	}
	q := &Queue{
		opts: o, bodies: bodies, log: o.Logger.With("component", "queue"),
		dests: map[string]*destination{}, spooled: map[string]int64{},
		noTLS: newPlainHosts(maxNoTLSHosts, noTLSMemory), wake: make(chan struct{}, 1),
	}
	if q.metrics, err = newQueueMetrics(q, o.Metrics); err != nil {
		return nil, err
	}
	return q, nil
}

// queueState is a count of the queue, for the metrics.
type queueState struct {
	ready, deferred, held int
	oldest                time.Duration
	conns                 map[string]int // workers by destination label
}

// snapshot counts the recipients by state and the workers by destination.
func (q *Queue) snapshot() queueState {
	now := q.opts.Now()
	s := queueState{conns: map[string]int{}}
	c, err := q.opts.Store.CountRecipients(context.Background(), now)
	if err != nil {
		q.log.Error("queue count failed", "err", err)
	}
	s.ready, s.deferred, s.held = c.Ready, c.Deferred, c.Held
	if !c.Oldest.IsZero() {
		s.oldest = max(now.Sub(c.Oldest), 0)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range q.dests {
		if d.workers > 0 {
			s.conns[d.label] += d.workers
		}
	}
	return s
}

// Start recovers the queue after a restart (moves records of the old
// format into the Store, takes back this Owner's leases, removes body
// files without recipients) and starts delivering until Close. Call it
// before any Enqueue of this process: files being written by a concurrent
// Enqueue would look orphaned.
func (q *Queue) Start(ctx context.Context) error {
	q.mu.Lock()
	if q.started || q.closed {
		q.mu.Unlock()
		return errors.New("queue: already started or closed")
	}
	q.started = true
	q.mu.Unlock()
	if err := q.migrateRecords(ctx); err != nil {
		return err
	}
	if err := q.opts.Store.ReleaseLeases(ctx, q.opts.Owner); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if err := q.reclaim(ctx); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	q.mu.Lock()
	q.cancel, q.runCtx = cancel, rctx
	q.mu.Unlock()
	q.wg.Add(1)
	go q.schedule(rctx)
	return nil
}

// Close stops delivering and waits for attempts in progress to end (they
// are cut short; their recipients are retried after a restart or when
// their lease ends).
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	cancel := q.cancel
	q.mu.Unlock()
	q.spooling.Wait()
	if cancel != nil {
		cancel()
	}
	q.wg.Wait()
	if cancel != nil {
		if err := q.opts.Store.ReleaseLeases(context.Background(), q.opts.Owner); err != nil {
			return fmt.Errorf("queue: %w", err)
		}
	}
	return nil
}

// reclaim removes bodies without recipients (and, in Dir, temp files)
// left by a crash before step 2: in Dir any such file (Start precedes
// this process's Enqueue), in shared Bodies those older than
// SharedBodyGrace (other nodes may be about to queue theirs).
func (q *Queue) reclaim(ctx context.Context) error {
	cut := time.Now() // file times are the real clock's, not Options.Now's
	if q.opts.Bodies != nil {
		cut = q.opts.Now().Add(-SharedBodyGrace)
	}
	if err := q.bodies.SweepQueueBodies(ctx, cut); err != nil {
		return fmt.Errorf("queue: reclaim: %w", err)
	}
	return nil
}

// newMessageID returns a fresh id that sorts by creation time.
func newMessageID(now time.Time) string {
	return strconv.FormatInt(now.UnixMilli(), 36) + strings.ToLower(rand.Text()[:10])
}

// Enqueue queues body from sender from ("" for the null sender) for the
// Relay decisions in targets (their Address, Hop and Rule are used),
// durably: when it returns nil, the message survives a crash. It returns
// the message id. Decisions of other kinds are an error.
func (q *Queue) Enqueue(ctx context.Context, from string, targets []routing.Decision, body io.Reader) (string, error) {
	if err := checkTargets(targets); err != nil {
		return "", err
	}
	id, err := q.Spool(ctx, body)
	if err != nil {
		return "", err
	}
	if err := q.Commit(ctx, id, from, false, targets); err != nil {
		return "", err
	}
	return id, nil
}

// checkTargets refuses an empty list and decisions that are not relays.
func checkTargets(targets []routing.Decision) error {
	if len(targets) == 0 {
		return errors.New("queue: no recipients")
	}
	for _, d := range targets {
		if d.Kind != routing.Relay || d.Address == "" {
			return fmt.Errorf("queue: %q is not a relay decision", d.Address)
		}
	}
	return nil
}

// kick wakes the scheduler.
func (q *Queue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// backoff is the wait after the n-th failed attempt (n >= 1).
func (q *Queue) backoff(n int) time.Duration {
	d := q.opts.RetryMin
	for i := 1; i < n && d < q.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, q.opts.RetryMax)
}
