package migration

import (
	"context"
	"errors"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Instant collection. A continuous collector ([Migrator.Collect]) whose
// source announces IDLE (RFC 2177, or IMAP4rev2 where it is part of the
// base protocol, RFC 9051 §6.3.13) keeps one more connection to it, with
// INBOX EXAMINEd and an IDLE command running:
//
//  1. Dial (outside MaxConnsPerHost, see dialOptions.noSlot), EXAMINE
//     INBOX, and ask for an INBOX pass at once: mail that arrived while
//     there was no IDLE connection is caught up.
//  2. IDLE until the source announces a new message count (EXISTS), or
//     idleRestart passes: RFC 2177 §3 asks clients to end IDLE and issue
//     it again at least every 29 minutes, as servers log idle clients
//     off after 30. On EXISTS, ask for an INBOX pass.
//  3. DONE, and IDLE again. A failed connection is dialled again after a
//     back-off from RetryMin to RetryMax (reset once IDLE ran).
//
// An INBOX pass copies only the folders that feed the target's INBOX (the
// group of source INBOX, so that a target mailbox is still filled by one
// copier at a time), and the other folders keep their schedule: a full
// pass every interval. A source without IDLE is polled as before.

// idleRestart bounds one IDLE command (under RFC 2177's 29 minutes).
const idleRestart = 25 * time.Minute

// errNoIdle: the source does not announce IDLE.
var errNoIdle = errors.New("source does not announce IDLE")

// watchInbox keeps an IDLE connection on job's source INBOX until ctx is
// done, and sends on notify (without blocking; notify has room for one)
// whenever the INBOX may have new mail. It returns at once for a source
// without IDLE.
func (m *Migrator) watchInbox(ctx context.Context, job Job, notify chan<- struct{}) {
	var backoff time.Duration
	for {
		idled, err := m.idleOnce(ctx, job, notify)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errNoIdle) {
			m.log.Info("migration: source has no IDLE; polling only", "target", job.Target, "source", job.Source.Host)
			return
		}
		if idled || backoff == 0 {
			backoff = m.opts.RetryMin
		} else {
			backoff = min(2*backoff, m.opts.RetryMax)
		}
		m.log.Warn("migration: IDLE connection failed; reconnecting", "target", job.Target, "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// idleOnce is steps 1-3 on one connection; idled reports whether an IDLE
// command ran. It returns nil only when ctx is done.
func (m *Migrator) idleOnce(ctx context.Context, job Job, notify chan<- struct{}) (idled bool, err error) {
	events := make(chan struct{}, 1)
	signal := func(ch chan<- struct{}) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	sc, err := m.dialWith(ctx, job, dialOptions{noSlot: true, unilateral: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				signal(events)
			}
		},
	}})
	if err != nil {
		return false, err
	}
	defer sc.Close()
	if caps := sc.c.Caps(); !caps.Has(imap.CapIdle) && !caps.Has(imap.CapIMAP4rev2) {
		return false, errNoIdle
	}
	if _, err := sc.c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return false, err
	}
	// Whatever EXAMINE announced is caught up by this pass.
	select {
	case <-events:
	default:
	}
	signal(notify)
	for {
		// The reads while idling wait up to idleRestart for data; the
		// deadline is taken when a read starts, so it is set before IDLE.
		sc.conn.timeout.Store(int64(idleRestart + m.opts.CommandTimeout))
		cmd, err := sc.c.Idle()
		if err != nil {
			return idled, err
		}
		idled = true
		t := time.NewTimer(idleRestart)
		fired := false
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-events:
			fired = true
		}
		t.Stop()
		cerr := cmd.Close()
		sc.conn.timeout.Store(int64(m.opts.CommandTimeout))
		werr := cmd.Wait()
		if fired {
			signal(notify)
		}
		if ctx.Err() != nil {
			return idled, nil
		}
		if err := errors.Join(cerr, werr); err != nil {
			return idled, err
		}
	}
}
