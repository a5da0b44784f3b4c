package migration

import (
	"context"
	"slices"
	"sync"

	"github.com/mailyard/mailyard/store"
)

// maxPendingCheckpoints bounds the appends a checkpointer holds.
const maxPendingCheckpoints = 256

// checkpointer writes a folder's checkpoints behind the appends: every
// durable append is queued, and one record transaction writes all queued
// message records with the folder record as of the latest of them. The
// next append proceeds meanwhile, so the store's group commit serves the
// append and the checkpoint together instead of two fsyncs per message.
// The appends not yet checkpointed when the process dies are the group's
// latest, above every recorded TargetUIDNext, which is where reconcile
// looks for them.
type checkpointer struct {
	ctx context.Context
	ps  *passState
	w   *folderWork

	mu      sync.Mutex
	cond    *sync.Cond
	pending []pendingCheckpoint
	cp      folderRecord
	err     error
	closed  bool
	done    chan struct{}
}

type pendingCheckpoint struct {
	key string
	rec msgRecord
}

func newCheckpointer(ctx context.Context, ps *passState, w *folderWork) *checkpointer {
	c := &checkpointer{ctx: ctx, ps: ps, w: w, done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	go c.run()
	return c
}

// add queues appended messages and the folder record that covers them;
// it waits while the queue is full and returns an earlier write's error.
func (c *checkpointer) add(recs []pendingCheckpoint, cp folderRecord) error {
	cp.TooLarge = slices.Clone(cp.TooLarge)
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) >= maxPendingCheckpoints && c.err == nil {
		c.cond.Wait()
	}
	if c.err != nil {
		return c.err
	}
	c.pending = append(c.pending, recs...)
	c.cp = cp
	c.cond.Broadcast()
	return nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	st := c.ps.m.opts.Store
	for {
		c.mu.Lock()
		for len(c.pending) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.pending) == 0 || c.err != nil {
			c.mu.Unlock()
			return
		}
		batch, cp := c.pending, c.cp
		c.pending = nil
		c.cond.Broadcast()
		c.mu.Unlock()
		err := st.UpdateRecords(c.ctx, func(tx store.RecordTx) error {
			for _, p := range batch {
				if err := txPutJSON(tx, nsMsg, p.key, p.rec); err != nil {
					return err
				}
			}
			return txPutJSON(tx, nsFolder, c.w.key, cp)
		})
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		var bytes int64
		for _, p := range batch {
			bytes += p.rec.Size
		}
		c.ps.doneMsgs.Add(int64(len(batch)))
		c.ps.doneBytes.Add(bytes)
		c.ps.report(c.w.f.Name)
	}
}

// close writes what is queued and stops; it returns the first write
// error.
func (c *checkpointer) close() error {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
