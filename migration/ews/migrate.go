package ews

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/lease"
)

// Record namespaces of the EWS migrator. Keys start with the target's
// address as the job names it, then keySep and the source folder's key
// (its EWS FolderId, or "calendar" and "contacts").
const (
	// nsFolder: key target<sep>folder -> folderState (the checkpoint:
	// SyncFolderItems sync state and counters).
	nsFolder = "migration.ews.folder"
	// nsObject: key target<sep>folder<sep>ItemId -> objectState (the
	// store object an EWS calendar item or contact became, for updates
	// and deletions; the UID of a message's copy, for read and flag
	// changes).
	nsObject = "migration.ews.object"
	// nsPass: key lower-cased target -> the lease (package store/lease)
	// of the Migrator pass copying into that target.
	nsPass = "migration.ews.pass"
)

// keySep separates the parts of record keys; it occurs in no address and
// no EWS id.
const keySep = "\x1f"

// Namespaces returns the [store.Records] namespaces package ews owns, for
// a check that no two owners claim one.
func Namespaces() []string {
	return []string{nsFolder, nsObject, nsSync, nsLink, nsConflict, nsLease, nsPass}
}

// Target is what a [Migrator] needs from the store: what the IMAP
// collectors need ([migration.Target]) and the calendar and address-book
// collections. Every store backend satisfies it.
type Target interface {
	migration.Target
	store.Collections
}

// MigratorOptions configure a [Migrator]. Zero values take the defaults
// named beside them.
type MigratorOptions struct {
	// Store receives mail, events and contacts and keeps the checkpoints.
	// Required.
	Store Target
	// Directory resolves a job's target address to its account. Required.
	Directory migration.Lookup
	// Client is the EWS source. Required. Its Options.MaxConcurrent
	// bounds the calls in flight.
	Client *Client
	// FolderParallel is how many folders (mail folders, the calendar and
	// the contacts) of one mailbox are copied at once (2).
	FolderParallel int
	// PageSize is SyncFolderItems' MaxChangesReturned: the items of one
	// checkpoint (512, the most [MS-OXWSSYNC] §3.1.4.2 allows; larger
	// values are lowered to it). Each SyncFolderItems call costs the
	// server a scan of the folder's changes, so fewer, larger pages
	// cost it less; a pass killed mid-page rereads at most one page,
	// whose copies it recognises (see Sync).
	PageSize int
	// MaxMessageSize: larger messages are skipped and counted as too
	// large (64 MiB); one whose size SyncFolderItems gives as larger is
	// not read at all.
	MaxMessageSize int64
	// WriteParallel is how many messages or objects of one folder are
	// written to the store at once (32), the messages' appends holding
	// at most 32 MiB of message bytes at once (a larger message alone).
	// Concurrent writes share the store's commits (the SQLite store
	// commits a batch of waiting writes with one fsync, and their blob
	// files' fsyncs overlap), so a page is stored in a few commits
	// instead of one per item. A store that takes batches of messages
	// (store.BatchAppender: store/sqlite, store/postgres, store/memstore) gets a
	// folder's messages instead in batches of up to 64 messages or
	// 4 MiB, four batches at once, within the same 32 MiB; WriteParallel
	// then bounds the objects only. It bounds the store's work only: the
	// calls to Exchange stay bounded by the client's
	// Options.MaxConcurrent.
	WriteParallel int
	// SourceDeletions removes, on later passes, the copy of a message
	// that SyncFolderItems reports deleted from its Exchange folder
	// (deleted, or moved to another folder, which then copies it anew)
	// when the copy is still as the migration left it: in the mailbox it
	// was copied to, with exactly the flags the migration gave it. A copy
	// the user flagged, read, tagged or moved in Mailyard stays. Off by
	// default: like the IMAP collectors, a migration then never removes
	// mail from the target (package migration, "Messages expunged on
	// the source are not expunged in the target").
	SourceDeletions bool
	// MaxAttachmentSize: a calendar item's file attachment larger than
	// this is not copied into its event (10 MiB); negative copies no
	// attachment. Skipped attachments are logged with the reason and
	// counted (Result.AttachmentsSkipped).
	MaxAttachmentSize int64
	// MaxEventAttachments bounds the attachment bytes copied into one
	// event (10 MiB), taken in the item's order while they fit; an
	// event object then stays within about 4/3 of it plus its text.
	// The store takes objects of any size, but a CalDAV client cannot
	// PUT an object back above the DAV handler's MaxResourceSize (1
	// MiB by default), so an installation whose users edit such events
	// raises that or lowers this.
	MaxEventAttachments int64
	// LeaseTTL is how long a pass's lease on its target lasts without
	// renewal (lease.DefaultTTL): a pass that died (SIGKILL, a lost
	// node) leaves its target to another after this long, at once if it
	// was a process of the same host that no longer exists.
	LeaseTTL time.Duration
	// Progress, if set, is called after each checkpoint.
	Progress migration.ProgressFunc
	Logger   *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Job is one mailbox to migrate from Exchange.
type Job struct {
	// Target is the Mailyard address that receives the mailbox; it is
	// resolved through the directory to its account.
	Target string
	// Mailbox is the source mailbox's SMTP address, reached as the
	// client's Options.Access says ("" for the client's own account).
	Mailbox string
	// Exclude and FolderMap are as in [migration.Job]: nil Exclude means
	// [migration.DefaultExclude].
	Exclude   []string
	FolderMap map[string]string
}

// Result is what one [Migrator.Sync] did.
type Result struct {
	// Folders are the mail folders, with counts over all passes.
	Folders []migration.FolderStatus
	// Messages and Bytes count the messages copied by this pass.
	Messages, Bytes int64
	// Events and Contacts count the objects written by this pass (new or
	// changed); Deleted the objects (and, with
	// MigratorOptions.SourceDeletions, the messages) removed because
	// their source item was deleted.
	Events, Contacts, Deleted int
	// Attachments counts the calendar attachments copied into events,
	// AttachmentsSkipped those left out (over a limit, or an item
	// attachment), each logged with its reason.
	Attachments, AttachmentsSkipped int
	// Meetings counts the meeting messages applied to the calendar:
	// pending requests made invitations, responses and cancellations
	// applied to their events.
	Meetings int
	// CalendarLeft says why the pass left the calendar alone ("" when it
	// copied it): the target's calendar is kept by a two-way or one-way
	// calendar sync ([Syncer]), which has a checkpoint for it or is
	// running. The sync reads the same Exchange calendar and decides
	// conflicts; a pass writing over it would undo an edit made in
	// Mailyard that the sync has not sent yet, and an event it wrote
	// while the sync runs would reach Exchange again as a new item.
	CalendarLeft string
}

// Migrator copies mailboxes from one EWS source into a store. It is safe
// for concurrent use by passes of different targets.
type Migrator struct {
	opts MigratorOptions
}

// NewMigrator checks opts and returns a migrator.
func NewMigrator(opts MigratorOptions) (*Migrator, error) {
	if opts.Store == nil || opts.Directory == nil || opts.Client == nil {
		return nil, errors.New("ews: MigratorOptions need Store, Directory and Client")
	}
	if opts.LeaseTTL < 0 {
		return nil, errors.New("ews: MigratorOptions.LeaseTTL must not be negative")
	}
	setDefault(&opts.LeaseTTL, lease.DefaultTTL)
	setDefault(&opts.FolderParallel, 2)
	setDefault(&opts.PageSize, 512)
	setDefault(&opts.MaxMessageSize, 64<<20)
	setDefault(&opts.WriteParallel, 32)
	setDefault(&opts.MaxAttachmentSize, 10<<20)
	setDefault(&opts.MaxEventAttachments, 10<<20)
	opts.PageSize = min(opts.PageSize, 512)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Migrator{opts: opts}, nil
}

// pass is the state of one Sync.
type pass struct {
	m       *Migrator
	job     Job
	account string
	mb      *Mailbox
	// progress, if set, receives the pass's progress after each
	// checkpoint: done counts what this pass copied, over all folders.
	progress            migration.ProgressFunc
	doneMsgs, doneBytes atomic.Int64
	// calendarDone is closed when this pass's calendar migration ended,
	// which the meeting messages of mail folders wait for (nil: no
	// calendar migration in this pass).
	calendarDone chan struct{}
}

// Sync copies what changed in job's source mailbox since the last pass
// (everything the first time): mail folders, the calendar and the
// contacts, FolderParallel folders at once. A folder's checkpoint is
// written after the items of each SyncFolderItems page are stored, so a
// pass stopped at any point (even by SIGKILL) is resumed by the next
// without duplicates or gaps. The error is a *[migration.Error].
//
// The pass holds a lease on its target (package store/lease, records
// "migration.ews.pass"), so two Migrators (two processes, two nodes on
// one PostgreSQL) never copy into one mailbox at once: while another
// pass holds it, Sync fails at once, copying nothing, with a
// *migration.Error of class config wrapping [migration.ErrBusy] that
// names the holder. A holder that died leaves the target when its
// lease expires (LeaseTTL after its last renewal), at once when it was
// a process of this host that no longer exists. A pass whose lease is
// lost (this process stalled past the expiry and another took over)
// stops.
func (m *Migrator) Sync(ctx context.Context, job Job) (Result, error) {
	return m.sync(ctx, job, m.opts.Progress)
}

func (m *Migrator) sync(ctx context.Context, job Job, progress migration.ProgressFunc) (Result, error) {
	var res Result
	l, err := m.acquire(ctx, job)
	if err != nil {
		return res, err
	}
	defer l.Release()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-l.Lost():
			cancel(fmt.Errorf("%w: the lease on %s was lost to another process", migration.ErrBusy, job.Target))
		case <-ctx.Done():
		}
	}()
	account, err := migration.ResolveTarget(ctx, m.opts.Directory, m.opts.Store, job.Target)
	if err != nil {
		return res, err
	}
	p := &pass{m: m, job: job, account: account, mb: m.opts.Client.Mailbox(job.Mailbox), progress: progress,
		calendarDone: make(chan struct{})}
	folders, err := p.mailFolders(ctx)
	if err != nil {
		return res, p.fail(ctx, "", err)
	}
	tally := make([]tally, len(folders)+2)
	calLease, left, err := m.calendarTurn(ctx, job)
	if err != nil {
		return res, p.fail(ctx, calendarKind.folder, err)
	}
	if calLease != nil {
		defer calLease.Release()
	}
	res.CalendarLeft = left
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(m.opts.FolderParallel)
	g.Go(func() error {
		defer close(p.calendarDone)
		if left != "" {
			m.opts.Logger.Info("ews: calendar left to the calendar sync", "target", job.Target, "reason", left)
			return nil
		}
		return p.objects(gctx, calendarKind, &tally[0])
	})
	g.Go(func() error { return p.objects(gctx, contactsKind, &tally[1]) })
	for i := range folders {
		if folders[i].status.Excluded || folders[i].err != nil {
			continue
		}
		g.Go(func() error { return p.mail(gctx, &folders[i], &tally[i+2]) })
	}
	err = g.Wait()
	res.Events, res.Contacts = tally[0].objects, tally[1].objects
	res.Attachments, res.AttachmentsSkipped = tally[0].attachments.copied, tally[0].attachments.skipped
	for i, f := range folders {
		t := tally[i+2]
		res.Messages += t.messages
		res.Bytes += t.bytes
		res.Folders = append(res.Folders, f.status)
	}
	for _, t := range tally {
		res.Deleted += t.deleted
		res.Meetings += t.meetings
	}
	if err != nil {
		return res, err
	}
	for _, f := range folders {
		if f.err != nil {
			// An unusable folder name: the others are copied, the pass
			// fails so that the status shows it.
			return res, &migration.Error{Class: migration.ErrClassSource, Target: job.Target, Folder: f.status.Source, Err: f.err}
		}
	}
	return res, nil
}

// acquire takes the lease of job's target, or fails with a
// *migration.Error: wrapping migration.ErrBusy (and naming the holder)
// when another pass holds it.
func (m *Migrator) acquire(ctx context.Context, job Job) (*lease.Lease, error) {
	l, err := lease.Acquire(ctx, lease.Options{Records: m.opts.Store, Namespace: nsPass, Key: strings.ToLower(job.Target),
		TTL: m.opts.LeaseTTL, Now: m.opts.Now, Logger: m.opts.Logger})
	if held, ok := errors.AsType[*lease.HeldError](err); ok {
		h := held.Holder
		return nil, &migration.Error{Class: migration.ErrClassConfig, Target: job.Target,
			Err: fmt.Errorf("%w (process %d on %s, since %s)", migration.ErrBusy, h.PID, h.Host, h.Since.UTC().Format(time.RFC3339))}
	}
	if err != nil {
		return nil, &migration.Error{Class: migration.TargetErrorClass(ctx, err), Target: job.Target, Err: err}
	}
	return l, nil
}

// calendarTurn decides whether this pass copies the target's calendar:
// not when a Syncer keeps it (a sync checkpoint exists for the target),
// nor while a Syncer holds the target's lease. Else it takes that lease
// (nsLease, the Syncer's) for the pass, so that a Syncer starting now
// waits until the calendar is copied (and then pairs what it finds by
// UID), and returns it. left is the reason the calendar is left alone.
func (m *Migrator) calendarTurn(ctx context.Context, job Job) (l *lease.Lease, left string, err error) {
	_, err = m.opts.Store.GetRecord(ctx, nsSync, job.Target)
	switch {
	case err == nil:
		return nil, "the calendar sync keeps this calendar", nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, "", err
	}
	l, err = lease.Acquire(ctx, lease.Options{Records: m.opts.Store, Namespace: nsLease, Key: strings.ToLower(job.Target),
		TTL: m.opts.LeaseTTL, Now: m.opts.Now, Logger: m.opts.Logger})
	if held, ok := errors.AsType[*lease.HeldError](err); ok {
		return nil, fmt.Sprintf("a calendar sync is running on it (process %d on %s)", held.Holder.PID, held.Holder.Host), nil
	}
	return l, "", err
}

// tally counts what a pass did in one folder.
type tally struct {
	messages, bytes int64
	objects         int
	deleted         int
	meetings        int
	attachments     attachmentTally
}

// fail classifies err as a migration error of folder: errors of the
// client are classified already, anything else came from the store.
func (p *pass) fail(ctx context.Context, folder string, err error) error {
	var me *migration.Error
	if errors.As(err, &me) {
		e := *me
		if e.Target == "" || e.Target == p.job.Mailbox {
			e.Target = p.job.Target
		}
		if e.Folder == "" {
			e.Folder = folder
		}
		return &e
	}
	return &migration.Error{Class: migration.TargetErrorClass(ctx, err), Target: p.job.Target, Folder: folder, Err: err}
}

// folderState is a folder's checkpoint (nsFolder).
type folderState struct {
	// Name is the source folder's path, Target the target mailbox (mail).
	Name, Target string
	// SyncState is the SyncFolderItems state after the last page whose
	// items are all stored.
	SyncState string
	// UIDNext is the target mailbox's UIDNEXT when the checkpoint was
	// written: a copy made after it and not yet checkpointed (the pass
	// was killed between the store's commit and the checkpoint's) has a
	// UID at or above it.
	UIDNext uint32
	// Copied and Bytes count the messages or objects stored over all
	// passes; TooLarge the messages skipped for their size.
	Copied, Bytes, TooLarge int64
	// Updated is when the checkpoint was written.
	Updated time.Time
}

// objectState is what an item became (nsObject): the store object of a
// calendar item or contact, or the UID of a message's copy.
type objectState struct {
	Name string `json:",omitempty"`
	UID  uint32 `json:",omitempty"`
	// Seen and Flagged are the message's state on the source as last
	// seen, so that only the source's changes are carried over and
	// flags a user changed in Mailyard stay.
	Seen    bool `json:",omitempty"`
	Flagged bool `json:",omitempty"`
}

func (p *pass) folderKey(folder string) string { return p.job.Target + keySep + folder }

// objectRecord reads what item id of folder became; false if it was not
// copied.
func (p *pass) objectRecord(ctx context.Context, folder, id string) (objectState, bool, error) {
	var o objectState
	r, err := p.m.opts.Store.GetRecord(ctx, nsObject, p.folderKey(folder)+keySep+id)
	if errors.Is(err, store.ErrNotFound) {
		return o, false, nil
	}
	if err != nil {
		return o, false, err
	}
	return o, true, store.DecodeJSON(r, &o)
}

func (p *pass) loadState(ctx context.Context, folder string) (folderState, bool, error) {
	var st folderState
	r, err := p.m.opts.Store.GetRecord(ctx, nsFolder, p.folderKey(folder))
	if errors.Is(err, store.ErrNotFound) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	return st, true, store.DecodeJSON(r, &st)
}

// page is what one SyncFolderItems page changed, to be checkpointed
// with the new sync state in one record transaction.
type page struct {
	put    map[string]objectState // item id -> object
	delete []string               // item ids
}

// checkpoint writes a folder's state and the object records of a page.
func (p *pass) checkpoint(ctx context.Context, folder string, st folderState, pg page) error {
	st.Updated = p.m.opts.Now()
	return p.m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		for id, o := range pg.put {
			if err := store.PutJSON(tx, nsObject, p.folderKey(folder)+keySep+id, o, -1); err != nil {
				return err
			}
		}
		for _, id := range pg.delete {
			if err := tx.Delete(nsObject, p.folderKey(folder)+keySep+id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return store.PutJSON(tx, nsFolder, p.folderKey(folder), st, -1)
	})
}

// syncItems runs SyncFolderItems on ref from the checkpoint on, hands
// each page's changes to handle, and checkpoints after handle returned
// (handle stores the page's items durably first). The next page is read
// while handle stores this one: a sync state is only the client's
// bookmark ([MS-OXWSSYNC] §3.1.4.2), so asking with one whose page is not
// yet stored commits nothing on the server, and the checkpoint still
// moves only past stored pages.
func (p *pass) syncItems(ctx context.Context, key string, ref FolderRef, st folderState, handle func([]ItemChange, *folderState) (page, error)) error {
	type syncPage struct {
		changes []ItemChange
		next    string
		last    bool
		err     error
	}
	ctx, cancel := context.WithCancel(ctx)
	pages := make(chan syncPage, 1)
	go func() {
		defer close(pages)
		state := st.SyncState
		for {
			var sp syncPage
			sp.changes, sp.next, sp.last, sp.err = p.mb.SyncFolderItems(ctx, ref, state, p.m.opts.PageSize)
			select {
			case pages <- sp:
			case <-ctx.Done():
				return
			}
			if sp.err != nil || sp.last || len(sp.changes) == 0 {
				return
			}
			state = sp.next
		}
	}()
	defer func() {
		cancel()
		for range pages { // the reader has stopped when pages is closed
		}
	}()
	for sp := range pages {
		if sp.err != nil {
			return sp.err
		}
		pg, err := handle(sp.changes, &st)
		if err != nil {
			return err
		}
		st.SyncState = sp.next
		if err := p.checkpoint(ctx, key, st, pg); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if p.progress != nil {
			p.progress(migration.Progress{Target: p.job.Target, Folder: st.Name, DoneMessages: p.doneMsgs.Load(), DoneBytes: p.doneBytes.Load()})
		}
	}
	return nil
}
