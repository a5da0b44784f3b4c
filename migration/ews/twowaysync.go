package ews

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-ical"

	"github.com/mailyard/mailyard/store"
)

// syncState is a target's calendar sync checkpoint (nsSync).
type syncState struct {
	// SyncState is the calendar's SyncFolderItems state after the last
	// page whose changes are all applied in Mailyard.
	SyncState string
	// Collection and Token are the store calendar and its sync token
	// after the last change pushed to Exchange (RFC 6578).
	Collection int64
	Token      uint64
	Updated    time.Time
}

// link is one event known on both sides (nsLink): the Exchange item and
// the store object, with the ChangeKey and the ETag each had when the
// sync last wrote or read it. A change whose ChangeKey or ETag equals
// the link's is the sync's own write coming back, and is not synced
// again: that is what keeps an edit from looping.
type link struct {
	Name      string
	ItemID    string
	ChangeKey string
	ETag      string
	// Pending marks a series whose exceptions are being written to
	// Exchange (its master is, its modified and deleted occurrences not
	// all yet): the pull leaves the item alone and the next push writes
	// the whole series again, over whatever ChangeKey it has.
	Pending bool `json:",omitempty"`
	// Files is the digest of the files the sync last made Exchange's
	// mirrored attachments of the series be (seriesFiles.digest), "" when
	// it does not know them (the item came from Exchange, or changed
	// there since). It spares the push a GetItem of the attachments
	// when they did not change.
	Files string `json:",omitempty"`
}

func (w *worker) key(parts ...string) string {
	k := w.p.job.Target
	for _, p := range parts {
		k += keySep + p
	}
	return k
}

func (w *worker) linkByName(ctx context.Context, name string) (link, bool, error) {
	var l link
	r, err := w.s.opts.Store.GetRecord(ctx, nsLink, w.key("n", name))
	if errors.Is(err, store.ErrNotFound) {
		return l, false, nil
	}
	if err != nil {
		return l, false, err
	}
	return l, true, store.DecodeJSON(r, &l)
}

func (w *worker) linkByItem(ctx context.Context, itemID string) (link, bool, error) {
	r, err := w.s.opts.Store.GetRecord(ctx, nsLink, w.key("i", itemID))
	if errors.Is(err, store.ErrNotFound) {
		return link{}, false, nil
	}
	if err != nil {
		return link{}, false, err
	}
	return w.linkByName(ctx, string(r.Value))
}

// putLink writes l (and its reverse entry), replacing old's entries.
func (w *worker) putLink(ctx context.Context, old *link, l link) error {
	return w.s.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		if old != nil {
			if err := w.dropLinkTx(tx, *old); err != nil {
				return err
			}
		}
		if err := store.PutJSON(tx, nsLink, w.key("n", l.Name), l, -1); err != nil {
			return err
		}
		return tx.Put(nsLink, w.key("i", l.ItemID), []byte(l.Name), -1)
	})
}

func (w *worker) dropLink(ctx context.Context, l link) error {
	return w.s.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error { return w.dropLinkTx(tx, l) })
}

func (w *worker) dropLinkTx(tx store.RecordTx, l link) error {
	for _, k := range []string{w.key("n", l.Name), w.key("i", l.ItemID)} {
		if err := tx.Delete(nsLink, k); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

func (w *worker) loadState(ctx context.Context) (syncState, error) {
	var st syncState
	r, err := w.s.opts.Store.GetRecord(ctx, nsSync, w.p.job.Target)
	if errors.Is(err, store.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	return st, store.DecodeJSON(r, &st)
}

func (w *worker) saveState(ctx context.Context, st syncState) error {
	st.Updated = w.s.opts.Now()
	return w.s.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return store.PutJSON(tx, nsSync, w.p.job.Target, st, -1)
	})
}

// cycle is one pass: Exchange → Mailyard when pull is set, then
// Mailyard → Exchange for a two-way target.
func (w *worker) cycle(ctx context.Context, trigger string, pull bool) CycleReport {
	r := CycleReport{Target: w.p.job.Target, TwoWay: w.twoWay, Trigger: trigger}
	if err := w.run(ctx, &r, pull); err != nil {
		r.Err = w.p.fail(ctx, calendarKind.folder, err)
		if ctx.Err() == nil {
			w.s.opts.Logger.Warn("ews sync: pass failed", "target", r.Target, "trigger", trigger, "err", r.Err)
		}
	}
	return r
}

func (w *worker) run(ctx context.Context, r *CycleReport, pull bool) error {
	st, err := w.loadState(ctx)
	if err != nil {
		return err
	}
	if st.Collection != w.coll.ID {
		// A new (or recreated) calendar: every object is new to the
		// push side, and the links pair what both sides hold.
		st.Collection, st.Token = w.coll.ID, 0
	}
	if pull {
		if err := w.pull(ctx, &st, r); err != nil {
			return err
		}
	}
	if w.twoWay {
		return w.push(ctx, &st, r, pull)
	}
	return nil
}

// pull applies the calendar's SyncFolderItems changes, page by page,
// checkpointing the sync state after each page.
func (w *worker) pull(ctx context.Context, st *syncState, r *CycleReport) error {
	for {
		changes, next, last, err := w.p.mb.SyncFolderItems(ctx, FolderRef{Distinguished: calendarKind.folder}, st.SyncState, w.s.opts.PageSize)
		if err != nil {
			return err
		}
		var ids []ItemID
		for _, c := range changes {
			switch {
			case (c.Kind == "Create" || c.Kind == "Update") && c.ItemKind == calendarKind.item:
				own, err := w.ownChange(ctx, c.ItemID)
				if err != nil {
					return err
				}
				if !own {
					ids = append(ids, c.ItemID)
				}
			case c.Kind == "Delete":
				if err := w.exchangeDeleted(ctx, c.ItemID.ID, r); err != nil {
					return err
				}
			}
		}
		err = w.p.mb.GetItem(ctx, ids, ShapeCalendar, func(it Item) error {
			if it.Err != nil {
				var e *Error
				if errors.As(it.Err, &e) && e.Code == "ErrorItemNotFound" {
					return nil // deleted since; a later page says so
				}
				return it.Err
			}
			return w.exchangeChanged(ctx, it, r)
		})
		if err != nil {
			return err
		}
		st.SyncState = next
		if err := w.saveState(ctx, *st); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if last || len(changes) == 0 {
			return nil
		}
	}
}

// ownChange reports whether a change SyncFolderItems listed is the
// sync's own write coming back (or nothing new): its ItemId carries the
// ChangeKey the link holds ([MS-OXWSSYNC] §3.1.4.2: each change names
// the item by ItemId and ChangeKey), or the link is pending. Such an
// item is not fetched, so a pushed event costs no GetItem when it
// comes back.
func (w *worker) ownChange(ctx context.Context, id ItemID) (bool, error) {
	if id.ChangeKey == "" {
		return false, nil
	}
	l, linked, err := w.linkByItem(ctx, id.ID)
	return linked && (l.ChangeKey == id.ChangeKey || l.Pending), err
}

// exchangeChanged applies one created or changed Exchange item.
func (w *worker) exchangeChanged(ctx context.Context, it Item, r *CycleReport) error {
	if it.CalendarItem == nil {
		return nil
	}
	l, linked, err := w.linkByItem(ctx, it.ID.ID)
	if err != nil {
		return err
	}
	if linked && (l.ChangeKey == it.ID.ChangeKey || l.Pending) {
		return nil // the sync's own write, or nothing new
	}
	obj, err := w.p.fetchObject(ctx, calendarKind, it)
	if err != nil || obj.UID == "" {
		return err // an occurrence on its own gives no object
	}
	st := w.s.opts.Store
	var cur store.Object
	if linked {
		cur, err = st.GetObject(ctx, w.coll.ID, l.Name)
	} else {
		cur, err = st.ObjectByUID(ctx, w.coll.ID, obj.UID)
	}
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var old *link
	if linked {
		old = &l
	}
	if exists {
		if err := w.deliverCancel(ctx, cur, obj); err != nil {
			return err
		}
	}
	switch {
	case linked && !exists && w.twoWay:
		// Deleted in Mailyard, changed in Exchange: the change wins over
		// the deletion (nothing is lost), the deletion is logged.
		if err := w.logConflict(ctx, Conflict{UID: obj.UID, Subject: it.CalendarItem.Subject, Winner: SideExchange,
			Reason: "deleted in Mailyard, changed in Exchange", ExchangeModified: modified(it.CalendarItem)}); err != nil {
			return err
		}
		r.Conflicts++
	case exists && w.twoWay && changedSince(linked, l, cur, obj):
		r.Conflicts++
		return w.resolve(ctx, it, obj, cur, old, r)
	}
	return w.writeObject(ctx, it.ID, obj, cur, exists, old, r)
}

// deliverCancel puts a METHOD:CANCEL copy into the schedule inbox when
// Exchange's version obj of an event the mailbox attends cancels what
// Mailyard's cur did not have cancelled: the organizer cancelled the
// meeting, or an instance of it, in Exchange (RFC 6638 §4.1, RFC 5546
// §3.2.5), as the migration does for a MeetingCancellation. It runs
// before obj is stored, so that a pass killed in between delivers it
// again, once.
func (w *worker) deliverCancel(ctx context.Context, cur, obj store.Object) error {
	prev, err := ical.NewDecoder(bytes.NewReader(cur.Data)).Decode()
	if err != nil {
		return nil // Mailyard's version is no calendar: nothing was known
	}
	next, err := ical.NewDecoder(bytes.NewReader(obj.Data)).Decode()
	if err != nil {
		return err
	}
	events := newlyCancelled(prev, next)
	if len(events) == 0 || !attendedBy(next, w.p.self()) {
		return nil
	}
	return w.p.deliverITIP(ctx, cancelMessage(next, events), obj.UID, "CANCEL")
}

// changedSince reports whether Mailyard's object changed since the
// sync last saw it: its ETag moved, or (not linked yet: a first sync of
// a calendar imported or edited before) its data differs.
func changedSince(linked bool, l link, cur, obj store.Object) bool {
	if linked {
		return cur.ETag != l.ETag
	}
	return !bytes.Equal(cur.Data, obj.Data)
}

// writeObject stores Exchange's version obj of item id (over cur when
// exists, only if cur is still what was read) and links the two.
func (w *worker) writeObject(ctx context.Context, id ItemID, obj, cur store.Object, exists bool, old *link, r *CycleReport) error {
	if exists && bytes.Equal(cur.Data, obj.Data) {
		// Already the same (a calendar imported before): linked only.
		return w.putLink(ctx, old, link{Name: cur.Name, ItemID: id.ID, ChangeKey: id.ChangeKey, ETag: cur.ETag})
	}
	opts := store.PutOptions{IfNoneMatch: true}
	if exists {
		obj.Name, opts = cur.Name, store.PutOptions{IfMatch: cur.ETag}
	}
	stored, err := w.s.opts.Store.PutObject(ctx, w.coll.ID, obj, opts)
	if err != nil {
		return err
	}
	r.Pulled++
	return w.putLink(ctx, old, link{Name: stored.Name, ItemID: id.ID, ChangeKey: id.ChangeKey, ETag: stored.ETag})
}

// exchangeDeleted applies the deletion of a linked Exchange item.
func (w *worker) exchangeDeleted(ctx context.Context, itemID string, r *CycleReport) error {
	l, linked, err := w.linkByItem(ctx, itemID)
	if err != nil || !linked {
		return err
	}
	st := w.s.opts.Store
	cur, err := st.GetObject(ctx, w.coll.ID, l.Name)
	if errors.Is(err, store.ErrNotFound) {
		return w.dropLink(ctx, l)
	}
	if err != nil {
		return err
	}
	if cur.ETag != l.ETag && w.twoWay {
		// Changed in Mailyard, deleted in Exchange: the change wins and
		// goes back to Exchange as a new item; the deletion is logged.
		return w.changedHereDeletedThere(ctx, l, cur, r)
	}
	if err := st.DeleteObject(ctx, w.coll.ID, l.Name, cur.ETag); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	r.Deleted++
	return w.dropLink(ctx, l)
}

// push sends the store calendar's changes since the checkpoint's token
// to Exchange, and checkpoints the new token. Before it sends an object
// no link names (new to the sync) it pulls, unless this pass pulled
// already: an event another writer put into the calendar from Exchange
// (the migration's meeting requests, a CalDAV client's copy) is then
// paired with its Exchange item by UID instead of going to Exchange a
// second time.
func (w *worker) push(ctx context.Context, st *syncState, r *CycleReport, pulled bool) error {
	changes, token, err := w.s.opts.Store.ChangesSince(ctx, w.coll.ID, st.Token)
	if errors.Is(err, store.ErrSyncTokenInvalid) {
		// The log no longer reaches back: every object is compared with
		// its link, which pushes exactly the changed ones.
		changes, token, err = w.s.opts.Store.ChangesSince(ctx, w.coll.ID, 0)
	}
	if err != nil {
		return err
	}
	for _, c := range changes {
		if !pulled {
			_, linked, err := w.linkByName(ctx, c.Name)
			if err != nil {
				return err
			}
			if !linked {
				if err := w.pull(ctx, st, r); err != nil {
					return err
				}
				pulled = true
			}
		}
		if err := w.pushOne(ctx, c.Name, r); err != nil {
			return err
		}
	}
	w.pushed = token
	if token == st.Token {
		return nil
	}
	st.Token = token
	return w.saveState(ctx, *st)
}

// pushOne sends one changed or deleted store object to Exchange.
func (w *worker) pushOne(ctx context.Context, name string, r *CycleReport) error {
	l, linked, err := w.linkByName(ctx, name)
	if err != nil {
		return err
	}
	cur, err := w.s.opts.Store.GetObject(ctx, w.coll.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		if !linked {
			return nil
		}
		err := w.p.mb.DeleteItem(ctx, ItemID{ID: l.ItemID})
		var e *Error
		if err != nil && !(errors.As(err, &e) && e.Code == "ErrorItemNotFound") {
			return err
		}
		r.Deleted++
		return w.dropLink(ctx, l)
	}
	if err != nil {
		return err
	}
	if linked && cur.ETag == l.ETag {
		return nil // the sync's own write, or nothing new
	}
	if !linked {
		return w.create(ctx, cur, r)
	}
	ci, edits, ok := w.itemOf(cur, r)
	if !ok {
		return nil
	}
	target := ItemID{ID: l.ItemID, ChangeKey: l.ChangeKey}
	if l.Pending {
		target.ChangeKey = "" // our own half-written series: overwrite it
	}
	known := l.Files
	if l.Pending {
		known = ""
	}
	id, files, err := w.update(ctx, target, &l, cur, ci, edits, known)
	var e *Error
	switch {
	case errors.As(err, &e) && e.Code == "ErrorIrresolvableConflict":
		// Changed in Exchange too since the last sync.
		r.Conflicts++
		return w.conflictOnPush(ctx, l, cur, r)
	case errors.As(err, &e) && e.Code == "ErrorItemNotFound":
		// Deleted in Exchange, changed here: the change wins.
		return w.changedHereDeletedThere(ctx, l, cur, r)
	case err != nil:
		return err
	}
	r.Pushed++
	return w.putLink(ctx, &l, link{Name: cur.Name, ItemID: id.ID, ChangeKey: id.ChangeKey, ETag: cur.ETag, Files: files})
}

// conflictOnPush reads Exchange's current version of a linked item
// that refused an update, and decides between the two.
func (w *worker) conflictOnPush(ctx context.Context, l link, cur store.Object, r *CycleReport) error {
	var got *Item
	err := w.p.mb.GetItem(ctx, []ItemID{{ID: l.ItemID}}, ShapeCalendar, func(it Item) error {
		if it.Err == nil && it.CalendarItem != nil {
			got = &it
		}
		return it.Err
	})
	if err != nil {
		return err
	}
	if got == nil {
		return fmt.Errorf("ews: item %s is not a calendar item", l.ItemID)
	}
	obj, err := w.p.fetchObject(ctx, calendarKind, *got)
	if err != nil {
		return err
	}
	return w.resolve(ctx, *got, obj, cur, &l, r)
}

// itemOf maps a store object to an EWS calendar item and the
// exceptions of its series; ok is false (and the object counted as
// skipped) when no EWS item can hold it. An exception that names no
// instance of the series is left out and logged.
func (w *worker) itemOf(o store.Object, r *CycleReport) (*CalendarItem, seriesEdits, bool) {
	var edits seriesEdits
	cal, err := ical.NewDecoder(bytes.NewReader(o.Data)).Decode()
	if err == nil {
		var ci *CalendarItem
		if ci, err = FromICalendar(cal); err == nil {
			if edits, err = editsOf(cal); err == nil {
				if edits.unmatched > 0 {
					w.s.opts.Logger.Warn("ews sync: exceptions that are no instance of their series not sent to Exchange",
						"target", w.p.job.Target, "object", o.Name, "count", edits.unmatched)
				}
				return ci, edits, true
			}
		}
	}
	r.Skipped++
	w.s.opts.Logger.Warn("ews sync: event not sent to Exchange", "target", w.p.job.Target, "object", o.Name, "err", err)
	return nil, edits, false
}

// update writes Mailyard's version cur of a linked event to its
// Exchange item target: the master by UpdateItem (which, when it sets
// the pattern, drops the series' exceptions in Exchange), then the
// exceptions again, then the attachments (pushAttachments, known as
// there). While the exceptions and attachments are written the link is
// pending (see link.Pending). old is the link before. It returns the
// item's id with its current ChangeKey and the digest of its files for
// the link.
func (w *worker) update(ctx context.Context, target ItemID, old *link, cur store.Object, ci *CalendarItem, edits seriesEdits, known string) (ItemID, string, error) {
	id, err := w.p.mb.UpdateCalendarItem(ctx, target, *ci)
	if err != nil {
		return id, "", err
	}
	pending := func(id ItemID) error {
		return w.putLink(ctx, old, link{Name: cur.Name, ItemID: id.ID, ChangeKey: id.ChangeKey, Pending: true})
	}
	return w.pushRest(ctx, id, cur, edits, known, pending)
}

// pushRest writes the exceptions and attachments of Mailyard's version
// cur of an event whose master was just written as id, and returns the
// id with its ChangeKey after the last write and the digest of the
// files (link.Files). The ChangeKey comes from the responses of the
// writes (the ItemId of CreateItem's and UpdateItem's responses,
// [MS-OXWSCORE] §3.1.4.2, §3.1.4.9, and the RootItemChangeKey of
// CreateAttachment's and DeleteAttachment's, [MS-OXWSATT] §3.1.4.1,
// §3.1.4.2);
// only when the last write returned none (a deleted occurrence) is it
// read by one GetItem.
func (w *worker) pushRest(ctx context.Context, id ItemID, cur store.Object, edits seriesEdits, known string, pending func(ItemID) error) (ItemID, string, error) {
	occ := map[int]ItemID{}
	if !edits.empty() {
		if err := pending(id); err != nil {
			return id, "", err
		}
		var err error
		if id, occ, err = w.pushSeries(ctx, id, edits); err != nil {
			return id, "", err
		}
	}
	files := w.syncedFiles(cur, edits)
	id, err := w.pushAttachments(ctx, id, occ, files, known, pending)
	if err != nil {
		return id, "", err
	}
	if id.ChangeKey == "" {
		if id, err = w.p.mb.ChangeKey(ctx, id.ID); err != nil {
			return id, "", err
		}
	}
	return id, files.digest(), nil
}

// changedHereDeletedThere settles an object changed in Mailyard whose
// item was deleted in Exchange: the change wins and goes back to
// Exchange as a new item, and the deletion is logged as a conflict.
func (w *worker) changedHereDeletedThere(ctx context.Context, l link, cur store.Object, r *CycleReport) error {
	if err := w.logConflict(ctx, Conflict{UID: cur.UID, Winner: SideMailyard, Reason: "changed in Mailyard, deleted in Exchange",
		MailyardModified: cur.Modified}); err != nil {
		return err
	}
	r.Conflicts++
	if err := w.dropLink(ctx, l); err != nil {
		return err
	}
	return w.create(ctx, cur, r)
}

// create makes a new Exchange item of a store object, with the
// exceptions of its series, and links them.
func (w *worker) create(ctx context.Context, cur store.Object, r *CycleReport) error {
	ci, edits, ok := w.itemOf(cur, r)
	if !ok {
		return nil
	}
	id, err := w.p.mb.CreateCalendarItem(ctx, FolderRef{}, *ci)
	if err != nil {
		return err
	}
	// Linked before the exceptions and attachments are written: a pass
	// that fails between the two updates the series instead of creating
	// it again.
	pending := func(id ItemID) error {
		return w.putLink(ctx, nil, link{Name: cur.Name, ItemID: id.ID, ChangeKey: id.ChangeKey, Pending: true})
	}
	id, files, err := w.pushRest(ctx, id, cur, edits, noFiles, pending)
	if err != nil {
		return err
	}
	r.Pushed++
	return w.putLink(ctx, nil, link{Name: cur.Name, ItemID: id.ID, ChangeKey: id.ChangeKey, ETag: cur.ETag, Files: files})
}

// resolve decides a conflict (both sides changed since the last sync)
// by the later modification: Exchange's LastModifiedTime against the
// store object's modification time. The winner is written over the
// loser, and the loser is kept in the conflict log.
func (w *worker) resolve(ctx context.Context, it Item, obj, cur store.Object, old *link, r *CycleReport) error {
	exTime := modified(it.CalendarItem)
	c := Conflict{UID: obj.UID, Subject: it.CalendarItem.Subject, Reason: "changed on both sides",
		ExchangeModified: exTime, MailyardModified: cur.Modified}
	if cur.Modified.After(exTime) {
		c.Winner, c.Loser = SideMailyard, obj.Data
		ci, edits, ok := w.itemOf(cur, r)
		if !ok {
			// Mailyard's version cannot go to Exchange: Exchange's stays
			// on both sides.
			c.Winner, c.Loser = SideExchange, cur.Data
			if err := w.logConflict(ctx, c); err != nil {
				return err
			}
			return w.writeObject(ctx, it.ID, obj, cur, true, old, r)
		}
		// Exchange changed since the link: its attachments are read.
		id, files, err := w.update(ctx, it.ID, old, cur, ci, edits, "")
		if err != nil {
			return err
		}
		if err := w.logConflict(ctx, c); err != nil {
			return err
		}
		r.Pushed++
		return w.putLink(ctx, old, link{Name: cur.Name, ItemID: id.ID, ChangeKey: id.ChangeKey, ETag: cur.ETag, Files: files})
	}
	c.Winner, c.Loser = SideExchange, cur.Data
	if err := w.logConflict(ctx, c); err != nil {
		return err
	}
	return w.writeObject(ctx, it.ID, obj, cur, true, old, r)
}

func modified(ci *CalendarItem) time.Time {
	if ci == nil || ci.LastModifiedTime == nil {
		return time.Time{}
	}
	return *ci.LastModifiedTime
}
