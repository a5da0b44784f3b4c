package queue

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// change is what an attempt does to one record.
type change struct {
	it   *queueItem
	drop bool
	e    queueEntry // the new state when kept
}

// finish records the outcome of an attempt (step 7 of [Queue]): DSNs
// first, then one transaction for every recipient of the job.
func (q *Queue) finish(ctx context.Context, j *outJob, results []rcptResult) {
	now := q.opts.Now()
	changes := make([]change, len(j.items))
	var failed, delayed []dsnRcpt
	for i, it := range j.items {
		r, e := results[i], it.e
		changes[i] = change{it: it, e: e}
		log := q.log.With("queue_id", e.Msg, "rcpt", e.Rcpt, "from", e.From, "reply", r.String(), "remote", r.remote)
		switch {
		case r.ok():
			changes[i].drop = true
			q.metrics.deliveries.WithLabelValues(resultDelivered).Inc()
			log.Info("delivered", "attempts", e.Attempts+1)
		case r.permanent():
			changes[i].drop = true
			failed = append(failed, dsnRcpt{e: e, r: r, action: "failed"})
			q.metrics.deliveries.WithLabelValues(resultBounced).Inc()
			log.Info("delivery failed permanently")
		default:
			e.Attempts++
			e.LastError, e.RemoteMTA = r.String(), r.remote
			e.Next = now.Add(q.backoff(e.Attempts))
			switch age := now.Sub(e.Created); {
			case age >= q.opts.Expiry:
				changes[i].drop = true
				// RFC 3463 X.4.7: delivery time expired.
				failed = append(failed, dsnRcpt{e: e, r: r, action: "failed", expired: true})
				q.metrics.deliveries.WithLabelValues(resultExpired).Inc()
				log.Info("delivery expired", "attempts", e.Attempts)
			case !e.Warned && q.opts.DelayWarning > 0 && age >= q.opts.DelayWarning:
				q.metrics.deliveries.WithLabelValues(resultDeferred).Inc()
				e.Warned = true
				delayed = append(delayed, dsnRcpt{e: e, r: r, action: "delayed"})
				log.Info("delivery deferred", "attempts", e.Attempts, "next", e.Next)
			default:
				q.metrics.deliveries.WithLabelValues(resultDeferred).Inc()
				log.Info("delivery deferred", "attempts", e.Attempts, "next", e.Next)
			}
			changes[i].e = e
		}
	}
	if len(failed)+len(delayed) > 0 {
		if err := q.sendDSN(ctx, j.items[0].e, append(failed, delayed...)); err != nil {
			q.log.Error("DSN failed; recipients kept for the next attempt", "queue_id", j.msg, "err", err)
			for i := range changes {
				c := &changes[i]
				if c.drop && !results[i].ok() || c.e.Warned && !c.it.e.Warned {
					c.drop = false
					c.e = c.it.e
					c.e.Next = now.Add(q.opts.RetryMin)
				}
			}
		}
	}
	q.apply(ctx, j.msg, changes)
}

// apply commits changes to the records, removes the body when no
// recipient is left and updates the scheduler's view.
func (q *Queue) apply(ctx context.Context, msg string, changes []change) {
	empty := false
	err := q.opts.Records.UpdateRecords(context.WithoutCancel(ctx), func(tx store.RecordTx) error {
		for i := range changes {
			// By pointer: the merged entry (c.e = e below) is what the
			// in-memory item takes once the transaction commits.
			c := &changes[i]
			cur, err := tx.Get(Namespace, c.it.key)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted by an admin meanwhile
			}
			if err != nil {
				return err
			}
			if c.drop {
				if err := tx.Delete(Namespace, c.it.key); err != nil {
					return err
				}
				continue
			}
			var e queueEntry
			if err := store.DecodeJSON(cur, &e); err != nil {
				return err
			}
			// Keep what an admin changed meanwhile (a hold).
			e.Attempts, e.LastError, e.RemoteMTA, e.Warned, e.Next = c.e.Attempts, c.e.LastError, c.e.RemoteMTA, c.e.Warned, c.e.Next
			c.e = e
			if err := store.PutJSON(tx, Namespace, c.it.key, e, -1); err != nil {
				return err
			}
		}
		rest, err := tx.List(Namespace, msg+"/", 1)
		if err != nil {
			return err
		}
		empty = len(rest) == 0 || !strings.HasPrefix(rest[0].Key, msg+"/")
		return nil
	})
	q.mu.Lock()
	defer q.mu.Unlock()
	q.gen++
	if err != nil {
		q.log.Error("queue update failed; retrying later", "queue_id", msg, "err", err)
		for _, c := range changes {
			c.it.busy = false
			c.it.e.Next = q.opts.Now().Add(q.opts.RetryMin)
		}
		return
	}
	for _, c := range changes {
		c.it.busy = false
		if c.drop {
			delete(q.entries, c.it.key)
		} else {
			c.it.e = c.e
		}
	}
	if empty {
		if err := os.Remove(q.path(msg)); err != nil && !errors.Is(err, os.ErrNotExist) {
			q.log.Warn("queue body not removed", "queue_id", msg, "err", err)
		}
	}
}

// release drops items whose body is gone: their records go too.
func (q *Queue) release(items []*queueItem) {
	changes := make([]change, len(items))
	for i, it := range items {
		changes[i] = change{it: it, drop: true}
	}
	if len(items) > 0 {
		q.apply(context.Background(), items[0].e.Msg, changes)
	}
}
