package migration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mailyard/mailyard/store"
)

// A pass holds a lease on its target mailbox in the store, so that two
// processes (two `migrate run`s over overlapping lists, say) never copy
// one mailbox at once: their appends would race past each other's
// checkpoints and duplicate mail. Within one Migrator, lockTarget already
// queues passes; the lease is what other processes (and other Migrators
// on the same store) see.
//
// A lease names its holder's host and process and expires unless renewed.
// A holder on this host whose process is gone (killed with SIGKILL, say)
// is taken over at once, so a rerun after a crash resumes immediately; a
// holder on another host is trusted until its lease expires. Leases are
// records in nsLease (namespaces.go), keyed by target.

// leaseTTL is how long a lease lasts without renewal; it is renewed every
// leaseTTL/4 while the pass runs.
const leaseTTL = 2 * time.Minute

// ErrBusy says that another process is copying the mailbox right now.
var ErrBusy = errors.New("migration: the mailbox is being copied by another process")

type leaseRecord struct {
	Token   string
	Host    string
	PID     int
	Since   time.Time
	Expires time.Time
}

// holderAlive reports whether the lease's holder may still be copying.
func holderAlive(l leaseRecord, host string, now time.Time) bool {
	if !now.Before(l.Expires) {
		return false
	}
	if l.Host != host || l.PID <= 0 {
		return true
	}
	return processAlive(l.PID)
}

// acquireLease takes the lease on target for this pass, or fails with an
// *Error wrapping ErrBusy naming the holder. release stops the renewal and
// gives the lease back.
func (m *Migrator) acquireLease(ctx context.Context, target string) (release func(), err error) {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, &Error{Class: ErrClassTarget, Target: target, Err: err}
	}
	token := hex.EncodeToString(raw[:])
	host, _ := os.Hostname()
	pid := os.Getpid()
	var holder leaseRecord
	put := func(tx store.RecordTx, now time.Time) error {
		return txPutJSON(tx, nsLease, target, leaseRecord{Token: token, Host: host, PID: pid, Since: now, Expires: now.Add(leaseTTL)})
	}
	err = m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		var cur leaseRecord
		found, err := txGetJSON(tx, nsLease, target, &cur)
		if err != nil {
			return err
		}
		now := m.now()
		if found && holderAlive(cur, host, now) {
			holder = cur
			return ErrBusy
		}
		return put(tx, now)
	})
	if errors.Is(err, ErrBusy) {
		return nil, &Error{Class: ErrClassConfig, Target: target,
			Err: fmt.Errorf("%w (process %d on %s, since %s)", ErrBusy, holder.PID, holder.Host, holder.Since.UTC().Format(time.RFC3339))}
	}
	if err != nil {
		return nil, &Error{Class: classifyLocal(ctx, err), Target: target, Err: err}
	}

	// ifOurs runs fn on the lease if it is still this pass's (one taken
	// over after it expired, with this process stalled, is the other
	// holder's now), even after ctx is canceled.
	ifOurs := func(fn func(store.RecordTx, leaseRecord) error) error {
		return m.opts.Store.UpdateRecords(context.WithoutCancel(ctx), func(tx store.RecordTx) error {
			var cur leaseRecord
			if found, err := txGetJSON(tx, nsLease, target, &cur); err != nil || !found || cur.Token != token {
				return err
			}
			return fn(tx, cur)
		})
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(leaseTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			err := ifOurs(func(tx store.RecordTx, cur leaseRecord) error {
				cur.Expires = m.now().Add(leaseTTL)
				return txPutJSON(tx, nsLease, target, cur)
			})
			if err != nil {
				m.log.Warn("migration lease renewal failed", "target", target, "err", err)
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		err := ifOurs(func(tx store.RecordTx, _ leaseRecord) error {
			return tx.Delete(nsLease, target)
		})
		if err != nil {
			m.log.Warn("migration lease release failed", "target", target, "err", err)
		}
	}, nil
}
