package geo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailyard/mailyard/store"
)

// Source lists the local directory entries a site publishes. Records
// must return every entry each time (the node compares them with what it
// published and sends only the differences), and never secrets.
// [BuiltinSource] is the implementation over directory/builtin.
type Source interface {
	Records(ctx context.Context) ([]Record, error)
}

// Options configure a [Node].
type Options struct {
	// Site is this site's stable ID (^[a-z0-9_-]+$); Name its display
	// name; MX its host:port for mail from the peers.
	Site, Name, MX string
	// Links are the peers. Every link must be configured on both ends.
	Links []Link
	// TLS is the site's identity. Required with the embedded server;
	// with External, used for the connections if set.
	TLS *TLS
	// DataDir holds the embedded server's JetStream store (DataDir/nats).
	DataDir string
	// Listen is the embedded server's host:port ("127.0.0.1:0" if
	// empty: an ephemeral loopback port, see [Node.URL]).
	Listen string
	// External, if set, is the URL of an external NATS with JetStream
	// that holds this site's stream; no server is embedded, and that
	// NATS's own configuration grants the peers their permissions.
	External string
	// Source lists the entries to publish (nil: only the site record).
	Source Source
	// Records keeps the replicated view, its positions and the conflicts
	// durably (nil: in memory, and every start reads the peers' streams
	// from the beginning again).
	Records store.Records
	// FreeBusy answers the peers' free/busy requests (nil: none).
	FreeBusy FreeBusyResponder
	// ReconcileInterval is how often the whole Source is compared with
	// what was published (default 30 s); [Node.Notify] starts one at once.
	ReconcileInterval time.Duration
	// Logger receives the node's log (nil: discarded).
	Logger *slog.Logger
	// Metrics receives link health as gauges (nil: none).
	Metrics Metrics
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Node is one site of a distributed installation: it publishes the
// site's directory, replicates its peers', answers and asks free/busy,
// and keeps the conflicts. Its methods are safe for concurrent use.
type Node struct {
	opts   Options
	log    *slog.Logger
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	links  map[string]*link
	notify chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// reads numbers the reads of the Source (a listing or one entry);
	// pubMu serialises publishing, and basis holds, per entry, the read
	// its published state came from (see publishIfChanged).
	reads atomic.Uint64
	pubMu sync.Mutex
	basis map[string]uint64

	mu        sync.Mutex
	view      *view
	conflicts map[string]Conflict
	published map[string]string // storeKey -> digest of what this site published
	positions map[string]uint64 // peer -> its stream sequence applied last (stored with the view)
	fbSub     *nats.Subscription
}

func (o *Options) check() error {
	if err := CheckSiteID(o.Site); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, l := range o.Links {
		if err := l.check(o.Site); err != nil {
			return err
		}
		if seen[l.Peer] {
			return fmt.Errorf("%w: two links to %q", ErrConfig, l.Peer)
		}
		seen[l.Peer] = true
	}
	if o.External == "" {
		if o.TLS == nil {
			return fmt.Errorf("%w: the embedded server needs the site's TLS identity", ErrConfig)
		}
		if o.DataDir == "" {
			return fmt.Errorf("%w: the embedded server needs a data directory", ErrConfig)
		}
	}
	return nil
}

// Start validates the options, starts the embedded server (unless
// External), loads the stored view and starts publishing and
// replicating. Close stops it.
func Start(ctx context.Context, opts Options) (*Node, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if opts.ReconcileInterval <= 0 {
		opts.ReconcileInterval = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := &Node{
		opts: opts, log: opts.Logger, links: map[string]*link{}, notify: make(chan struct{}, 1),
		view: newView(), conflicts: map[string]Conflict{}, published: map[string]string{}, basis: map[string]uint64{}, positions: map[string]uint64{},
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	for _, l := range opts.Links {
		n.links[l.Peer] = &link{cfg: l}
	}
	if err := n.loadState(ctx); err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.checkLinks(ctx) // from the stored site records, so the stored view serves at once
	n.mu.Unlock()
	if err := n.connectLocal(); err != nil {
		n.shutdownServer()
		return nil, err
	}
	if err := n.setup(ctx); err != nil {
		n.nc.Close()
		n.shutdownServer()
		return nil, err
	}
	if err := n.declareMetrics(); err != nil {
		n.Close()
		return nil, err
	}
	run, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(1 + len(n.links))
	go n.publishLoop(run)
	for _, l := range n.links {
		go n.linkLoop(run, l)
	}
	return n, nil
}

// setup creates the stream, reads back what this site published and
// subscribes to free/busy requests.
func (n *Node) setup(ctx context.Context) error {
	js, err := jetstream.New(n.nc)
	if err != nil {
		return fmt.Errorf("geo: jetstream: %w", err)
	}
	n.js = js
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err = js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{
		Name:              streamName(n.opts.Site),
		Subjects:          []string{dirSubjects(n.opts.Site)},
		Storage:           jetstream.FileStorage,
		MaxMsgsPerSubject: 1, // the latest state of each entry: a new peer's snapshot
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("geo: stream %s: %w", streamName(n.opts.Site), err)
	}
	if err := n.readOwn(ctx); err != nil {
		return err
	}
	sub, err := n.nc.Subscribe(fbSubject(n.opts.Site, "*"), n.answerFreeBusy)
	if err != nil {
		return fmt.Errorf("geo: free/busy subscription: %w", err)
	}
	n.fbSub = sub
	// The subscription is registered with the server once it has seen
	// it: flush, so a request made as soon as Start returns finds its
	// responder instead of "no responders".
	if err := n.nc.FlushTimeout(callTimeout); err != nil {
		return fmt.Errorf("geo: free/busy subscription: %w", err)
	}
	return nil
}

// readOwn loads this site's published records from its own stream, so
// a restart publishes only what changed meanwhile.
func (n *Node) readOwn(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c, err := n.js.OrderedConsumer(cctx, streamName(n.opts.Site), jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("geo: reading own stream: %w", err)
	}
	info, err := c.Info(cctx)
	if err != nil {
		return fmt.Errorf("geo: reading own stream: %w", err)
	}
	left := info.NumPending
	for left > 0 {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("geo: reading own stream: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			rec, seq, err := decodeMsg(n.opts.Site, m)
			if err != nil {
				continue // our own stream: cannot be invalid unless edited by hand
			}
			n.mu.Lock()
			n.view.apply(n.opts.Site, seq, rec)
			n.published[rec.storeKey()] = rec.digest()
			n.mu.Unlock()
			md, _ := m.Metadata()
			if md != nil {
				left = md.NumPending
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("geo: reading own stream: %w", err)
		}
		if got == 0 {
			return fmt.Errorf("geo: reading own stream: %d messages announced but none came", left)
		}
	}
	return nil
}

// URL returns the client URL of the embedded server (empty with
// External): what the peers' links name as Endpoints.
func (n *Node) URL() string {
	if n.srv == nil {
		return ""
	}
	return n.srv.ClientURL()
}

// Site returns this site's ID.
func (n *Node) Site() string { return n.opts.Site }

// Notify asks for a reconcile now, after a change to the directory; the
// periodic reconcile catches changes nobody announced. When the changed
// entries are known, [Node.Changed] publishes them without listing the
// whole directory.
func (n *Node) Notify() {
	select {
	case n.notify <- struct{}{}:
	default:
	}
}

// Close stops replication and the embedded server. The peers' durable
// consumers keep this site's position.
func (n *Node) Close() error {
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	if n.nc != nil {
		n.nc.Close()
	}
	n.shutdownServer()
	return nil
}

func (n *Node) shutdownServer() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

func (n *Node) now() time.Time { return n.opts.Now() }

// linkFor returns the link to peer, nil if none is configured.
func (n *Node) linkFor(peer string) *link { return n.links[peer] }

// storeDir is the embedded server's JetStream directory.
func (n *Node) storeDir() string { return filepath.Join(n.opts.DataDir, "nats") }
