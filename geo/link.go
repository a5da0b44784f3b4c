package geo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailyard/mailyard/store"
)

// fetchBatch bounds the records one fetch takes from a peer (and so the
// memory of one batch and the size of one store transaction).
const fetchBatch = 256

// link is the state of one peer.
type link struct {
	cfg Link

	mu     sync.Mutex
	health LinkHealth
	conn   *nats.Conn
}

// LinkHealth is the state of one link, as [Node.Health] reports it.
type LinkHealth struct {
	Peer string
	// Connected: this site holds a connection to the peer's NATS.
	Connected bool
	// Mutual: the peer's site record names this site. False until its
	// record arrived, or when the link is configured on one end only.
	Mutual bool
	// LagEvents is how many of the peer's records are not yet applied;
	// LagSeconds how old the oldest of them is (0 when caught up).
	LagEvents  uint64
	LagSeconds float64
	// Position is the peer's stream sequence applied last.
	Position uint64
	// Received counts the peer's records received since this node
	// started (redeliveries included).
	Received uint64
	// LastEvent is when a record of the peer was last applied.
	LastEvent time.Time
	// LastError is the last failure and when it happened.
	LastError   string
	LastErrorAt time.Time
}

// Green reports whether the link works: connected, mutual, caught up
// within a minute, and no error since the last event.
func (h LinkHealth) Green() bool {
	return h.Connected && h.Mutual && h.LagSeconds < 60 && !h.LastErrorAt.After(h.LastEvent)
}

func (l *link) setError(at time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.health.LastError, l.health.LastErrorAt = err.Error(), at
}

func (l *link) update(fn func(*LinkHealth)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(&l.health)
}

// Health returns the state of every link, by peer.
func (n *Node) Health() []LinkHealth {
	out := make([]LinkHealth, 0, len(n.links))
	for _, l := range n.links {
		l.mu.Lock()
		h := l.health
		h.Peer = l.cfg.Peer
		h.Connected = l.conn != nil && l.conn.IsConnected()
		l.mu.Unlock()
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b LinkHealth) int {
		if a.Peer < b.Peer {
			return -1
		}
		return 1
	})
	return out
}

// linkLoop replicates one peer until ctx ends, reconnecting with
// back-off after any failure.
func (n *Node) linkLoop(ctx context.Context, l *link) {
	defer n.wg.Done()
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		progressed, err := n.replicate(ctx, l)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.setError(n.now(), err)
			n.noteLinkError(ctx, l, err)
			n.log.Debug("geo: link", "peer", l.cfg.Peer, "err", err)
		}
		if progressed {
			backoff = 500 * time.Millisecond
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// noteLinkError turns an authorization failure at the peer into a
// one-ended-link conflict: the peer does not know this site.
func (n *Node) noteLinkError(ctx context.Context, l *link, err error) {
	if !errors.Is(err, nats.ErrAuthorization) {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.raise(ctx, Conflict{Site: l.cfg.Peer, Kind: ConflictOneEndedLink,
		Detail: fmt.Sprintf("%s refuses %s: it has no link to this site", l.cfg.Peer, n.opts.Site)})
}

// replicate connects to the peer, binds this site's durable consumer on
// the peer's stream and applies what it delivers until an error. A new
// consumer starts at the stream's first record: with one record kept per
// entry, that is the full snapshot, and everything after is incremental.
func (n *Node) replicate(ctx context.Context, l *link) (progressed bool, err error) {
	nc, err := n.peerConn(l)
	if err != nil {
		return false, fmt.Errorf("connecting to %s: %w", l.cfg.Peer, err)
	}
	l.mu.Lock()
	l.conn = nc
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.conn = nil
		l.mu.Unlock()
		nc.Close()
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return false, err
	}
	cons, err := n.consumer(ctx, js, l.cfg.Peer)
	if err != nil {
		return false, err
	}
	for ctx.Err() == nil {
		if !nc.IsConnected() {
			return progressed, fmt.Errorf("connection to %s lost", l.cfg.Peer)
		}
		msgs, err := nextBatch(cons)
		if err != nil {
			return progressed, fmt.Errorf("fetch from %s: %w", l.cfg.Peer, err)
		}
		if len(msgs) == 0 {
			l.update(func(h *LinkHealth) { h.LagEvents, h.LagSeconds = 0, 0 })
			continue
		}
		if err := n.applyBatch(ctx, l, msgs); err != nil {
			return progressed, err
		}
		progressed = true
	}
	return progressed, nil
}

// consumer binds this site's durable consumer on peer's stream. A
// consumer that has acknowledged records this site does not hold (its
// store is new, or it keeps none) is deleted and made again, so the view
// is rebuilt from the snapshot rather than missing what was acknowledged.
func (n *Node) consumer(ctx context.Context, js jetstream.JetStream, peer string) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       consumerName(n.opts.Site),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 4 * fetchBatch,
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(cctx, streamName(peer), cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer on %s: %w", streamName(peer), err)
	}
	n.mu.Lock()
	held := n.positions[peer]
	n.mu.Unlock()
	if info := cons.CachedInfo(); held == 0 && info != nil && info.AckFloor.Stream > 0 {
		n.log.Info("geo: reading a peer's stream from the start: its records are not held here", "peer", peer)
		if err := js.DeleteConsumer(cctx, streamName(peer), cfg.Durable); err != nil {
			return nil, fmt.Errorf("resetting consumer on %s: %w", streamName(peer), err)
		}
		if cons, err = js.CreateOrUpdateConsumer(cctx, streamName(peer), cfg); err != nil {
			return nil, fmt.Errorf("consumer on %s: %w", streamName(peer), err)
		}
	}
	return cons, nil
}

// applyBatch validates and applies a batch in one store transaction,
// then acknowledges it: a crash before the acknowledgements redelivers
// records the view already holds, which changes nothing.
func (n *Node) applyBatch(ctx context.Context, l *link, msgs []jetstream.Msg) error {
	peer := l.cfg.Peer
	type item struct {
		rec Record
		seq uint64
	}
	items := make([]item, 0, len(msgs))
	var last *jetstream.MsgMetadata
	n.mu.Lock()
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		last = md
		rec, seq, err := decodeMsg(peer, m)
		if err != nil {
			n.raise(ctx, Conflict{Site: peer, Address: rec.Address, Kind: ConflictInvalidPayload, Detail: err.Error()})
			continue
		}
		items = append(items, item{rec, seq})
	}
	var touched []string
	var changed []entry
	for _, it := range items {
		t, ok := n.view.apply(peer, it.seq, it.rec)
		if ok {
			touched = append(touched, t...)
			changed = append(changed, entry{Seq: it.seq, Rec: it.rec})
		}
		if it.rec.Kind == KindSite && it.rec.Key == peer {
			n.checkMutual(ctx, l, it.rec)
		}
	}
	n.checkAddresses(ctx, touched)
	if last != nil {
		n.positions[peer] = last.Sequence.Stream
	}
	n.mu.Unlock()
	if n.opts.Records != nil && last != nil {
		err := n.opts.Records.UpdateRecords(ctx, func(tx store.RecordTx) error {
			for _, e := range changed {
				if err := store.PutJSON(tx, nsView, peer+"/"+e.Rec.storeKey(), e, -1); err != nil {
					return err
				}
			}
			return tx.Put(nsPosition, peer, []byte(strconv.FormatUint(last.Sequence.Stream, 10)), -1)
		})
		if err != nil {
			return fmt.Errorf("storing records of %s: %w", peer, err)
		}
	}
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			return fmt.Errorf("ack to %s: %w", peer, err)
		}
	}
	now := n.now()
	l.update(func(h *LinkHealth) {
		h.LastEvent = now
		h.Received += uint64(len(msgs))
		if last != nil {
			h.Position = last.Sequence.Stream
			h.LagEvents = last.NumPending
			h.LagSeconds = 0
			if last.NumPending > 0 {
				h.LagSeconds = max(0, now.Sub(last.Timestamp).Seconds())
			}
		}
	})
	return nil
}

// checkMutual marks the link mutual if the peer's site record names this
// site, and raises a one-ended-link conflict if it does not. n.mu held.
func (n *Node) checkMutual(ctx context.Context, l *link, rec Record) {
	mutual := !rec.Deleted && rec.Site != nil && slices.Contains(rec.Site.Peers, n.opts.Site)
	l.update(func(h *LinkHealth) { h.Mutual = mutual })
	if !mutual {
		n.raise(ctx, Conflict{Site: l.cfg.Peer, Kind: ConflictOneEndedLink,
			Detail: fmt.Sprintf("%s does not list %s among its links", l.cfg.Peer, n.opts.Site)})
	}
}

// decodeMsg decodes and validates a record of site's stream and returns
// it with its stream sequence. The subject must be the record's own, so
// a record cannot pose as another entry.
func decodeMsg(site string, m jetstream.Msg) (Record, uint64, error) {
	md, err := m.Metadata()
	if err != nil {
		return Record{}, 0, fmt.Errorf("%w: no metadata: %v", ErrInvalidRecord, err)
	}
	var rec Record
	if err := json.Unmarshal(m.Data(), &rec); err != nil {
		return Record{}, 0, fmt.Errorf("%w: seq %d: %v", ErrInvalidRecord, md.Sequence.Stream, err)
	}
	if err := rec.Validate(); err != nil {
		return rec, 0, err
	}
	if m.Subject() != recordSubject(site, rec) {
		return rec, 0, fmt.Errorf("%w: %s %q arrived on subject %s", ErrInvalidRecord, rec.Kind, rec.Key, m.Subject())
	}
	if rec.Kind == KindSite && rec.Key != site {
		return rec, 0, fmt.Errorf("%w: site %s publishes a record for site %s", ErrInvalidRecord, site, rec.Key)
	}
	return rec, md.Sequence.Stream, nil
}

// nextBatch waits up to a second for the next record, then takes what
// else is there without waiting, up to fetchBatch: a record is applied as
// soon as it arrives, and a backlog in batches.
func nextBatch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	first, err := cons.Next(jetstream.FetchMaxWait(time.Second))
	if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	msgs := []jetstream.Msg{first}
	batch, err := cons.FetchNoWait(fetchBatch - 1)
	if err != nil {
		return msgs, nil // the rest comes with the next call
	}
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, nil
}
