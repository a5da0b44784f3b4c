package ews

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/store"
)

// specialFolders are the distinguished folders ([MS-OXWSCDATA]
// DistinguishedFolderIdNameType) that are special mailboxes (RFC 6154),
// whatever their display names.
var specialFolders = map[string]store.SpecialUse{
	"sentitems": store.SpecialSent, "deleteditems": store.SpecialTrash,
	"junkemail": store.SpecialJunk, "drafts": store.SpecialDrafts,
}

// mailFolder is one source mail folder of a pass.
type mailFolder struct {
	id     FolderID
	status migration.FolderStatus
	err    error
	// special is the special use of a distinguished folder: meeting
	// messages in Sent Items, Deleted Items, Junk or Drafts are mail
	// only.
	special store.SpecialUse
}

// mailFolders lists the mail folders below the top of the information
// store (msgfolderroot) by SyncFolderHierarchy, and maps them to target
// mailboxes by the IMAP collectors' rules: the inbox is INBOX, the
// distinguished sent, deleted, junk and drafts folders have their
// special use, and exclusions and well-known names apply to the
// display-name paths. Folders of other classes (calendars, contacts,
// tasks, notes) and search folders are not mail.
func (p *pass) mailFolders(ctx context.Context) ([]mailFolder, error) {
	names := []string{"msgfolderroot", "inbox"}
	for n := range specialFolders {
		names = append(names, n)
	}
	refs := make([]FolderRef, len(names))
	for i, n := range names {
		refs[i] = FolderRef{Distinguished: n}
	}
	known, err := p.mb.GetFolder(ctx, refs...)
	if err != nil {
		return nil, err
	}
	if len(known) != len(names) {
		return nil, &Error{Code: "ErrorFolderNotFound", Message: "GetFolder did not return every distinguished folder"}
	}
	distinguished := map[string]string{} // folder id -> distinguished name
	for i, f := range known {
		distinguished[f.FolderID.ID] = names[i]
	}
	changes, _, err := p.mb.SyncFolderHierarchy(ctx, "")
	if err != nil {
		return nil, err
	}
	byID := map[string]Folder{}
	var order []string
	for _, c := range changes {
		if c.Kind == "Delete" {
			continue
		}
		if _, seen := byID[c.Folder.FolderID.ID]; !seen {
			order = append(order, c.Folder.FolderID.ID)
		}
		byID[c.Folder.FolderID.ID] = c.Folder
	}
	var folders []mailFolder
	var specs []migration.FolderSpec
	for _, id := range order {
		f := byID[id]
		if !isMail(f) {
			continue
		}
		path, ok := p.folderPath(f, byID, distinguished)
		if !ok {
			continue
		}
		mf := mailFolder{id: f.FolderID, special: specialFolders[distinguished[id]]}
		name, err := migration.FolderPath(path...)
		if err != nil {
			name, mf.err = strings.Join(path, "/"), err
		}
		mf.status = migration.FolderStatus{Source: name, SourceMessages: int64(f.TotalCount)}
		folders = append(folders, mf)
		specs = append(specs, migration.FolderSpec{Name: name, Special: specialFolders[distinguished[id]]})
	}
	plan, err := migration.PlanFolders(ctx, p.m.opts.Store, p.account, migration.Job{Exclude: p.job.Exclude, FolderMap: p.job.FolderMap}, specs)
	if err != nil {
		return nil, &migration.Error{Class: migration.TargetErrorClass(ctx, err), Target: p.job.Target, Err: err}
	}
	for i, pl := range plan {
		f := &folders[i]
		f.status.Excluded, f.status.Target = pl.Excluded, pl.Target
		if f.err == nil {
			f.err = pl.Err
		}
	}
	return folders, nil
}

// isMail reports whether f holds mail: a plain folder of class IPF.Note
// (or a subclass), or of no class, as Exchange leaves older folders.
func isMail(f Folder) bool {
	return f.Kind == "Folder" && (f.FolderClass == "" || f.FolderClass == "IPF.Note" || strings.HasPrefix(f.FolderClass, "IPF.Note."))
}

// folderPath is f's display-name path below msgfolderroot, the inbox
// named INBOX whatever its display name; false if f is not below it.
func (p *pass) folderPath(f Folder, byID map[string]Folder, distinguished map[string]string) ([]string, bool) {
	var path []string
	for range 64 { // deeper than any real hierarchy; stops a cycle
		if distinguished[f.FolderID.ID] == "msgfolderroot" {
			return path, len(path) > 0
		}
		name := f.DisplayName
		if distinguished[f.FolderID.ID] == "inbox" {
			name = store.Inbox
		}
		path = append([]string{name}, path...)
		parent, ok := byID[f.ParentFolderID.ID]
		if !ok {
			// The root of the information store is not in the
			// hierarchy's changes: only a folder whose parent is it is
			// top-level.
			return path, distinguished[f.ParentFolderID.ID] == "msgfolderroot"
		}
		f = parent
	}
	return nil, false
}

// mail copies the new messages of one folder, page by page.
func (p *pass) mail(ctx context.Context, f *mailFolder, t *tally) error {
	key := f.id.ID
	st, found, err := p.loadState(ctx, key)
	if err != nil {
		return p.fail(ctx, f.status.Source, err)
	}
	if found && st.Target != "" {
		f.status.Target = st.Target // a folder's target is fixed when it is first copied
	}
	target := f.status.Target
	if err := migration.EnsureMailbox(ctx, p.m.opts.Store, p.account, target); err != nil {
		return p.fail(ctx, f.status.Source, err)
	}
	if !found {
		// The first checkpoint, before anything is copied: every copy
		// this folder makes has a UID at or above its UIDNext.
		st = folderState{Name: f.status.Source, Target: target}
		if st.UIDNext, err = p.uidNext(ctx, target); err == nil {
			err = p.checkpoint(ctx, key, st, page{})
		}
		if err != nil {
			return p.fail(ctx, f.status.Source, err)
		}
	}
	c := &copier{p: p, target: target, key: key}
	err = p.syncItems(ctx, key, FolderRef{ID: FolderID{ID: f.id.ID}}, st, func(changes []ItemChange, st *folderState) (page, error) {
		pg := page{put: map[string]objectState{}}
		if err := c.copyPage(ctx, changes, st, t, pg); err != nil {
			return pg, err
		}
		if err := c.stateChanges(ctx, changes, pg); err != nil {
			return pg, err
		}
		if ids := meetingsIn(changes); len(ids) > 0 && f.special == "" {
			if err := p.meetings(ctx, ids, t); err != nil {
				return pg, err
			}
		}
		if p.m.opts.SourceDeletions {
			if err := c.sourceDeletions(ctx, changes, t, &pg); err != nil {
				return pg, err
			}
		}
		var err error
		st.UIDNext, err = p.uidNext(ctx, target)
		return pg, err
	})
	if st, _, lerr := p.loadState(ctx, key); lerr == nil {
		f.status.Copied, f.status.CopiedBytes, f.status.SkippedTooLarge, f.status.LastSync = st.Copied, st.Bytes, st.TooLarge, st.Updated
	}
	if err != nil {
		return p.fail(ctx, f.status.Source, err)
	}
	return nil
}

func (p *pass) uidNext(ctx context.Context, mailbox string) (uint32, error) {
	mb, err := p.m.opts.Store.Mailbox(ctx, p.account, mailbox)
	return mb.UIDNext, err
}

// copier copies the messages of one folder into its target mailbox.
type copier struct {
	p      *pass
	target string
	key    string // the folder's record key
	// stray are copies at or above the checkpoint's UIDNext that no
	// checkpoint covers (a pass killed between an append and its
	// checkpoint): their UIDs by size and SHA-256, loaded at the first
	// page.
	stray map[contentKey][]uint32
}

type contentKey struct {
	size int64
	sum  [sha256.Size]byte
}

// copyPage appends the messages a page created, reading their MIME in
// GetItem batches bounded by count and by the sizes SyncFolderItems gave
// (getItemBytes). A message that size says is over MaxMessageSize is
// counted and not read. A message already copied by a killed pass (a
// stray copy with the same bytes) is counted instead of copied again.
// Each copy's UID goes into pg, for read-state changes later.
func (c *copier) copyPage(ctx context.Context, changes []ItemChange, st *folderState, t *tally, pg page) error {
	var ids []ItemID
	var sizes []int64
	for _, ch := range changes {
		if ch.Kind != "Create" || !isMailKind(ch.ItemKind) {
			continue
		}
		if ch.Size > c.p.m.opts.MaxMessageSize {
			st.TooLarge++
			continue
		}
		ids = append(ids, ch.ItemID)
		sizes = append(sizes, ch.Size)
	}
	if len(ids) == 0 {
		return nil
	}
	if c.stray == nil {
		if err := c.loadStray(ctx, st.UIDNext); err != nil {
			return err
		}
	}
	// The messages go to the store in batches (appendBatchLen and
	// appendBatchBytes, appendBatches of them at once) when it takes
	// them (store.BatchAppender), else one by one, WriteParallel at once;
	// either way holding at most appendBudget bytes of messages (a larger
	// message alone) while GetItem reads on. mu guards st, t and pg,
	// which the callback and the appends share.
	batcher, _ := c.p.m.opts.Store.(store.BatchAppender)
	maxLen, parallel := 1, c.p.m.opts.WriteParallel
	if batcher != nil {
		maxLen, parallel = appendBatchLen, appendBatches
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	budget := semaphore.NewWeighted(appendBudget)
	var batch []pendingAppend
	var batchBytes, batchWeight int64
	flush := func() {
		b, weight := batch, batchWeight
		batch, batchBytes, batchWeight = nil, 0, 0
		g.Go(func() error {
			copied, err := c.appendAll(gctx, batcher, b)
			budget.Release(weight)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for i, m := range b {
				n := int64(len(m.raw))
				pg.put[m.id] = objectState{UID: copied[i].UID, Seen: m.seen, Flagged: m.flagged}
				t.messages++
				t.bytes += n
				st.Copied++
				st.Bytes += n
				c.p.doneMsgs.Add(1)
				c.p.doneBytes.Add(n)
			}
			return nil
		})
	}
	err := c.p.mb.GetItemSized(gctx, ids, sizes, getItemBytes, ShapeMIME, func(it Item) error {
		if it.Err != nil {
			var e *Error
			if errors.As(it.Err, &e) && e.Code == "ErrorItemNotFound" {
				return nil // deleted since the sync
			}
			return it.Err
		}
		msg := it.Message
		if msg == nil {
			return nil
		}
		if msg.Size > c.p.m.opts.MaxMessageSize {
			mu.Lock()
			st.TooLarge++
			mu.Unlock()
			return nil
		}
		raw, err := msg.MIME()
		if err != nil {
			return &migration.Error{Class: migration.ErrClassSource, Err: err}
		}
		msg.MimeContent = nil // raw is the only copy the append keeps
		if int64(len(raw)) > c.p.m.opts.MaxMessageSize {
			mu.Lock()
			st.TooLarge++
			mu.Unlock()
			return nil
		}
		seen, flagged := msg.IsRead != nil && *msg.IsRead, msg.Flagged()
		if len(c.stray) > 0 {
			k := contentKey{int64(len(raw)), sha256.Sum256(raw)}
			if uids := c.stray[k]; len(uids) > 0 {
				if c.stray[k] = uids[1:]; len(c.stray[k]) == 0 {
					delete(c.stray, k) // no stray left: later messages skip the digest
				}
				mu.Lock()
				pg.put[it.ID.ID] = objectState{UID: uids[0], Seen: seen, Flagged: flagged}
				st.Copied++
				st.Bytes += int64(len(raw))
				mu.Unlock()
				return nil
			}
		}
		opts := store.AppendOptions{DeferTextIndex: true} // a bulk import: the index may follow
		if seen {
			opts.Flags = append(opts.Flags, store.FlagSeen)
		}
		if flagged {
			opts.Flags = append(opts.Flags, store.FlagFlagged)
		}
		if msg.DateTimeReceived != nil {
			opts.InternalDate = *msg.DateTimeReceived
		}
		// The batch goes before this message would take it past its
		// bounds, and so before the wait for budget: a batch not yet
		// sent never holds budget that this message waits for.
		if len(batch) > 0 && batchBytes+int64(len(raw)) > appendBatchBytes {
			flush()
		}
		weight := min(int64(len(raw)), appendBudget)
		if err := budget.Acquire(gctx, weight); err != nil {
			return err
		}
		batch = append(batch, pendingAppend{id: it.ID.ID, raw: raw, opts: opts, seen: seen, flagged: flagged})
		batchBytes += int64(len(raw))
		batchWeight += weight
		if len(batch) >= maxLen {
			flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		flush()
	}
	// An append's error comes first: it is what cancelled GetItem.
	if werr := g.Wait(); werr != nil {
		return werr
	}
	return err
}

// pendingAppend is a message read from Exchange and waiting in a batch
// for the store.
type pendingAppend struct {
	id            string // its ItemId
	raw           []byte
	opts          store.AppendOptions
	seen, flagged bool
}

// appendAll stores the messages of a batch in the target mailbox: in one
// AppendBatch when the store has it (ba), else the one message of the
// batch by Append. It returns the stored messages in batch order.
func (c *copier) appendAll(ctx context.Context, ba store.BatchAppender, b []pendingAppend) ([]store.Message, error) {
	if ba == nil {
		m, err := c.p.m.opts.Store.Append(ctx, c.p.account, c.target, bytes.NewReader(b[0].raw), b[0].opts)
		return []store.Message{m}, err
	}
	msgs := make([]store.AppendMessage, len(b))
	for i, m := range b {
		msgs[i] = store.AppendMessage{Body: bytes.NewReader(m.raw), Options: m.opts}
	}
	return ba.AppendBatch(ctx, c.p.account, c.target, msgs)
}

// getItemBytes bounds the sizes of the messages one GetItem call of a
// page's mail asks for (a larger message alone); GetItemSized reads
// ahead within three times as much. A variable for tests only.
var getItemBytes int64 = 8 << 20

// appendBudget bounds the bytes of the messages a folder's appends hold
// at once (MigratorOptions.WriteParallel bounds their number), so that
// many appends in flight share the store's commits without holding many
// large messages.
const appendBudget = 32 << 20

// A store that takes batches (store.BatchAppender) gets a folder's
// messages in batches of at most appendBatchLen messages and
// appendBatchBytes bytes (a larger message alone), appendBatches at
// once: one write request, one commit and one fsync of each fan-out
// directory per batch, in place of one request and one directory fsync
// per message; the batches in flight keep the store's blob writes and
// its writer busy at the same time.
const (
	appendBatchLen   = 64
	appendBatchBytes = 4 << 20
	appendBatches    = 4
)

// loadStray indexes the target mailbox's messages at or above uidNext.
func (c *copier) loadStray(ctx context.Context, uidNext uint32) error {
	c.stray = map[contentKey][]uint32{}
	st := c.p.m.opts.Store
	uids, err := st.Search(ctx, c.p.account, c.target, store.SearchCriteria{UIDs: store.UIDSet{{Start: max(uidNext, 1), Stop: 0}}})
	if err != nil {
		return err
	}
	for _, uid := range uids {
		body, err := st.OpenBody(ctx, c.p.account, c.target, uid)
		if errors.Is(err, store.ErrNoMessage) {
			continue
		}
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, body)
		body.Close()
		if err != nil {
			return err
		}
		var k contentKey
		k.size = n
		copy(k.sum[:], h.Sum(nil))
		c.stray[k] = append(c.stray[k], uid)
	}
	return nil
}

// stateChanges carries the source's read and flag changes of messages
// copied before over to the copies: ReadFlagChange ([MS-OXWSSYNC]
// §2.2.4.5) gives the new read state, an Update is read back with
// ShapeState. Only what changed on the source since it was last seen is
// added to or removed from the copy (\Seen, \Flagged), so a change the
// user made in Mailyard stays; a message this migration did not copy is
// left alone. The new states go into pg with the checkpoint.
func (c *copier) stateChanges(ctx context.Context, changes []ItemChange, pg page) error {
	// sourceNow is a message's state on the source now; the flag is
	// known only from an Update.
	type sourceNow struct{ seen, flagged, flagKnown bool }
	now := map[string]sourceNow{}
	var updated []ItemID
	for _, ch := range changes {
		switch {
		case ch.Kind == "ReadFlagChange" && ch.IsRead != nil:
			now[ch.ItemID.ID] = sourceNow{seen: *ch.IsRead}
		case ch.Kind == "Update" && ch.ItemKind == "Message":
			updated = append(updated, ch.ItemID)
		}
	}
	if len(now) == 0 && len(updated) == 0 {
		return nil
	}
	known := map[string]objectState{}
	for id := range now {
		if err := c.known(ctx, id, known); err != nil {
			return err
		}
	}
	for _, id := range updated {
		if err := c.known(ctx, id.ID, known); err != nil {
			return err
		}
	}
	var ids []ItemID
	for _, id := range updated {
		if _, ok := known[id.ID]; ok {
			ids = append(ids, id)
		}
	}
	err := c.p.mb.GetItem(ctx, ids, ShapeState, func(it Item) error {
		if it.Err != nil || it.Message == nil {
			return nil // deleted since the sync, or no longer a message
		}
		now[it.ID.ID] = sourceNow{seen: it.Message.IsRead != nil && *it.Message.IsRead, flagged: it.Message.Flagged(), flagKnown: true}
		return nil
	})
	if err != nil {
		return err
	}
	for id, n := range now {
		last, ok := known[id]
		if !ok || last.UID == 0 {
			continue
		}
		next := last
		next.Seen = n.seen
		if err := c.apply(ctx, last.UID, store.FlagSeen, last.Seen, n.seen); err != nil {
			return err
		}
		if n.flagKnown {
			next.Flagged = n.flagged
			if err := c.apply(ctx, last.UID, store.FlagFlagged, last.Flagged, n.flagged); err != nil {
				return err
			}
		}
		pg.put[id] = next
	}
	return nil
}

// known loads the record of a copied message into known, if there is
// one.
func (c *copier) known(ctx context.Context, id string, known map[string]objectState) error {
	o, found, err := c.p.objectRecord(ctx, c.key, id)
	if found && err == nil {
		known[id] = o
	}
	return err
}

// apply adds or removes flag on the copy uid when the source changed it
// from was to is.
func (c *copier) apply(ctx context.Context, uid uint32, flag string, was, is bool) error {
	if was == is {
		return nil
	}
	op := store.FlagsRemove
	if is {
		op = store.FlagsAdd
	}
	_, err := c.p.m.opts.Store.StoreFlags(ctx, c.p.account, c.target, store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: uid, Stop: uid}}, Op: op, Flags: []string{flag}})
	if errors.Is(err, store.ErrNoMessage) {
		return nil
	}
	return err
}

// sourceDeletions removes the copies of the messages a page reports
// deleted from the source folder (MigratorOptions.SourceDeletions), if
// they are as the migration left them, and drops their records: a copy
// is removed only when it is still in the target mailbox with exactly
// the flags the migration set (\Seen and \Flagged as the source had
// them when last seen), and it is flagged \Deleted only if its MODSEQ
// has not moved since it was read (UNCHANGEDSINCE, RFC 7162 §3.1.3), so
// a change the user makes meanwhile keeps it too. Only that UID is
// expunged (RFC 4315 UID EXPUNGE).
func (c *copier) sourceDeletions(ctx context.Context, changes []ItemChange, t *tally, pg *page) error {
	for _, ch := range changes {
		if ch.Kind != "Delete" {
			continue
		}
		id := ch.ItemID.ID
		o, ok := pg.put[id] // copied, or its state changed, on this page
		if !ok {
			var err error
			if o, ok, err = c.p.objectRecord(ctx, c.key, id); err != nil {
				return err
			}
		}
		if !ok {
			continue // never copied (too large, not a message)
		}
		delete(pg.put, id)
		pg.delete = append(pg.delete, id)
		if o.UID == 0 {
			continue
		}
		removed, err := c.removeUnchanged(ctx, o)
		if err != nil {
			return err
		}
		if removed {
			t.deleted++
		}
	}
	return nil
}

// removeUnchanged expunges the copy o.UID if it is as the migration
// left it, and reports whether it did.
func (c *copier) removeUnchanged(ctx context.Context, o objectState) (bool, error) {
	st := c.p.m.opts.Store
	uids := store.UIDSet{{Start: o.UID, Stop: o.UID}}
	msgs, err := st.ListMessages(ctx, c.p.account, c.target, uids)
	if err != nil || len(msgs) == 0 {
		return false, err // gone already: deleted or moved by the user
	}
	var want []string
	if o.Flagged {
		want = append(want, store.FlagFlagged)
	}
	if o.Seen {
		want = append(want, store.FlagSeen)
	}
	slices.Sort(want)
	if !slices.Equal(msgs[0].Flags, want) {
		return false, nil // the user changed its flags: the copy is theirs now
	}
	res, err := st.StoreFlags(ctx, c.p.account, c.target, store.StoreFlagsRequest{UIDs: uids, Op: store.FlagsAdd,
		Flags: []string{store.FlagDeleted}, UnchangedSince: msgs[0].ModSeq})
	if errors.Is(err, store.ErrNoMessage) || (err == nil && (len(res.Modified) > 0 || len(res.Updated) == 0)) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	gone, err := st.Expunge(ctx, c.p.account, c.target, uids)
	return len(gone) > 0, err
}
