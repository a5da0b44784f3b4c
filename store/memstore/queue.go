package memstore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/store"
)

var _ queue.Store = (*Store)(nil)

// EnqueueRecipients implements queue.Store.
func (s *Store) EnqueueRecipients(ctx context.Context, rcpts []queue.Recipient) error {
	if err := queue.CheckRecipients(rcpts); err != nil {
		return errorf("%w", err)
	}
	return s.write(ctx, func() error {
		for _, r := range rcpts {
			if _, ok := s.queue[r.Key()]; ok {
				return errorf("recipient %s/%d: %w", r.Msg, r.Index, queue.ErrDuplicate)
			}
		}
		for _, r := range rcpts {
			r.LeaseOwner, r.LeaseUntil = "", time.Time{}
			s.queue[r.Key()] = &r
		}
		return nil
	})
}

// due reports whether r can be claimed at now.
func due(r *queue.Recipient, now time.Time) bool {
	return !r.Held && !r.Next.After(now) && !r.LeaseUntil.After(now)
}

// ClaimRecipients implements queue.Store. memstore scans every recipient:
// it is the reference backend, not one for large backlogs.
func (s *Store) ClaimRecipients(ctx context.Context, owner string, now, until time.Time, limit int) ([]queue.Recipient, error) {
	var out []queue.Recipient
	err := s.write(ctx, func() error {
		var cands []*queue.Recipient
		for _, r := range s.queue {
			if due(r, now) {
				cands = append(cands, r)
			}
		}
		slices.SortFunc(cands, func(a, b *queue.Recipient) int {
			return cmp.Or(a.Next.Compare(b.Next), cmp.Compare(a.Msg, b.Msg), cmp.Compare(a.Index, b.Index))
		})
		if limit > 0 && len(cands) > limit {
			cands = cands[:limit]
		}
		for _, r := range cands {
			r.LeaseOwner, r.LeaseUntil = owner, until
			out = append(out, *r)
		}
		return nil
	})
	return out, err
}

// RenewLeases implements queue.Store.
func (s *Store) RenewLeases(ctx context.Context, owner string, claims []queue.Claim, until time.Time) ([]queue.RecipientKey, error) {
	var out []queue.RecipientKey
	err := s.write(ctx, func() error {
		for _, c := range claims {
			if r := s.queue[c.RecipientKey]; r != nil && r.LeaseOwner == owner && r.LeaseUntil.Equal(c.Until) {
				r.LeaseUntil = until
				out = append(out, c.RecipientKey)
			}
		}
		return nil
	})
	return out, err
}

// SettleRecipients implements queue.Store.
func (s *Store) SettleRecipients(ctx context.Context, owner string, outcomes []queue.Outcome) ([]string, error) {
	var emptied []string
	err := s.write(ctx, func() error {
		touched := map[string]bool{}
		for _, o := range outcomes {
			r := s.queue[o.RecipientKey]
			if r == nil || r.LeaseOwner != owner {
				continue
			}
			touched[o.Msg] = true
			if o.Done {
				delete(s.queue, o.RecipientKey)
				continue
			}
			r.Next, r.Attempts, r.Warned, r.LastError, r.RemoteMTA = o.Next, o.Attempts, o.Warned, o.LastError, o.RemoteMTA
			r.LeaseOwner, r.LeaseUntil = "", time.Time{}
		}
		for msg := range touched {
			if !s.hasMessage(msg) {
				emptied = append(emptied, msg)
			}
		}
		slices.Sort(emptied)
		return nil
	})
	return emptied, err
}

// hasMessage reports whether a recipient of msg is queued. The caller
// holds the lock.
func (s *Store) hasMessage(msg string) bool {
	for k := range s.queue {
		if k.Msg == msg {
			return true
		}
	}
	return false
}

// ReleaseLeases implements queue.Store.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) error {
	return s.write(ctx, func() error {
		for _, r := range s.queue {
			if r.LeaseOwner == owner {
				r.LeaseOwner, r.LeaseUntil = "", time.Time{}
			}
		}
		return nil
	})
}

// NextDue implements queue.Store.
func (s *Store) NextDue(ctx context.Context, now time.Time) (time.Time, bool, error) {
	var next time.Time
	var ok bool
	err := s.read(ctx, func() error {
		for _, r := range s.queue {
			if r.Held || r.LeaseUntil.After(now) {
				continue
			}
			if !ok || r.Next.Before(next) {
				next, ok = r.Next, true
			}
		}
		return nil
	})
	return next, ok, err
}

// sortedQueue returns copies of the recipients that keep, by (Msg,
// Index). The caller holds the lock.
func (s *Store) sortedQueue(keep func(*queue.Recipient) bool) []queue.Recipient {
	out := []queue.Recipient{}
	for _, r := range s.queue {
		if keep(r) {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b queue.Recipient) int {
		return cmp.Or(cmp.Compare(a.Msg, b.Msg), cmp.Compare(a.Index, b.Index))
	})
	return out
}

// ListRecipients implements queue.Store.
func (s *Store) ListRecipients(ctx context.Context, after queue.RecipientKey, limit int) ([]queue.Recipient, error) {
	var out []queue.Recipient
	err := s.read(ctx, func() error {
		out = s.sortedQueue(func(r *queue.Recipient) bool {
			return r.Msg > after.Msg || r.Msg == after.Msg && r.Index > after.Index
		})
		if limit > 0 && len(out) > limit {
			out = out[:limit]
		}
		return nil
	})
	return out, err
}

// MessageRecipients implements queue.Store.
func (s *Store) MessageRecipients(ctx context.Context, msg string) ([]queue.Recipient, error) {
	var out []queue.Recipient
	err := s.read(ctx, func() error {
		out = s.sortedQueue(func(r *queue.Recipient) bool { return r.Msg == msg })
		return nil
	})
	return out, err
}

// UpdateMessage implements queue.Store.
func (s *Store) UpdateMessage(ctx context.Context, msg string, op queue.MessageOp, now time.Time) (int, error) {
	if !queue.ValidOp(op) {
		return 0, errorf("%w: unknown queue operation %d", store.ErrInvalid, op)
	}
	n := 0
	err := s.write(ctx, func() error {
		for k, r := range s.queue {
			if k.Msg != msg {
				continue
			}
			n++
			switch op {
			case queue.OpHold:
				r.Held = true
			case queue.OpRelease:
				r.Held = false
			case queue.OpRetryNow:
				r.Next = now
			case queue.OpDelete:
				delete(s.queue, k)
			}
		}
		return nil
	})
	return n, err
}

// CountRecipients implements queue.Store.
func (s *Store) CountRecipients(ctx context.Context, now time.Time) (queue.Counts, error) {
	var c queue.Counts
	err := s.read(ctx, func() error {
		for _, r := range s.queue {
			switch {
			case r.Held:
				c.Held++
			case !r.Next.After(now) || r.LeaseUntil.After(now):
				c.Ready++
			default:
				c.Deferred++
			}
			if c.Oldest.IsZero() || r.Created.Before(c.Oldest) {
				c.Oldest = r.Created
			}
		}
		return nil
	})
	return c, err
}
