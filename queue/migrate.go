package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

// oldEntry is a recipient as releases before package queue stored it:
// one JSON record per recipient in store.Records, namespace [Namespace],
// key "MSGID/NNNN", with the next hop and its credentials frozen in it.
type oldEntry struct {
	Msg       string    `json:"msg"`
	From      string    `json:"from"`
	Rcpt      string    `json:"rcpt"`
	Hop       oldHop    `json:"hop"`
	UTF8      bool      `json:"utf8,omitempty"`
	Size      int64     `json:"size"`
	Created   time.Time `json:"created"`
	Next      time.Time `json:"next"`
	Attempts  int       `json:"attempts,omitempty"`
	Held      bool      `json:"held,omitempty"`
	Warned    bool      `json:"warned,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	RemoteMTA string    `json:"remote_mta,omitempty"`
}

// oldHop is the frozen hop of an oldEntry. Its user and pass fields are
// not read: the credentials come from the routing configuration now.
type oldHop struct {
	NextHop string            `json:"next_hop,omitempty"`
	TLS     routing.TLSPolicy `json:"tls"`
	Route   string            `json:"route,omitempty"`
}

// migratePage is how many old records one step moves.
const migratePage = 1000

// migrateRecords moves recipients stored in the old format (Options.Records)
// into the Store, a page at a time: each page is added to the Store, then
// its records are deleted. A crash in between leaves records whose
// recipients are already in the Store; the next run finds them there
// (ErrDuplicate) and only deletes the records. Nothing acknowledged is
// lost, and a recipient is never queued twice.
func (q *Queue) migrateRecords(ctx context.Context) error {
	if q.opts.Records == nil {
		return nil
	}
	moved := 0
	for {
		recs, err := q.opts.Records.ListRecords(ctx, Namespace, "", migratePage)
		if err != nil {
			return fmt.Errorf("queue: migrate old records: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		if err := q.migratePage(ctx, recs); err != nil {
			return err
		}
		moved += len(recs)
	}
	if moved > 0 {
		q.log.Info("queue records of the old format moved to the queue store", "recipients", moved)
	}
	return nil
}

// migratePage moves one page of old records.
func (q *Queue) migratePage(ctx context.Context, recs []store.Record) error {
	var rcpts []Recipient
	for _, r := range recs {
		rcpt, err := fromOldRecord(r)
		if err != nil {
			// Unreadable before, too (the old queue skipped it): kept
			// out of the Store, logged, and removed with the page.
			q.log.Error("unreadable old queue record dropped", "key", r.Key, "err", err)
			continue
		}
		rcpts = append(rcpts, rcpt)
	}
	if err := q.enqueueMigrated(ctx, rcpts); err != nil {
		return err
	}
	err := q.opts.Records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		for _, r := range recs {
			if err := tx.Delete(Namespace, r.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: migrate old records: %w", err)
	}
	return nil
}

// enqueueMigrated adds rcpts in one call, or one by one when some are in
// the Store already (a run interrupted after adding them).
func (q *Queue) enqueueMigrated(ctx context.Context, rcpts []Recipient) error {
	err := q.opts.Store.EnqueueRecipients(ctx, rcpts)
	if !errors.Is(err, ErrDuplicate) {
		if err != nil {
			return fmt.Errorf("queue: migrate old records: %w", err)
		}
		return nil
	}
	for _, r := range rcpts {
		if err := q.opts.Store.EnqueueRecipients(ctx, []Recipient{r}); err != nil && !errors.Is(err, ErrDuplicate) {
			return fmt.Errorf("queue: migrate old records: %w", err)
		}
	}
	return nil
}

// fromOldRecord converts one old record.
func fromOldRecord(r store.Record) (Recipient, error) {
	var e oldEntry
	if err := store.DecodeJSON(r, &e); err != nil {
		return Recipient{}, err
	}
	msg, idx, ok := strings.Cut(r.Key, "/")
	n, err := strconv.Atoi(idx)
	if !ok || err != nil || !validID(msg) || e.Rcpt == "" {
		return Recipient{}, fmt.Errorf("bad key or recipient")
	}
	return Recipient{
		Msg: msg, Index: n, From: e.From, Address: e.Rcpt, Transport: e.Hop.Route,
		NextHop: e.Hop.NextHop, TLS: e.Hop.TLS, UTF8: e.UTF8, Size: e.Size,
		Created: e.Created, Next: e.Next, Attempts: e.Attempts, Held: e.Held, Warned: e.Warned,
		LastError: e.LastError, RemoteMTA: e.RemoteMTA,
	}, nil
}
