package geo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// publishLoop reconciles the Source with the stream at start, on every
// Notify and every ReconcileInterval until ctx ends.
func (n *Node) publishLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.opts.ReconcileInterval)
	defer t.Stop()
	for {
		if err := n.reconcile(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("geo: reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.notify:
		}
	}
}

// siteRecord is this site's own record.
func (n *Node) siteRecord() Record {
	peers := make([]string, 0, len(n.opts.Links))
	for _, l := range n.opts.Links {
		peers = append(peers, l.Peer)
	}
	return Record{Kind: KindSite, Key: n.opts.Site, Site: &SiteInfo{Name: n.opts.Name, MX: n.opts.MX, Peers: peers}}
}

// reconcile publishes every entry whose content differs from what was
// published, and a tombstone for every published entry that is gone.
// Because it compares the whole Source each time, no change can be
// missed, whoever made it; then it checks every address for conflicts,
// so a cleared conflict whose cause remains comes back.
func (n *Node) reconcile(ctx context.Context) error {
	read := n.reads.Add(1)
	recs := []Record{n.siteRecord()}
	if n.opts.Source != nil {
		got, err := n.opts.Source.Records(ctx)
		if err != nil {
			return err
		}
		recs = append(recs, got...)
	}
	present := make(map[string]bool, len(recs))
	for _, r := range recs {
		r = r.normalize()
		if err := r.Validate(); err != nil {
			n.log.Warn("geo: not publishing an invalid local entry", "err", err)
			continue
		}
		present[r.storeKey()] = true
		if err := n.publishIfChanged(ctx, r, read); err != nil {
			return err
		}
	}
	n.mu.Lock()
	var gone []Record
	for k, e := range n.view.sites[n.opts.Site] {
		if !present[k] && !e.Rec.Deleted {
			gone = append(gone, Record{Kind: e.Rec.Kind, Key: e.Rec.Key, Deleted: true})
		}
	}
	n.mu.Unlock()
	for _, r := range gone {
		if err := n.publishIfChanged(ctx, r, read); err != nil {
			return err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	addrs := make([]string, 0, len(n.view.addrs))
	for a := range n.view.addrs {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	n.checkAddresses(ctx, addrs)
	n.checkLinks(ctx)
	return nil
}

// checkLinks checks every link against the peer's site record held.
// n.mu must be held.
func (n *Node) checkLinks(ctx context.Context) {
	for _, l := range n.links {
		if e, ok := n.view.get(l.cfg.Peer, KindSite, l.cfg.Peer); ok {
			n.checkMutual(ctx, l, e.Rec)
		}
	}
}

// publishIfChanged publishes r unless its content is what was published
// last, and applies it to the view at the sequence the stream gave it.
// read numbers the read of the Source r came from: a record read before
// the one published last for the entry is stale and dropped, so a
// listing that was slower than a single entry's notice (the two run
// concurrently) cannot overwrite the newer state with the older one.
func (n *Node) publishIfChanged(ctx context.Context, r Record, read uint64) error {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	k := r.storeKey()
	if read < n.basis[k] {
		return nil
	}
	d := r.digest()
	n.mu.Lock()
	same := n.published[r.storeKey()] == d
	n.mu.Unlock()
	if same {
		n.basis[k] = read
		return nil
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	ack, err := n.js.Publish(cctx, recordSubject(n.opts.Site, r), data)
	cancel()
	if err != nil {
		return fmt.Errorf("geo: publishing %s: %w", r.storeKey(), err)
	}
	n.basis[k] = read
	n.mu.Lock()
	defer n.mu.Unlock()
	n.published[r.storeKey()] = d
	if t, ok := n.view.apply(n.opts.Site, ack.Sequence, r); ok {
		n.checkAddresses(ctx, t)
	}
	return nil
}
