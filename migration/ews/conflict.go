package ews

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mailyard/mailyard/store"
)

// Side names one side of a two-way sync.
type Side string

// Sides.
const (
	SideExchange Side = "exchange"
	SideMailyard Side = "mailyard"
)

// Conflict is one entry of a target's conflict log: an event changed on
// both sides since the last sync (or changed on one and deleted on the
// other), which side won, and the losing version.
type Conflict struct {
	// Time is when the sync decided it.
	Time   time.Time
	Target string
	// UID and Subject name the event.
	UID     string
	Subject string `json:",omitempty"`
	// Reason says what happened on each side.
	Reason string
	// Winner is the side whose version both sides now hold.
	Winner Side
	// ExchangeModified and MailyardModified are the modification times
	// compared (zero where that side deleted the event).
	ExchangeModified time.Time `json:",omitzero"`
	MailyardModified time.Time `json:",omitzero"`
	// Loser is the losing version as iCalendar (RFC 5545); empty when
	// the loser is a deletion.
	Loser []byte `json:",omitempty"`
}

// conflictKey orders a target's conflicts by time.
func (w *worker) conflictKey(c Conflict) string {
	return w.key(fmt.Sprintf("%020d", c.Time.UnixNano()), c.UID)
}

// logConflict appends c to the target's conflict log, dropping the
// oldest entries beyond MaxConflicts.
func (w *worker) logConflict(ctx context.Context, c Conflict) error {
	c.Time, c.Target = w.s.opts.Now().UTC(), w.p.job.Target
	prefix := w.key()
	w.s.opts.Logger.Info("ews sync: conflict", "target", c.Target, "uid", c.UID, "reason", c.Reason, "winner", c.Winner)
	return w.s.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		// Listed before the new entry is put (a backend's List need not
		// see the transaction's own writes); a few entries beyond the
		// limit are read so that a lowered MaxConflicts trims the log
		// down over the next conflicts.
		have, err := tx.List(nsConflict, prefix+keySep, w.s.opts.MaxConflicts+64)
		if err != nil {
			return err
		}
		n := 0
		for _, r := range have {
			if strings.HasPrefix(r.Key, prefix+keySep) {
				n++
			}
		}
		for i := 0; n+1 > w.s.opts.MaxConflicts; i++ {
			if err := tx.Delete(nsConflict, have[i].Key); err != nil {
				return err
			}
			n--
		}
		return store.PutJSON(tx, nsConflict, w.conflictKey(c), c, -1)
	})
}

// Conflicts returns target's conflict log, oldest first, at most limit
// entries (all when limit <= 0) after the first skip.
func (s *Syncer) Conflicts(ctx context.Context, target string, skip, limit int) ([]Conflict, error) {
	return ReadConflicts(ctx, s.opts.Store, target, skip, limit)
}

// ReadConflicts reads target's conflict log from st as
// [Syncer.Conflicts] does, for a tool that runs no syncer.
func ReadConflicts(ctx context.Context, st store.Records, target string, skip, limit int) ([]Conflict, error) {
	prefix := target + keySep
	var out []Conflict
	after := prefix
	for {
		page, err := st.ListRecords(ctx, nsConflict, after, 200)
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			if !strings.HasPrefix(r.Key, prefix) {
				return out, nil
			}
			after = r.Key
			if skip > 0 {
				skip--
				continue
			}
			var c Conflict
			if err := store.DecodeJSON(r, &c); err != nil {
				return nil, err
			}
			out = append(out, c)
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
		if len(page) < 200 {
			return out, nil
		}
	}
}
