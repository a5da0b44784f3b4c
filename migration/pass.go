package migration

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/migration/internal/bytesize"
	"github.com/mailyard/mailyard/store"
)

// A pass, step by step:
//
//  1. Resolve the target address to a user; its ID is the store account.
//  2. Log in to the source (allowlist, host slot, TLS, credentials).
//  3. Discover the folders, map them to target mailboxes, drop excluded
//     ones, create the target mailboxes.
//  4. Group the folders by target mailbox (several source folders may
//     feed one: "Sent" and "Sent Items"). FolderParallel workers take
//     groups; a group's folders are copied one after another, so that in
//     a target mailbox at most one of our appends is ever unrecorded.
//  5. Scan each folder of a group: EXAMINE (never SELECT: nothing is
//     changed on the source), re-pair the copies if UIDVALIDITY changed,
//     fetch every message's UID, FLAGS, RFC822.SIZE and INTERNALDATE in one
//     UID FETCH, carry flag changes over, and reconcile the target
//     messages above the group's last checkpoint with what is left to
//     copy (an append whose checkpoint was lost to a crash is recognised
//     by size, INTERNALDATE and its first bytes instead of being copied
//     twice).
//  6. Copy each folder: one UID FETCH of BODY.PEEK[] for every message
//     left, each literal streamed straight into store.Append, then its
//     checkpoint (message record and folder record) in one record
//     transaction.
//  7. Record every folder's status and the pass's outcome.

// passResult is what a pass did, for the status.
type passResult struct {
	folders      []FolderStatus
	copied       int64
	copiedBytes  int64
	flagUpdates  int64
	failed       int64
	foldersTotal int
	// inboxOnly: an IDLE pass, which copied only the folders feeding the
	// target's INBOX (folders holds only theirs).
	inboxOnly bool
}

// summary is the status's LastMessage.
func (r passResult) summary() string {
	s := fmt.Sprintf("copied %d messages (%s) in %d folders", r.copied, bytesize.Format(r.copiedBytes), r.foldersTotal)
	if r.inboxOnly {
		s = "INBOX (IDLE): " + s
	}
	if r.flagUpdates > 0 {
		s += fmt.Sprintf(", updated flags of %d", r.flagUpdates)
	}
	if r.failed > 0 {
		s += fmt.Sprintf(", %d failed", r.failed)
	}
	return s
}

// passState is shared by the workers of one pass.
type passState struct {
	m        *Migrator
	job      Job
	account  string
	progress ProgressFunc
	cancel   context.CancelFunc
	// inboxOnly limits the pass to the folders mapped to the target's
	// INBOX (idle.go).
	inboxOnly bool

	doneMsgs, doneBytes, totalMsgs, totalBytes atomic.Int64
	flagUpdates                                atomic.Int64

	mu       sync.Mutex
	statuses map[string]FolderStatus
	err      error // first error
}

func (ps *passState) report(folder string) {
	if ps.progress == nil {
		return
	}
	ps.progress(Progress{Target: ps.job.Target, Folder: folder,
		DoneMessages: ps.doneMsgs.Load(), DoneBytes: ps.doneBytes.Load(),
		TotalMessages: ps.totalMsgs.Load(), TotalBytes: ps.totalBytes.Load()})
}

// fail records err; fatal errors (quota, authentication, target, cancel)
// stop the whole pass.
func (ps *passState) fail(err error) {
	ps.mu.Lock()
	if ps.err == nil {
		ps.err = err
	}
	ps.mu.Unlock()
	switch ClassOf(err) {
	case ErrClassQuota, ErrClassAuth, ErrClassTarget, ErrClassCanceled, ErrClassConfig:
		ps.cancel()
	}
}

func (ps *passState) setStatus(fs FolderStatus) {
	ps.mu.Lock()
	ps.statuses[fs.Source] = fs
	ps.mu.Unlock()
}

// pass runs steps 1-7.
func (m *Migrator) pass(ctx context.Context, job Job, progress ProgressFunc, inboxOnly bool) (passResult, error) {
	account, err := m.resolveTarget(ctx, job.Target)
	if err != nil {
		return passResult{}, err
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ps := &passState{m: m, job: job, account: account, progress: progress, cancel: cancel, statuses: map[string]FolderStatus{}, inboxOnly: inboxOnly}

	sc, err := m.dial(pctx, job)
	if err != nil {
		return passResult{}, err
	}
	groups, order, cps, err := ps.plan(ctx, pctx, sc)
	if err != nil {
		sc.Close()
		return passResult{}, err
	}
	ps.runWorkers(pctx, sc, groups, order, cps)
	res := ps.result()
	if ctx.Err() != nil {
		return res, &Error{Class: ErrClassCanceled, Target: job.Target, Err: ctx.Err()}
	}
	return res, ps.err
}

// plan does steps 3 and 4: it discovers and maps the folders, reads
// their checkpoints and groups them by target mailbox. Errors are
// classified against ctx, not pctx: a pass that cancels itself after a
// fatal error is not a canceled pass.
func (ps *passState) plan(ctx, pctx context.Context, sc *sourceConn) (map[string][]*srcFolder, []string, map[string]*folderRecord, error) {
	folders, err := ps.sourceFolders(ctx, pctx, sc)
	if err != nil {
		return nil, nil, nil, err
	}
	cps, err := ps.loadCheckpoints(ctx, pctx, folders)
	if err != nil {
		return nil, nil, nil, err
	}
	groups, order, err := ps.groupFolders(ctx, pctx, sc, folders)
	if err != nil {
		return nil, nil, nil, err
	}
	return groups, order, cps, nil
}

// sourceFolders discovers the source's folders (step 3) and maps each to
// its target mailbox.
func (ps *passState) sourceFolders(ctx, pctx context.Context, sc *sourceConn) ([]srcFolder, error) {
	folders, err := discover(pctx, sc)
	if err != nil {
		return nil, ps.sourceErr(ctx, "", err)
	}
	specials, err := targetSpecials(pctx, ps.m.opts.Store, ps.account)
	if err != nil {
		return nil, ps.localErr(ctx, "", err)
	}
	mapFolders(folders, ps.job, specials)
	return folders, nil
}

// loadCheckpoints reads the folder records of the collector, keyed by
// source folder name, and fixes each checkpointed folder's target mailbox
// to the one it was first copied to. The records are read in one scan,
// not one read per folder.
func (ps *passState) loadCheckpoints(ctx, pctx context.Context, folders []srcFolder) (map[string]*folderRecord, error) {
	stored := map[string]store.Record{}
	err := scanPrefix(pctx, ps.m.opts.Store, nsFolder, folderKey(ps.job.Target, ""), "", func(r store.Record) error {
		stored[r.Key] = r
		return nil
	})
	if err != nil {
		return nil, ps.localErr(ctx, "", err)
	}
	cps := map[string]*folderRecord{}
	for i := range folders {
		f := &folders[i]
		if f.Err != nil || f.Excluded {
			continue
		}
		r, ok := stored[folderKey(ps.job.Target, f.Name)]
		if !ok {
			continue
		}
		var cp folderRecord
		if err := store.DecodeJSON(r, &cp); err != nil {
			err = fmt.Errorf("migration: %s: %w", nsFolder, err)
			return nil, ps.localErr(ctx, "", err)
		}
		if cp.Target != "" {
			f.Target = cp.Target
		}
		cps[f.Name] = &cp
	}
	return cps, nil
}

// groupFolders records the status of the folders no worker copies
// (failed to list, excluded, \Noselect), creates the target mailboxes and
// groups the rest by target mailbox (step 4), in the order the targets
// first appear.
func (ps *passState) groupFolders(ctx, pctx context.Context, sc *sourceConn, folders []srcFolder) (map[string][]*srcFolder, []string, error) {
	groups := map[string][]*srcFolder{}
	var order []string
	for i := range folders {
		f := &folders[i]
		if ps.inboxOnly && (f.Err != nil || f.Excluded || f.Target != store.Inbox) {
			continue
		}
		switch {
		case f.Err != nil:
			ps.setStatus(FolderStatus{Source: f.Name, Failed: 1})
			ps.fail(&Error{Class: ErrClassSource, Target: ps.job.Target, Folder: f.Name, Err: f.Err})
			continue
		case f.Excluded:
			ps.setStatus(excludedStatus(pctx, sc, f, ps.m.now()))
			continue
		}
		if err := ensureMailbox(pctx, ps.m.opts.Store, ps.account, f.Target); err != nil {
			return nil, nil, ps.localErr(ctx, f.Name, fmt.Errorf("create target mailbox %q: %w", f.Target, err))
		}
		if f.NoSelect {
			ps.setStatus(FolderStatus{Source: f.Name, Target: f.Target, LastSync: ps.m.now()})
			continue
		}
		if _, ok := groups[f.Target]; !ok {
			order = append(order, f.Target)
		}
		groups[f.Target] = append(groups[f.Target], f)
	}
	return groups, order, nil
}

// runWorkers copies the groups with up to FolderParallel workers and
// returns when all are done or pctx is canceled. The first worker takes
// over sc; the others dial their own connections. sc is closed either
// way.
func (ps *passState) runWorkers(pctx context.Context, sc *sourceConn, groups map[string][]*srcFolder, order []string, cps map[string]*folderRecord) {
	work := make(chan []*srcFolder)
	workers := min(ps.m.opts.FolderParallel, len(order))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		var own *sourceConn
		if w == 0 {
			own, sc = sc, nil
		}
		wg.Go(func() { ps.worker(pctx, own, work, cps) })
	}
	if sc != nil {
		sc.Close()
	}
feed:
	for _, t := range order {
		select {
		case work <- groups[t]:
		case <-pctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
}

// result is what the pass did, its folders sorted by source name (step 7).
func (ps *passState) result() passResult {
	var res passResult
	res.copied, res.copiedBytes, res.flagUpdates = ps.doneMsgs.Load(), ps.doneBytes.Load(), ps.flagUpdates.Load()
	for _, fs := range ps.statuses {
		res.folders = append(res.folders, fs)
		res.failed += fs.Failed
	}
	sort.Slice(res.folders, func(i, j int) bool { return res.folders[i].Source < res.folders[j].Source })
	res.foldersTotal = len(res.folders)
	res.inboxOnly = ps.inboxOnly
	return res
}

// resolveTarget maps the target address to its store account.
func (m *Migrator) resolveTarget(ctx context.Context, addr string) (string, error) {
	return resolveTarget(ctx, m.opts.Directory, m.opts.Store, addr)
}

func resolveTarget(ctx context.Context, dir Lookup, st interface {
	Account(ctx context.Context, id string) (store.Account, error)
}, addr string) (string, error) {
	e, err := dir.LookupAddress(ctx, addr)
	if err != nil {
		class := ErrClassTarget
		if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid) {
			class = ErrClassConfig
		}
		return "", &Error{Class: class, Target: addr, Err: fmt.Errorf("target address: %w", err)}
	}
	if e.Kind != directory.KindUser || e.User == nil {
		return "", &Error{Class: ErrClassConfig, Target: addr, Err: errors.New("target address is not a user's mailbox")}
	}
	if _, err := st.Account(ctx, e.User.ID); err != nil {
		return "", &Error{Class: classifyLocal(ctx, err), Target: addr, Err: fmt.Errorf("target account %s: %w", e.User.ID, err)}
	}
	return e.User.ID, nil
}

// excludedStatus counts an excluded folder (STATUS MESSAGES, and SIZE
// where RFC 8438 STATUS=SIZE is offered) for reports.
func excludedStatus(ctx context.Context, sc *sourceConn, f *srcFolder, now time.Time) FolderStatus {
	fs := FolderStatus{Source: f.Name, Excluded: true, LastSync: now}
	if f.NoSelect || ctx.Err() != nil {
		return fs
	}
	opts := &imap.StatusOptions{NumMessages: true, Size: sc.c.Caps().Has(imap.CapStatusSize)}
	if d, err := sc.c.Status(f.Wire, opts).Wait(); err == nil {
		if d.NumMessages != nil {
			fs.SourceMessages = int64(*d.NumMessages)
		}
		if d.Size != nil {
			fs.SourceBytes = *d.Size
		}
	}
	return fs
}

// sourceErr wraps an error of the source connection.
func (ps *passState) sourceErr(ctx context.Context, folder string, err error) error {
	if ctx.Err() != nil {
		return &Error{Class: ErrClassCanceled, Target: ps.job.Target, Folder: folder, Err: ctx.Err()}
	}
	var me *Error
	if errors.As(err, &me) {
		return err
	}
	return &Error{Class: classifySource(err), Target: ps.job.Target, Folder: folder, Err: err}
}

// localErr is err, from the store or the directory, as an error of the
// pass about folder ("" for the whole mailbox), classified against ctx.
func (ps *passState) localErr(ctx context.Context, folder string, err error) error {
	return &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Folder: folder, Err: err}
}

// worker copies groups on its own connection (dialled on first use,
// redialled after a connection error).
func (ps *passState) worker(ctx context.Context, sc *sourceConn, work <-chan []*srcFolder, cps map[string]*folderRecord) {
	defer func() {
		if sc != nil {
			sc.Close()
		}
	}()
	for g := range work {
		if ctx.Err() != nil {
			continue
		}
		if sc == nil {
			var err error
			if sc, err = ps.m.dial(ctx, ps.job); err != nil {
				for _, f := range g {
					ps.setStatus(FolderStatus{Source: f.Name, Target: f.Target, Failed: 1})
				}
				ps.fail(err)
				continue
			}
		}
		if err := ps.copyGroup(ctx, sc, g, cps); err != nil {
			ps.fail(err)
			if c := ClassOf(err); sc.broken() || c == ErrClassConnection || c == ErrClassSource {
				// The connection may be unusable or in an unknown state.
				sc.Close()
				sc = nil
			}
		}
	}
}
