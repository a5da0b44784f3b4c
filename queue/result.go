package queue

import (
	"context"
)

// finish records the outcome of an attempt (step 7 of [Queue]): DSNs
// first, then one settlement for every recipient of the job.
func (q *Queue) finish(ctx context.Context, j *outJob, results []rcptResult) {
	now := q.opts.Now()
	outcomes := make([]Outcome, len(j.items))
	var failed, delayed []dsnRcpt
	for i, r := range j.items {
		res := results[i]
		o := Outcome{RecipientKey: r.Key(), Next: r.Next, Attempts: r.Attempts, Warned: r.Warned, LastError: r.LastError, RemoteMTA: r.RemoteMTA}
		log := q.log.With("queue_id", r.Msg, "rcpt", r.Address, "from", r.From, "reply", res.String(), "remote", res.remote)
		switch {
		case res.ok():
			o.Done = true
			q.metrics.deliveries.WithLabelValues(resultDelivered).Inc()
			log.Info("delivered", "attempts", r.Attempts+1)
		case res.permanent():
			o.Done = true
			failed = append(failed, dsnRcpt{e: r, r: res, action: "failed"})
			q.metrics.deliveries.WithLabelValues(resultBounced).Inc()
			log.Info("delivery failed permanently")
		default:
			o.Attempts++
			o.LastError, o.RemoteMTA = res.String(), res.remote
			o.Next = now.Add(q.backoff(o.Attempts))
			e := r
			e.Attempts = o.Attempts
			switch age := now.Sub(r.Created); {
			case age >= q.opts.Expiry:
				o.Done = true
				// RFC 3463 X.4.7: delivery time expired.
				failed = append(failed, dsnRcpt{e: e, r: res, action: "failed", expired: true})
				q.metrics.deliveries.WithLabelValues(resultExpired).Inc()
				log.Info("delivery expired", "attempts", o.Attempts)
			case !r.Warned && q.opts.DelayWarning > 0 && age >= q.opts.DelayWarning:
				q.metrics.deliveries.WithLabelValues(resultDeferred).Inc()
				o.Warned = true
				delayed = append(delayed, dsnRcpt{e: e, r: res, action: "delayed"})
				log.Info("delivery deferred", "attempts", o.Attempts, "next", o.Next)
			default:
				q.metrics.deliveries.WithLabelValues(resultDeferred).Inc()
				log.Info("delivery deferred", "attempts", o.Attempts, "next", o.Next)
			}
		}
		outcomes[i] = o
	}
	if len(failed)+len(delayed) > 0 {
		if err := q.sendDSN(ctx, j.items[0], append(failed, delayed...)); err != nil {
			q.log.Error("DSN failed; recipients kept for the next attempt", "queue_id", j.msg, "err", err)
			for i := range outcomes {
				o, r := &outcomes[i], j.items[i]
				if o.Done && !results[i].ok() || o.Warned && !r.Warned {
					*o = Outcome{RecipientKey: r.Key(), Next: now.Add(q.opts.RetryMin), Attempts: r.Attempts,
						Warned: r.Warned, LastError: r.LastError, RemoteMTA: r.RemoteMTA}
				}
			}
		}
	}
	q.settle(ctx, j, outcomes)
}

// settle records outcomes in the Store and removes the bodies of the
// messages left without recipients. On failure the leases run out and
// the recipients are attempted again.
func (q *Queue) settle(ctx context.Context, j *outJob, outcomes []Outcome) {
	defer q.done(len(j.items))
	emptied, err := q.opts.Store.SettleRecipients(context.WithoutCancel(ctx), q.opts.Owner, outcomes)
	if err != nil {
		q.log.Error("queue update failed; retrying when the lease ends", "queue_id", j.msg, "err", err)
		return
	}
	for _, msg := range emptied {
		q.removeBody(msg)
	}
}
