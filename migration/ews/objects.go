package ews

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/emersion/go-vcard"
	"golang.org/x/sync/errgroup"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/store"
)

// objectKind is one of the two folders that become store collections.
type objectKind struct {
	folder  string // distinguished folder and checkpoint key
	kind    store.CollectionKind
	item    string // the SyncFolderItems ItemKind copied
	shape   Shape
	display string   // display name of a collection the pass creates
	comps   []string // its components
	ext     string   // object name extension
}

var (
	calendarKind = objectKind{folder: "calendar", kind: store.KindCalendar, item: "CalendarItem", shape: ShapeCalendar,
		display: "Calendar", comps: []string{"VEVENT", "VTODO"}, ext: ".ics"}
	contactsKind = objectKind{folder: "contacts", kind: store.KindAddressBook, item: "Contact", shape: ShapeContact,
		display: "Contacts", ext: ".vcf"}
)

// defaultCollectionName is the name of a default collection the pass
// creates, as the CalDAV/CardDAV handler names its own.
const defaultCollectionName = "default"

// objects copies the calendar or the contacts folder into the account's
// default calendar or address book: one object per series (with its
// modified occurrences) or contact, named after its UID, replaced when
// the item changes and deleted when it is deleted.
func (p *pass) objects(ctx context.Context, k objectKind, t *tally) error {
	coll, err := p.defaultCollection(ctx, k)
	if err != nil {
		return p.fail(ctx, k.folder, err)
	}
	st, _, err := p.loadState(ctx, k.folder)
	if err != nil {
		return p.fail(ctx, k.folder, err)
	}
	st.Name = k.folder
	err = p.syncItems(ctx, k.folder, FolderRef{Distinguished: k.folder}, st, func(changes []ItemChange, st *folderState) (page, error) {
		return p.objectPage(ctx, k, coll, changes, st, t)
	})
	if err != nil {
		return p.fail(ctx, k.folder, err)
	}
	return nil
}

// defaultCollection is the account's first collection of k's kind that
// takes its items (the one CalDAV clients see as the default), created
// if the account has none.
func (p *pass) defaultCollection(ctx context.Context, k objectKind) (store.Collection, error) {
	st := p.m.opts.Store
	colls, err := st.ListCollections(ctx, p.account, k.kind)
	if err != nil {
		return store.Collection{}, err
	}
	var found *store.Collection
	for i, c := range colls {
		takes := len(c.Components) == 0 || (k.kind == store.KindCalendar && containsFold(c.Components, "VEVENT"))
		if c.Name == defaultCollectionName || (found == nil && takes && c.Name != "inbox" && c.Name != "outbox") {
			found = &colls[i]
			if c.Name == defaultCollectionName {
				break
			}
		}
	}
	if found != nil {
		return *found, nil
	}
	c, err := st.CreateCollection(ctx, store.Collection{Account: p.account, Kind: k.kind, Name: defaultCollectionName,
		DisplayName: k.display, Components: k.comps})
	if errors.Is(err, store.ErrExists) {
		return st.Collection(ctx, p.account, k.kind, defaultCollectionName)
	}
	return c, err
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if bytes.EqualFold([]byte(v), []byte(s)) {
			return true
		}
	}
	return false
}

// objectPage stores the items a page created or updated and deletes
// the objects of deleted items. The page's items are read by GetItem in
// batches, the modified occurrences of each batch's series by one more
// GetItem, and the objects are mapped and written WriteParallel at once;
// items of one UID (one object) are written one after another, in the
// page's order.
func (p *pass) objectPage(ctx context.Context, k objectKind, coll store.Collection, changes []ItemChange, st *folderState, t *tally) (page, error) {
	pg := page{put: map[string]objectState{}}
	var ids []ItemID
	for _, c := range changes {
		switch {
		case (c.Kind == "Create" || c.Kind == "Update") && c.ItemKind == k.item:
			ids = append(ids, c.ItemID)
		case c.Kind == "Delete":
			if err := p.deleteObject(ctx, k, coll, c.ItemID.ID); err != nil {
				return pg, err
			}
			pg.delete = append(pg.delete, c.ItemID.ID)
			t.deleted++
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.m.opts.WriteParallel)
	write := func(ctx context.Context, it Item, exc []*CalendarItem) error {
		var at attachmentTally
		atts, err := p.attachProps(ctx, it.CalendarItem, exc, &at)
		if err != nil {
			return err
		}
		o, err := p.object(k, it, exc, atts)
		if err != nil || o.UID == "" {
			return err
		}
		name, err := p.putObject(ctx, coll, o)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		t.attachments.copied += at.copied
		t.attachments.skipped += at.skipped
		pg.put[it.ID.ID] = objectState{Name: name}
		st.Copied++
		st.Bytes += int64(len(o.Data))
		t.objects++
		return nil
	}
	// The items come in GetItem batches; each batch's exceptions are read
	// in one more GetItem, then its objects written while the next batch
	// is read. An item whose UID (object) an earlier item of the page
	// has waits for the end of the page, so they are written in order.
	dispatched := map[string]bool{}
	var later, batch []Item
	flush := func() error {
		exc, err := p.exceptions(gctx, batch)
		if err != nil {
			return err
		}
		for i, it := range batch {
			g.Go(func() error { return write(gctx, it, exc[i]) })
		}
		batch = batch[:0]
		return nil
	}
	err := p.mb.GetItem(gctx, ids, k.shape, func(it Item) error {
		if it.Err != nil {
			var e *Error
			if errors.As(it.Err, &e) && e.Code == "ErrorItemNotFound" {
				return nil // deleted since the sync; a later page says so
			}
			return it.Err
		}
		if ci := it.CalendarItem; ci != nil && (ci.CalendarItemType == "Occurrence" || ci.CalendarItemType == "Exception") {
			return nil // an occurrence on its own gives no object
		}
		key := it.ID.ID
		if ci := it.CalendarItem; ci != nil && ci.UID != "" {
			key = ci.UID
		}
		if dispatched[key] {
			later = append(later, it)
			return nil
		}
		dispatched[key] = true
		if batch = append(batch, it); len(batch) == MaxBatch {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	// A write's error comes first: it is what cancelled GetItem.
	if werr := g.Wait(); werr != nil {
		return pg, werr
	}
	if err != nil {
		return pg, err
	}
	for _, it := range later {
		exc, err := p.exceptions(ctx, []Item{it})
		if err != nil {
			return pg, err
		}
		if err := write(ctx, it, exc[0]); err != nil {
			return pg, err
		}
	}
	return pg, nil
}

// exceptions reads the modified occurrences of the series among items
// in GetItem batches: the exceptions of items[i] are at index i. An
// exception EWS cannot return keeps the master's properties.
func (p *pass) exceptions(ctx context.Context, items []Item) (map[int][]*CalendarItem, error) {
	owner := map[string]int{} // occurrence item id → index of its series
	byUID := map[string]int{}
	var ids []ItemID
	for i, it := range items {
		ci := it.CalendarItem
		if ci == nil || ci.ModifiedOccurrences == nil {
			continue
		}
		byUID[ci.UID] = i
		for _, occ := range ci.ModifiedOccurrences.Occurrence {
			if occ.ItemID != nil {
				ids = append(ids, *occ.ItemID)
				owner[occ.ItemID.ID] = i
			}
		}
	}
	exc := map[int][]*CalendarItem{}
	err := p.mb.GetItem(ctx, ids, ShapeCalendar, func(e Item) error {
		if e.CalendarItem == nil {
			return nil
		}
		i, ok := owner[e.ID.ID]
		if !ok {
			// The exception came back under another id: its series is
			// the one of the same UID.
			if i, ok = byUID[e.CalendarItem.UID]; !ok {
				return nil
			}
		}
		exc[i] = append(exc[i], e.CalendarItem)
		return nil
	})
	return exc, err
}

// fetchObject maps one item to its store object as object does, reading
// the modified occurrences of a series first. An occurrence or exception
// on its own gives no object.
func (p *pass) fetchObject(ctx context.Context, k objectKind, it Item) (store.Object, error) {
	if ci := it.CalendarItem; ci != nil && (ci.CalendarItemType == "Occurrence" || ci.CalendarItemType == "Exception") {
		return store.Object{}, nil
	}
	exc, err := p.exceptions(ctx, []Item{it})
	if err != nil {
		return store.Object{}, err
	}
	var at attachmentTally
	atts, err := p.attachProps(ctx, it.CalendarItem, exc[0], &at)
	if err != nil {
		return store.Object{}, err
	}
	return p.object(k, it, exc[0], atts)
}

// object maps one item to its store object: a calendar series with its
// modified occurrences exc and the ATTACH properties atts of its
// master and exceptions, or a contact.
func (p *pass) object(k objectKind, it Item, exc []*CalendarItem, atts eventAttachments) (store.Object, error) {
	var data []byte
	o := store.Object{}
	switch {
	case it.CalendarItem != nil:
		ci := it.CalendarItem
		cal, err := ToICalendar(ci, exc)
		if err != nil {
			return o, &migration.Error{Class: migration.ErrClassSource, Err: fmt.Errorf("calendar item %q: %w", ci.Subject, err)}
		}
		markSelf(cal, ci, p.self())
		atts.add(cal)
		if data, err = Encode(cal); err != nil {
			return o, err
		}
		// Bounded by what it was made of (attachments by
		// MaxEventAttachments), not by a CalDAV PUT's limit.
		parsed, err := calendar.Parse(data, calendar.Limits{MaxSize: len(data) + 1})
		if err != nil {
			return o, &migration.Error{Class: migration.ErrClassSource, Err: fmt.Errorf("calendar item %q maps to an invalid object: %w", ci.Subject, err)}
		}
		o.Start, o.End = parsed.Bounds()
		o.UID, o.Component, o.ContentType = ci.UID, parsed.Component(), "text/calendar; charset=utf-8"
		if o.UID == "" {
			o.UID = it.ID.ID
		}
	case it.Contact != nil:
		card, err := ToVCard(it.Contact)
		if err != nil {
			return o, &migration.Error{Class: migration.ErrClassSource, Err: err}
		}
		var b bytes.Buffer
		if err := vcard.NewEncoder(&b).Encode(card); err != nil {
			return o, err
		}
		data = b.Bytes()
		o.UID, o.Component, o.ContentType = card.Value(vcard.FieldUID), "VCARD", "text/vcard; charset=utf-8"
	default:
		return o, nil
	}
	o.Name, o.Data = objectName(o.UID, k.ext), data
	return o, nil
}

// putObject creates or replaces o. An object of the same UID under
// another name (made by a CalDAV client) is replaced under its name.
func (p *pass) putObject(ctx context.Context, coll store.Collection, o store.Object) (string, error) {
	st := p.m.opts.Store
	_, err := st.PutObject(ctx, coll.ID, o, store.PutOptions{})
	if errors.Is(err, store.ErrExists) {
		var have store.Object
		if have, err = st.ObjectByUID(ctx, coll.ID, o.UID); err == nil {
			o.Name = have.Name
			_, err = st.PutObject(ctx, coll.ID, o, store.PutOptions{})
		}
	}
	return o.Name, err
}

// deleteObject deletes the object an item became, if it was copied.
func (p *pass) deleteObject(ctx context.Context, k objectKind, coll store.Collection, itemID string) error {
	o, found, err := p.objectRecord(ctx, k.folder, itemID)
	if err != nil || !found {
		return err
	}
	st := p.m.opts.Store
	if err := st.DeleteObject(ctx, coll.ID, o.Name, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// objectName derives a resource name from a UID: the UID itself where it
// is a safe path segment, else a digest of it (EWS UIDs of contacts are
// base64 ItemIds with "/" and "+").
func objectName(uid, ext string) string {
	safe := len(uid) > 0 && len(uid) <= 200
	for _, r := range uid {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '@') {
			safe = false
			break
		}
	}
	if safe {
		return uid + ext
	}
	sum := sha256.Sum256([]byte(uid))
	return hex.EncodeToString(sum[:20]) + ext
}
