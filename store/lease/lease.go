// Package lease gives one holder at a time a named job across every
// process that shares a store: a migration pass copying into one mailbox,
// the scheduled sync of one LDAP connection. A lease is a record in a
// namespace of [store.Records] that its caller owns (the caller declares
// the namespace and documents that it holds leases); so it works on every
// backend, and on store/postgres it is shared by all the nodes of a
// cluster, since a record transaction there locks the row it reads.
//
// # Rules
//
//  1. [Acquire] writes the lease (holder's host, process, a random token,
//     expiry now+TTL) in one record transaction, unless a live holder has
//     it, which is [ErrHeld] naming the holder.
//  2. A holder is live until its lease expires. One exception makes a
//     restart after a crash quick: a holder on this host (same hostname)
//     whose process no longer exists (a SIGKILLed run) is taken over at
//     once. A holder on another host is trusted until expiry, so nodes
//     whose clocks disagree by less than the TTL never hold one lease
//     together.
//  3. While held, the lease is renewed every TTL/4. A renewal that finds
//     another holder's token (this process stalled past the expiry and
//     was taken over), or that cannot write until the expiry has passed,
//     ends the lease: [Lease.Lost] is closed and the holder should stop.
//  4. [Lease.Release] stops the renewal and deletes the record if it is
//     still this holder's, so the next taker need not wait for the
//     expiry.
//
// Records left by holders that died are bounded by the keys their
// callers use (one per mailbox, one per connection) and are overwritten
// by the next taker.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/mailyard/mailyard/store"
)

// DefaultTTL is the lease time when Options.TTL is zero.
const DefaultTTL = 2 * time.Minute

// ErrHeld is matched (errors.Is) by the *HeldError [Acquire] returns
// when a live holder has the lease.
var ErrHeld = errors.New("lease: held by another process")

// Holder is the stored lease: who holds it and until when.
type Holder struct {
	// Token is random per acquisition: it tells this holder's lease
	// from a later one of the same process.
	Token string
	// Host is the holder's hostname, PID its process id.
	Host string
	PID  int
	// Since is when the lease was taken, Expires when it ends unless
	// renewed.
	Since   time.Time
	Expires time.Time
}

// HeldError says who holds a lease [Acquire] could not take.
type HeldError struct {
	Key    string
	Holder Holder
}

// Error implements error.
func (e *HeldError) Error() string {
	return fmt.Sprintf("lease: %s is held by process %d on %s (since %s, until %s)", e.Key, e.Holder.PID, e.Holder.Host,
		e.Holder.Since.UTC().Format(time.RFC3339), e.Holder.Expires.UTC().Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Unwrap() error { return ErrHeld }

// Options name a lease and how it is kept.
type Options struct {
	// Records keeps the lease; shared by every process that competes.
	Records store.Records
	// Namespace and Key name the lease record. The namespace belongs to
	// the caller's package, and holds leases only.
	Namespace, Key string
	// TTL is how long the lease lasts without renewal (default
	// DefaultTTL); it is renewed every TTL/4.
	TTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives failed renewals. Nil discards.
	Logger *slog.Logger
}

// Lease is a held lease; see [Acquire].
type Lease struct {
	o      Options
	holder Holder

	lost     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	loseOnce sync.Once
	relOnce  sync.Once
}

// Acquire takes the lease named by o, or fails with a *HeldError (ErrHeld)
// when a live holder has it; other errors are the store's. On success the
// caller must call Release when done.
func Acquire(ctx context.Context, o Options) (*Lease, error) {
	if o.Records == nil || o.Namespace == "" || o.Key == "" {
		return nil, errors.New("lease: Options.Records, Namespace and Key are required")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	me := Holder{Token: hex.EncodeToString(raw[:]), Host: host, PID: os.Getpid()}
	var held Holder
	var err error
	for range maxRaces {
		err = o.Records.UpdateRecords(ctx, func(tx store.RecordTx) error {
			cur, version, err := get(tx, o)
			if err != nil {
				return err
			}
			now := o.Now()
			if version > 0 && alive(cur, host, now) {
				held = cur
				return ErrHeld
			}
			me.Since, me.Expires = now, now.Add(o.TTL)
			// The version read: a lease another holder wrote after that
			// read (a missing row is not locked by reading it) fails the
			// write instead of being overwritten, and is read again.
			return store.PutJSON(tx, o.Namespace, o.Key, me, version)
		})
		if !errors.Is(err, store.ErrPreconditionFailed) {
			break
		}
	}
	if errors.Is(err, ErrHeld) {
		return nil, &HeldError{Key: o.Key, Holder: held}
	}
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", o.Key, err)
	}
	l := &Lease{o: o, holder: me, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.renew()
	return l, nil
}

// Holder returns the lease as this holder wrote it when it took it.
func (l *Lease) Holder() Holder { return l.holder }

// Lost is closed when the lease was lost (taken over by another holder,
// or not renewed before it expired); not by Release.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release stops the renewal and gives the lease back, if it is still
// this holder's. It runs even if the caller's context ended; calling it
// again does nothing.
func (l *Lease) Release() {
	l.relOnce.Do(func() {
		close(l.stop)
		<-l.done
		err := l.ifOurs(context.Background(), func(tx store.RecordTx, _ Holder) error {
			return tx.Delete(l.o.Namespace, l.o.Key)
		})
		if err != nil {
			l.o.Logger.Warn("lease release failed", "namespace", l.o.Namespace, "key", l.o.Key, "err", err)
		}
	})
}

// maxRaces bounds how often Acquire reads again a lease that another
// holder wrote between its read and its write.
const maxRaces = 10

// errNotOurs ends a renewal that found another holder's token.
var errNotOurs = errors.New("lease: taken over")

// ifOurs runs fn on the lease in a record transaction if it is still
// this holder's, and is errNotOurs otherwise.
func (l *Lease) ifOurs(ctx context.Context, fn func(store.RecordTx, Holder) error) error {
	return l.o.Records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		cur, version, err := get(tx, l.o)
		if err != nil {
			return err
		}
		if version == 0 || cur.Token != l.holder.Token {
			return errNotOurs
		}
		return fn(tx, cur)
	})
}

// renew extends the lease every TTL/4 until Release, or until it is lost.
func (l *Lease) renew() {
	defer close(l.done)
	t := time.NewTicker(l.o.TTL / 4)
	defer t.Stop()
	expires := l.holder.Expires
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.o.TTL/4)
		var next time.Time
		err := l.ifOurs(ctx, func(tx store.RecordTx, cur Holder) error {
			next = l.o.Now().Add(l.o.TTL)
			cur.Expires = next
			return store.PutJSON(tx, l.o.Namespace, l.o.Key, cur, -1)
		})
		cancel()
		switch {
		case err == nil:
			expires = next
		case errors.Is(err, errNotOurs):
			l.o.Logger.Warn("lease lost: taken over by another holder", "namespace", l.o.Namespace, "key", l.o.Key)
			l.loseOnce.Do(func() { close(l.lost) })
			return
		default:
			l.o.Logger.Warn("lease renewal failed", "namespace", l.o.Namespace, "key", l.o.Key, "err", err)
			if !l.o.Now().Before(expires) {
				l.loseOnce.Do(func() { close(l.lost) })
				return
			}
		}
	}
}

// get reads the lease record and its version; version is 0 when there
// is none.
func get(tx store.RecordTx, o Options) (h Holder, version int64, err error) {
	r, err := tx.Get(o.Namespace, o.Key)
	if errors.Is(err, store.ErrNotFound) {
		return Holder{}, 0, nil
	}
	if err != nil {
		return Holder{}, 0, err
	}
	if err := store.DecodeJSON(r, &h); err != nil {
		return Holder{}, 0, fmt.Errorf("lease %s: %w", o.Key, err)
	}
	return h, r.Version, nil
}

// alive reports whether the lease's holder may still be working: its
// lease has not expired and, if it is a process of this host, that
// process exists.
func alive(h Holder, host string, now time.Time) bool {
	if !now.Before(h.Expires) {
		return false
	}
	if h.Host != host || h.PID <= 0 {
		return true
	}
	return processAlive(h.PID)
}
