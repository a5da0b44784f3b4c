package migration

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailyard/mailyard/store/lease"
)

// A pass holds a lease on its target mailbox in the store, so that two
// processes (two `migrate run`s over overlapping lists, two nodes on one
// PostgreSQL) never copy one mailbox at once: their appends would race
// past each other's checkpoints and duplicate mail. Within one Migrator,
// lockTarget already queues passes; the lease is what other processes
// (and other Migrators on the same store) see. The lease is the store's
// (package store/lease): a holder on this host whose process is gone
// (killed with SIGKILL, say) is taken over at once, so a rerun after a
// crash resumes immediately; a holder on another host is trusted until
// its lease expires. Leases are records in nsLease (namespaces.go),
// keyed by target.

// ErrBusy says that another process is copying the mailbox right now.
var ErrBusy = errors.New("migration: the mailbox is being copied by another process")

// acquireLease takes the lease on target for this pass, or fails with an
// *Error wrapping ErrBusy naming the holder. The pass runs under the
// returned context, which ends if the lease is lost (this process stalled
// past its expiry and another took over); release stops the renewal and
// gives the lease back.
func (m *Migrator) acquireLease(ctx context.Context, target string) (leaseCtx context.Context, release func(), err error) {
	l, err := lease.Acquire(ctx, lease.Options{Records: m.opts.Store, Namespace: nsLease, Key: target, Now: m.now, Logger: m.log})
	if held, ok := errors.AsType[*lease.HeldError](err); ok {
		h := held.Holder
		return nil, nil, &Error{Class: ErrClassConfig, Target: target,
			Err: fmt.Errorf("%w (process %d on %s, since %s)", ErrBusy, h.PID, h.Host, h.Since.UTC().Format(time.RFC3339))}
	}
	if err != nil {
		return nil, nil, &Error{Class: classifyLocal(ctx, err), Target: target, Err: err}
	}
	leaseCtx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-l.Lost():
			cancel(fmt.Errorf("migration: lease on %s lost to another process", target))
		case <-leaseCtx.Done():
		}
	}()
	return leaseCtx, func() {
		l.Release()
		cancel(nil)
	}, nil
}
