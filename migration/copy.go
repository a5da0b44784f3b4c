package migration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

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
}

// summary is the status's LastMessage.
func (r passResult) summary() string {
	s := fmt.Sprintf("copied %d messages (%s) in %d folders", r.copied, bytesize.Format(r.copiedBytes), r.foldersTotal)
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
func (m *Migrator) pass(ctx context.Context, job Job, progress ProgressFunc) (passResult, error) {
	var res passResult
	account, err := m.resolveTarget(ctx, job.Target)
	if err != nil {
		return res, err
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ps := &passState{m: m, job: job, account: account, progress: progress, cancel: cancel, statuses: map[string]FolderStatus{}}

	sc, err := m.dial(pctx, job)
	if err != nil {
		return res, err
	}
	folders, err := discover(pctx, sc)
	if err != nil {
		sc.Close()
		return res, ps.sourceErr(ctx, "", err)
	}
	specials, err := targetSpecials(pctx, m.opts.Store, account)
	if err != nil {
		sc.Close()
		return res, &Error{Class: classifyLocal(ctx, err), Target: job.Target, Err: err}
	}
	mapFolders(folders, job, specials)

	// Checkpoints fix a folder's target once it has one. The target's
	// folder records are read in one scan, not one read per folder.
	stored := map[string]store.Record{}
	err = scanPrefix(pctx, m.opts.Store, nsFolder, folderKey(job.Target, ""), "", func(r store.Record) error {
		stored[r.Key] = r
		return nil
	})
	if err != nil {
		sc.Close()
		return res, &Error{Class: classifyLocal(ctx, err), Target: job.Target, Err: err}
	}
	cps := map[string]*folderRecord{}
	for i := range folders {
		f := &folders[i]
		if f.Err != nil || f.Excluded {
			continue
		}
		key := folderKey(job.Target, f.Name)
		r, ok := stored[key]
		if !ok {
			continue
		}
		var cp folderRecord
		if err := store.DecodeJSON(r, &cp); err != nil {
			sc.Close()
			err = fmt.Errorf("migration: %s: %w", nsFolder, err)
			return res, &Error{Class: classifyLocal(ctx, err), Target: job.Target, Err: err}
		}
		if cp.Target != "" {
			f.Target = cp.Target
		}
		cps[f.Name] = &cp
	}

	groups := map[string][]*srcFolder{}
	var order []string
	for i := range folders {
		f := &folders[i]
		switch {
		case f.Err != nil:
			ps.setStatus(FolderStatus{Source: f.Name, Failed: 1})
			ps.fail(&Error{Class: ErrClassSource, Target: job.Target, Folder: f.Name, Err: f.Err})
			continue
		case f.Excluded:
			ps.setStatus(excludedStatus(pctx, sc, f, m.now()))
			continue
		}
		if err := ensureMailbox(pctx, m.opts.Store, account, f.Target); err != nil {
			sc.Close()
			return res, &Error{Class: classifyLocal(ctx, err), Target: job.Target, Folder: f.Name, Err: fmt.Errorf("create target mailbox %q: %w", f.Target, err)}
		}
		if f.NoSelect {
			ps.setStatus(FolderStatus{Source: f.Name, Target: f.Target, LastSync: m.now()})
			continue
		}
		if _, ok := groups[f.Target]; !ok {
			order = append(order, f.Target)
		}
		groups[f.Target] = append(groups[f.Target], f)
	}

	work := make(chan []*srcFolder)
	workers := min(m.opts.FolderParallel, len(order))
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

	res.copied, res.copiedBytes, res.flagUpdates = ps.doneMsgs.Load(), ps.doneBytes.Load(), ps.flagUpdates.Load()
	for _, fs := range ps.statuses {
		res.folders = append(res.folders, fs)
		res.failed += fs.Failed
	}
	sort.Slice(res.folders, func(i, j int) bool { return res.folders[i].Source < res.folders[j].Source })
	res.foldersTotal = len(res.folders)
	if ctx.Err() != nil {
		return res, &Error{Class: ErrClassCanceled, Target: job.Target, Err: ctx.Err()}
	}
	return res, ps.err
}

// resolveTarget maps the target address to its store account.
func (m *Migrator) resolveTarget(ctx context.Context, addr string) (string, error) {
	e, err := m.opts.Directory.LookupAddress(ctx, addr)
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
	if _, err := m.opts.Store.Account(ctx, e.User.ID); err != nil {
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

// srcMsg is a source message's metadata.
type srcMsg struct {
	uid   uint32
	seq   uint32
	size  int64
	date  time.Time
	flags []string // canonical, sorted
	hash  string   // Message-ID hash, when fetched
}

// folderWork is one folder between scan and copy.
type folderWork struct {
	f      *srcFolder
	key    string // folder record key
	cp     folderRecord
	prefix string // message record prefix under the current UIDVALIDITY
	toCopy []srcMsg
	all    []uint32 // every source UID of the folder, ascending
	maxUID uint32
	fs     FolderStatus
	// failed are source UIDs of toCopy that the source still lists but
	// did not send in its answer to the body FETCH (or sent as NIL).
	failed []uint32
}

// copyGroup scans every folder of a group (carrying flag changes over and
// reconciling lost appends) and then copies them.
func (ps *passState) copyGroup(ctx context.Context, sc *sourceConn, g []*srcFolder, cps map[string]*folderRecord) error {
	st := ps.m.opts.Store
	tname := g[0].Target
	// M: the highest UIDNEXT any folder of the group recorded. An append
	// whose checkpoint was lost is the group's last append, so it is at
	// or above M.
	var m uint32
	for _, f := range g {
		if cp := cps[f.Name]; cp != nil {
			m = max(m, cp.TargetUIDNext)
		}
	}
	var extra []store.Message
	if m > 0 {
		var err error
		extra, err = st.ListMessages(ctx, ps.account, tname, store.UIDSet{{Start: m, Stop: 0}})
		if err != nil {
			return &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Err: err}
		}
		extra = slices.DeleteFunc(extra, func(msg store.Message) bool { return msg.UID < m })
	}
	claimed := map[uint32]bool{}
	works := make([]*folderWork, 0, len(g))
	var firstErr error
	for _, f := range g {
		w, err := ps.scanFolder(ctx, sc, f, cps[f.Name], m, claimed)
		if err != nil {
			ps.setStatus(FolderStatus{Source: f.Name, Target: f.Target, Failed: 1})
			if c := ClassOf(err); c != ErrClassSource || ctx.Err() != nil {
				return err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		works = append(works, w)
	}
	// Reconcile only after every folder's records are known: a target
	// message some folder already maps is never taken for a lost append.
	if len(extra) > 0 {
		for _, w := range works {
			if err := ps.reconcile(ctx, sc, w, extra, claimed); err != nil {
				return err
			}
		}
		// A folder that could not be scanned may own an unclaimed copy;
		// appending now would record a bound above it and lose it.
		if firstErr != nil && slices.ContainsFunc(extra, func(m store.Message) bool { return !claimed[m.UID] }) {
			return firstErr
		}
	}
	for k, w := range works {
		err := ps.copyFolder(ctx, sc, w)
		w.fs.LastSync = ps.m.now()
		if err != nil {
			w.fs.Failed++
		}
		ps.setStatus(w.fs)
		if err != nil {
			// The failed folder may have unrecorded copies: no other
			// folder appends to this mailbox in this pass.
			for _, rest := range works[k+1:] {
				ps.setStatus(rest.fs)
			}
			return err
		}
	}
	if firstErr != nil {
		return firstErr
	}
	// Everything of the group is recorded: move M up to the mailbox's
	// UIDNEXT so that the next pass need not look at mail delivered since.
	mb, err := st.Mailbox(ctx, ps.account, tname)
	if err != nil {
		return &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Err: err}
	}
	err = st.UpdateRecords(ctx, func(tx store.RecordTx) error {
		for _, w := range works {
			w.cp.TargetUIDNext = max(w.cp.TargetUIDNext, mb.UIDNext)
			w.cp.Status = w.fs
			if err := txPutJSON(tx, nsFolder, w.key, w.cp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Err: err}
	}
	return nil
}

// normFlags converts source flags to the store's canonical form. \Recent
// is a session property (RFC 9051 §2.3.2) and is dropped, as are flags
// the store cannot keep (not atoms).
func normFlags(in []imap.Flag) []string {
	out := make([]string, 0, len(in))
	for _, f := range in {
		if c, err := store.CanonicalFlag(string(f)); err == nil {
			out = append(out, c)
		}
	}
	n, err := store.NormalizeFlags(out)
	if err != nil {
		return out
	}
	return n
}

// fetchMeta fetches UID, FLAGS, RFC822.SIZE and INTERNALDATE of every
// message (and the Message-ID header field if withID) in one command.
func fetchMeta(sc *sourceConn, set imap.NumSet, withID bool) ([]srcMsg, error) {
	opts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true}
	idSection := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
	if withID {
		opts.BodySection = []*imap.FetchItemBodySection{idSection}
	}
	cmd := sc.c.Fetch(set, opts)
	var out []srcMsg
	for {
		md := cmd.Next()
		if md == nil {
			break
		}
		buf, err := collectMessage(sc, md)
		if err != nil {
			cmd.Close()
			return nil, err
		}
		if buf.UID == 0 {
			continue
		}
		sm := srcMsg{uid: uint32(buf.UID), seq: buf.SeqNum, size: buf.RFC822Size, date: buf.InternalDate, flags: normFlags(buf.Flags)}
		if withID {
			sm.hash = messageIDHash(buf.FindBodySection(idSection))
		}
		out = append(out, sm)
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b srcMsg) int { return int(a.uid) - int(b.uid) })
	return out, nil
}

// scanFolder is step 5 for one folder.
//
// Target UIDs at or above m that the folder's records map are added to
// claimed, so that reconcile does not take them for lost appends.
func (ps *passState) scanFolder(ctx context.Context, sc *sourceConn, f *srcFolder, cp *folderRecord, m uint32, claimed map[uint32]bool) (*folderWork, error) {
	st := ps.m.opts.Store
	target := ps.job.Target
	srcErr := func(err error) error { return ps.sourceErr(ctx, f.Name, err) }
	locErr := func(err error) error {
		return &Error{Class: classifyLocal(ctx, err), Target: target, Folder: f.Name, Err: err}
	}
	sel, err := sc.c.Select(f.Wire, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, srcErr(fmt.Errorf("EXAMINE: %w", err))
	}
	w := &folderWork{f: f, key: folderKey(target, f.Name)}
	w.fs = FolderStatus{Source: f.Name, Target: f.Target, SourceMessages: int64(sel.NumMessages)}
	if cp == nil {
		// The first checkpoint is written before the first append, so
		// that a lost append is always above a recorded UIDNEXT.
		mb, err := st.Mailbox(ctx, ps.account, f.Target)
		if err != nil {
			return nil, locErr(err)
		}
		// Not above the group's bound: an unrecorded copy of another
		// folder of the group may lie between the two.
		bound := mb.UIDNext
		if m > 0 {
			bound = min(bound, m)
		}
		w.cp = folderRecord{UIDValidity: sel.UIDValidity, Target: f.Target, TargetUIDNext: bound}
		if err := st.UpdateRecords(ctx, func(tx store.RecordTx) error { return txPutJSON(tx, nsFolder, w.key, w.cp) }); err != nil {
			return nil, locErr(err)
		}
	} else {
		w.cp = *cp
	}
	repair := w.cp.UIDValidity != sel.UIDValidity
	var msgs []srcMsg
	if sel.NumMessages > 0 {
		var set imap.UIDSet
		set.AddRange(1, 0)
		if msgs, err = fetchMeta(sc, set, repair); err != nil {
			return nil, srcErr(fmt.Errorf("UID FETCH metadata: %w", err))
		}
	}
	if repair {
		if err := ps.repair(ctx, sc, w, sel.UIDValidity, msgs); err != nil {
			return nil, err
		}
	}
	w.prefix = msgPrefix(target, f.Name, w.cp.UIDValidity)
	byUID := make(map[uint32]int, len(msgs))
	w.all = make([]uint32, len(msgs))
	for i, sm := range msgs {
		byUID[sm.uid] = i
		w.all[i] = sm.uid
		w.fs.SourceBytes += sm.size
		w.maxUID = max(w.maxUID, sm.uid)
	}

	// Carry flag changes over and find what is already copied.
	mapped := map[uint32]bool{}
	var updates []flagUpdate
	var copied, copiedBytes int64
	err = scanPrefix(ctx, st, nsMsg, w.prefix, "", func(r store.Record) error {
		uid, ok := msgKeyUID(w.prefix, r.Key)
		if !ok {
			return nil
		}
		var mr msgRecord
		if err := store.DecodeJSON(r, &mr); err != nil {
			return fmt.Errorf("message: %w", err)
		}
		copied++
		copiedBytes += mr.Size
		if m > 0 && mr.TargetUID >= m {
			claimed[mr.TargetUID] = true
		}
		if uid > w.cp.LastUID {
			mapped[uid] = true
		}
		if i, ok := byUID[uid]; ok && !flagsEqual(mr.Flags, msgs[i].flags) {
			updates = append(updates, flagUpdate{key: r.Key, rec: mr, now: msgs[i].flags})
		}
		return nil
	})
	if err != nil {
		return nil, locErr(err)
	}

	tooLarge := map[uint32]bool{}
	for _, u := range w.cp.TooLarge {
		tooLarge[u] = true
	}
	for _, sm := range msgs {
		if sm.uid <= w.cp.LastUID || mapped[sm.uid] {
			continue
		}
		if sm.size > ps.m.opts.MaxMessageSize {
			if !tooLarge[sm.uid] && len(w.cp.TooLarge) < maxTooLargeUIDs {
				w.cp.TooLarge = append(w.cp.TooLarge, sm.uid)
				tooLarge[sm.uid] = true
			}
			continue
		}
		w.toCopy = append(w.toCopy, sm)
	}
	if err := ps.applyFlags(ctx, w.cp.Target, updates); err != nil {
		return nil, locErr(err)
	}
	w.cp.Status.Copied, w.cp.Status.CopiedBytes = copied, copiedBytes
	w.fs.Copied, w.fs.CopiedBytes = copied, copiedBytes
	w.fs.SkippedTooLarge = int64(len(w.cp.TooLarge))
	w.fs.Target = w.cp.Target
	for _, sm := range w.toCopy {
		ps.totalMsgs.Add(1)
		ps.totalBytes.Add(sm.size)
	}
	ps.report("")
	return w, nil
}

// flagUpdate is one copied message whose source flags changed.
type flagUpdate struct {
	key string
	rec msgRecord
	now []string
}

func flagsEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// diffFlags returns what to add to and remove from a copy so that the
// source's change from last to now is applied. Only flags that changed
// on the source are touched: flags the user set or cleared in Mailyard
// for other reasons stay as they are.
func diffFlags(last, now []string) (add, remove []string) {
	has := func(list []string, f string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, f) })
	}
	for _, f := range now {
		if !has(last, f) {
			add = append(add, f)
		}
	}
	for _, f := range last {
		if !has(now, f) {
			remove = append(remove, f)
		}
	}
	return add, remove
}

// applyFlags applies source flag changes to the copies (one StoreFlags
// per distinct change) and then records the new last-seen flags. A crash
// in between re-applies the same idempotent change on the next pass.
func (ps *passState) applyFlags(ctx context.Context, mailbox string, updates []flagUpdate) error {
	if len(updates) == 0 {
		return nil
	}
	st := ps.m.opts.Store
	type op struct {
		flags []string
		op    store.FlagOp
	}
	sets := map[string]*store.UIDSet{}
	ops := map[string]op{}
	add := func(o store.FlagOp, flags []string, uid uint32) {
		if len(flags) == 0 {
			return
		}
		k := fmt.Sprint(o, flags)
		if sets[k] == nil {
			sets[k] = &store.UIDSet{}
			ops[k] = op{flags, o}
		}
		*sets[k] = append(*sets[k], store.UIDRange{Start: uid, Stop: uid})
	}
	for _, u := range updates {
		a, r := diffFlags(u.rec.Flags, u.now)
		add(store.FlagsAdd, a, u.rec.TargetUID)
		add(store.FlagsRemove, r, u.rec.TargetUID)
	}
	for k, set := range sets {
		o := ops[k]
		if _, err := st.StoreFlags(ctx, ps.account, mailbox, store.StoreFlagsRequest{UIDs: *set, Op: o.op, Flags: o.flags}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("carry flags over: %w", err)
		}
	}
	const batch = 500
	for i := 0; i < len(updates); i += batch {
		part := updates[i:min(i+batch, len(updates))]
		err := st.UpdateRecords(ctx, func(tx store.RecordTx) error {
			for _, u := range part {
				u.rec.Flags = u.now
				if err := txPutJSON(tx, nsMsg, u.key, u.rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	ps.flagUpdates.Add(int64(len(updates)))
	return nil
}

// reconciled is a source message found already copied.
type reconciled struct {
	uid uint32
	rec msgRecord
	now []string // the source's flags now
}

// reconcile pairs target messages at or above the group's last recorded
// UIDNEXT (extra) with messages w would copy, by size, INTERNALDATE and
// first maxHeaderScan bytes: such a message is an append whose checkpoint
// was lost (the process died between the two commits). The pairs are
// recorded and dropped from w.toCopy. A message delivered to the target by
// other means pairs only if it has the same size, date and first bytes,
// that is, if it is the same message.
func (ps *passState) reconcile(ctx context.Context, sc *sourceConn, w *folderWork, extra []store.Message, claimed map[uint32]bool) error {
	if len(extra) == 0 || len(w.toCopy) == 0 {
		return nil
	}
	st := ps.m.opts.Store
	type sd struct {
		size int64
		date int64
	}
	cands := map[sd][]store.Message{}
	for _, msg := range extra {
		if !claimed[msg.UID] {
			k := sd{msg.Size, msg.InternalDate.Unix()}
			cands[k] = append(cands[k], msg)
		}
	}
	var set imap.UIDSet
	for _, sm := range w.toCopy {
		if len(cands[sd{sm.size, sm.date.Unix()}]) > 0 {
			set.AddNum(imap.UID(sm.uid))
		}
	}
	if len(set) == 0 {
		return nil
	}
	sel, err := sc.c.Select(w.f.Wire, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return ps.sourceErr(ctx, w.f.Name, fmt.Errorf("EXAMINE: %w", err))
	}
	if sel.UIDValidity != w.cp.UIDValidity {
		return ps.sourceErr(ctx, w.f.Name, fmt.Errorf("UIDVALIDITY changed during the pass (%d -> %d)", w.cp.UIDValidity, sel.UIDValidity))
	}
	// A lost append is a byte-for-byte copy, so the candidates are
	// compared by their first maxHeaderScan bytes (the whole message when
	// it is smaller; the header with its Message-ID otherwise), not by
	// Message-ID alone: mail delivered to the mailbox meanwhile (the
	// user's own, maybe without a Message-ID) may share size and date
	// with a source message and must not make it count as copied.
	prefixes, err := fetchPrefixHashes(sc, set)
	if err != nil {
		return ps.sourceErr(ctx, w.f.Name, fmt.Errorf("UID FETCH BODY.PEEK[]<0.%d>: %w", maxHeaderScan, err))
	}
	type copyID struct{ prefix, msgID string }
	targetIDs := map[uint32]copyID{}
	var out []reconciled
	for _, sm := range w.toCopy {
		p, ok := prefixes[sm.uid]
		if !ok {
			continue
		}
		for _, tm := range cands[sd{sm.size, sm.date.Unix()}] {
			if claimed[tm.UID] {
				continue
			}
			id, ok := targetIDs[tm.UID]
			if !ok {
				rc, err := st.OpenBody(ctx, ps.account, w.cp.Target, tm.UID)
				if err != nil {
					return &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Folder: w.f.Name, Err: err}
				}
				b, err := io.ReadAll(io.LimitReader(rc, maxHeaderScan))
				rc.Close()
				if err != nil {
					return &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Folder: w.f.Name, Err: err}
				}
				id = copyID{prefixHash(b), messageIDHash(b)}
				targetIDs[tm.UID] = id
			}
			if id.prefix == p {
				claimed[tm.UID] = true
				out = append(out, reconciled{uid: sm.uid, rec: msgRecord{TargetUID: tm.UID, Size: sm.size, Date: sm.date.Unix(), Hash: id.msgID, Flags: tm.Flags}, now: sm.flags})
				break
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	done := map[uint32]bool{}
	err = st.UpdateRecords(ctx, func(tx store.RecordTx) error {
		for _, r := range out {
			if err := txPutJSON(tx, nsMsg, msgKey(w.prefix, r.uid), r.rec); err != nil {
				return err
			}
			w.cp.TargetUIDNext = max(w.cp.TargetUIDNext, r.rec.TargetUID+1)
		}
		return txPutJSON(tx, nsFolder, w.key, w.cp)
	})
	if err != nil {
		return &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Folder: w.f.Name, Err: err}
	}
	// The copies have the flags of the pass that appended them; bring
	// them to the source's flags now.
	var updates []flagUpdate
	for _, r := range out {
		done[r.uid] = true
		w.fs.Copied++
		w.fs.CopiedBytes += r.rec.Size
		if !flagsEqual(r.rec.Flags, r.now) {
			updates = append(updates, flagUpdate{key: msgKey(w.prefix, r.uid), rec: r.rec, now: r.now})
		}
	}
	if err := ps.applyFlags(ctx, w.cp.Target, updates); err != nil {
		return &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Folder: w.f.Name, Err: err}
	}
	w.toCopy = slices.DeleteFunc(w.toCopy, func(sm srcMsg) bool { return done[sm.uid] })
	ps.totalMsgs.Add(-int64(len(out)))
	for _, r := range out {
		ps.totalBytes.Add(-r.rec.Size)
	}
	ps.m.log.Info("migration reconciled copies whose checkpoint was lost", "target", ps.job.Target, "folder", w.f.Name, "count", len(out))
	return nil
}

// fetchPrefixHashes fetches BODY.PEEK[]<0.maxHeaderScan> of every message
// in set and returns the prefixHash of each by UID.
func fetchPrefixHashes(sc *sourceConn, set imap.UIDSet) (map[uint32]string, error) {
	sec := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: maxHeaderScan}}
	cmd := sc.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}})
	out := map[uint32]string{}
	for {
		md := cmd.Next()
		if md == nil {
			break
		}
		buf, err := collectMessage(sc, md)
		if err != nil {
			cmd.Close()
			return nil, err
		}
		if b := buf.FindBodySection(sec); buf.UID != 0 && b != nil {
			out[uint32(buf.UID)] = prefixHash(b)
		}
	}
	return out, cmd.Close()
}

// prefixHash hashes the first maxHeaderScan bytes of a message.
func prefixHash(b []byte) string {
	sum := sha256.Sum256(b[:min(len(b), maxHeaderScan)])
	return hex.EncodeToString(sum[:])
}

// repair re-pairs a folder's copies after the source's UIDVALIDITY
// changed (RFC 9051 §2.3.1.1: the old UIDs mean nothing now): each old
// record is matched to a current source message with the same size,
// INTERNALDATE and Message-ID (without a Message-ID: the same first bytes,
// see repairByBytes) and re-keyed under its new UID, in one
// transaction together with the new UIDVALIDITY, so a crash leaves
// either the old or the new state. Messages without a pair are copied
// afterwards like new mail; old records without a pair (the message is
// gone from the source) are dropped, their copies stay.
func (ps *passState) repair(ctx context.Context, sc *sourceConn, w *folderWork, uidValidity uint32, msgs []srcMsg) error {
	st := ps.m.opts.Store
	oldPrefix := msgPrefix(ps.job.Target, w.f.Name, w.cp.UIDValidity)
	newPrefix := msgPrefix(ps.job.Target, w.f.Name, uidValidity)
	var oldKeys []string
	pool := map[pairKey][]msgRecord{}
	err := scanPrefix(ctx, st, nsMsg, oldPrefix, "", func(r store.Record) error {
		var mr msgRecord
		if err := store.DecodeJSON(r, &mr); err != nil {
			return fmt.Errorf("message: %w", err)
		}
		oldKeys = append(oldKeys, r.Key)
		pool[mr.key()] = append(pool[mr.key()], mr)
		return nil
	})
	if err != nil {
		return &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Folder: w.f.Name, Err: err}
	}
	type pair struct {
		uid uint32
		rec msgRecord
	}
	var pairs []pair
	var noID []srcMsg
	for _, sm := range msgs {
		k := pairKey{sm.size, sm.date.Unix(), sm.hash}
		if recs := pool[k]; len(recs) > 0 {
			if sm.hash == "" {
				noID = append(noID, sm)
				continue
			}
			pairs = append(pairs, pair{sm.uid, recs[0]})
			pool[k] = recs[1:]
		}
	}
	if len(noID) > 0 {
		more, err := ps.repairByBytes(ctx, sc, w, msgs, noID, pool)
		if err != nil {
			return err
		}
		for _, p := range more {
			pairs = append(pairs, pair(p))
		}
	}
	old := w.cp
	w.cp.UIDValidity = uidValidity
	w.cp.LastUID = 0
	w.cp.TooLarge = nil
	err = st.UpdateRecords(ctx, func(tx store.RecordTx) error {
		for _, k := range oldKeys {
			if err := tx.Delete(nsMsg, k); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		for _, p := range pairs {
			if err := txPutJSON(tx, nsMsg, msgKey(newPrefix, p.uid), p.rec); err != nil {
				return err
			}
		}
		return txPutJSON(tx, nsFolder, w.key, w.cp)
	})
	if err != nil {
		w.cp = old
		return &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Folder: w.f.Name, Err: err}
	}
	ps.m.log.Info("migration source UIDVALIDITY changed; copies re-paired", "target", ps.job.Target, "folder", w.f.Name,
		"old", old.UIDValidity, "new", uidValidity, "paired", len(pairs), "records", len(oldKeys))
	return nil
}

// repairByBytes pairs source messages without a Message-ID (noID) with
// old records of the same size and date whose copy has the same first
// maxHeaderScan bytes: size and date alone would let a new message take
// the record of a deleted one of the same size and date, and never be
// copied. A record whose copy the user has deleted cannot be compared; it
// takes a message left over, as the Message-ID pairing would, so that the
// deleted copy does not come back.
func (ps *passState) repairByBytes(ctx context.Context, sc *sourceConn, w *folderWork, msgs, noID []srcMsg, pool map[pairKey][]msgRecord) ([]reconciledPair, error) {
	all := make([]uint32, len(msgs))
	for i, sm := range msgs {
		all[i] = sm.uid
	}
	src := map[uint32]string{}
	for _, set := range bodyFetchSets(all, noID, maxFetchSetLen) {
		part, err := fetchPrefixHashes(sc, set)
		if err != nil {
			return nil, ps.sourceErr(ctx, w.f.Name, fmt.Errorf("UID FETCH BODY.PEEK[]<0.%d>: %w", maxHeaderScan, err))
		}
		maps.Copy(src, part)
	}
	const gone = "" // prefix of a copy that no longer exists
	target := map[uint32]string{}
	copyPrefix := func(uid uint32) (string, error) {
		if p, ok := target[uid]; ok {
			return p, nil
		}
		rc, err := ps.m.opts.Store.OpenBody(ctx, ps.account, w.cp.Target, uid)
		if errors.Is(err, store.ErrNotFound) {
			target[uid] = gone
			return gone, nil
		}
		if err != nil {
			return "", &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Folder: w.f.Name, Err: err}
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxHeaderScan))
		rc.Close()
		if err != nil {
			return "", &Error{Class: classifyLocal(ctx, err), Target: ps.job.Target, Folder: w.f.Name, Err: err}
		}
		target[uid] = prefixHash(b)
		return target[uid], nil
	}
	var out []reconciledPair
	var left []srcMsg
	for _, sm := range noID {
		k := pairKey{sm.size, sm.date.Unix(), ""}
		sp, ok := src[sm.uid]
		matched := false
		for i, rec := range pool[k] {
			if !ok {
				break
			}
			tp, err := copyPrefix(rec.TargetUID)
			if err != nil {
				return nil, err
			}
			if tp == sp {
				out = append(out, reconciledPair{sm.uid, rec})
				pool[k] = slices.Delete(pool[k], i, i+1)
				matched = true
				break
			}
		}
		if !matched && ok {
			left = append(left, sm)
		}
	}
	for _, sm := range left {
		k := pairKey{sm.size, sm.date.Unix(), ""}
		for i, rec := range pool[k] {
			if tp, err := copyPrefix(rec.TargetUID); err != nil {
				return nil, err
			} else if tp == gone {
				out = append(out, reconciledPair{sm.uid, rec})
				pool[k] = slices.Delete(pool[k], i, i+1)
				break
			}
		}
	}
	return out, nil
}

// reconciledPair is a source UID and the record re-paired with it.
type reconciledPair struct {
	uid uint32
	rec msgRecord
}

// copyFolder is step 6: one UID FETCH for every message left, each body
// streamed into the store and checkpointed.
func (ps *passState) copyFolder(ctx context.Context, sc *sourceConn, w *folderWork) error {
	st := ps.m.opts.Store
	target := ps.job.Target
	locErr := func(err error) error {
		return &Error{Class: classifyLocal(ctx, err), Target: target, Folder: w.f.Name, Err: err}
	}
	if len(w.toCopy) > 0 {
		if err := ps.fetchBodies(ctx, sc, w); err != nil {
			return err
		}
	}
	// Every message up to the highest UID seen is now copied, skipped or
	// gone, except those the source failed to send: LastUID stays below
	// them so that the next pass tries them again (the copies above them
	// have their records).
	last := w.maxUID
	if len(w.failed) > 0 {
		w.fs.Failed += int64(len(w.failed))
		last = slices.Min(w.failed) - 1
		ps.m.log.Warn("migration: the source did not send some messages; they are retried on the next pass",
			"target", target, "folder", w.f.Name, "count", len(w.failed))
	}
	w.cp.LastUID = max(w.cp.LastUID, last)
	w.cp.Status = w.fs
	if err := st.UpdateRecords(ctx, func(tx store.RecordTx) error { return txPutJSON(tx, nsFolder, w.key, w.cp) }); err != nil {
		return locErr(err)
	}
	return nil
}

// fetchBodies streams the bodies of w.toCopy into the target: one UID
// FETCH BODY.PEEK[] for all of them; each literal is read by its own
// store.Append, and once it is read the next one starts while the first
// waits for its fsyncs and commit (up to Options.AppendParallel at once).
func (ps *passState) fetchBodies(ctx context.Context, sc *sourceConn, w *folderWork) error {
	st := ps.m.opts.Store
	target := ps.job.Target
	srcErr := func(err error) error { return ps.sourceErr(ctx, w.f.Name, err) }
	locErr := func(err error) error {
		return &Error{Class: classifyLocal(ctx, err), Target: target, Folder: w.f.Name, Err: err}
	}
	sel, err := sc.c.Select(w.f.Wire, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return srcErr(fmt.Errorf("EXAMINE: %w", err))
	}
	if sel.UIDValidity != w.cp.UIDValidity {
		return srcErr(fmt.Errorf("UIDVALIDITY changed during the pass (%d -> %d)", w.cp.UIDValidity, sel.UIDValidity))
	}
	mb, err := st.Mailbox(ctx, ps.account, w.cp.Target)
	if err != nil {
		return locErr(err)
	}
	byUID := make(map[uint32]int, len(w.toCopy))
	bySeq := make(map[uint32]uint32, len(w.toCopy))
	for i, sm := range w.toCopy {
		byUID[sm.uid] = i
		bySeq[sm.seq] = sm.uid
	}
	q := &appendQueue{ps: ps, w: w, floor: mb.UIDNext, done: make([]bool, len(w.toCopy))}
	q.ckpt = newCheckpointer(ctx, ps, w)
	sem := make(chan struct{}, ps.m.opts.AppendParallel)
	started := make([]bool, len(w.toCopy))
	var wg sync.WaitGroup
	var cmd *imapclient.FetchCommand
	var cmdErr error
	// finish waits for the appends and the checkpoints. On failure the
	// raw connection is closed first: the client's reader waits until
	// the current literal is consumed, and a read error on the closed
	// connection is what releases it; the rest of a FETCH that may be
	// gigabytes long is not read.
	finish := func(failed bool) {
		if failed {
			sc.dead = true
			sc.conn.Conn.Close()
		}
		if cmd != nil {
			if err := cmd.Close(); err != nil && cmdErr == nil {
				cmdErr = err
			}
		}
		if failed {
			sc.c.Close()
		}
		wg.Wait()
		if err := q.ckpt.close(); err != nil && q.firstErr() == nil {
			q.fail(locErr(fmt.Errorf("checkpoint: %w", err)))
		}
	}
fetch:
	for _, set := range bodyFetchSets(w.all, w.toCopy, maxFetchSetLen) {
		if cmd != nil {
			err := cmd.Close()
			cmd = nil
			if err != nil {
				cmdErr = err
				break fetch
			}
		}
		cmd = sc.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		for {
			md := cmd.Next()
			if md == nil {
				break
			}
			var uid uint32
			for {
				item := md.Next()
				if item == nil {
					break
				}
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					uid = uint32(it.UID)
				case imapclient.FetchItemDataBodySection:
					if uid == 0 {
						// BODY[] before UID: the sequence number from the
						// metadata fetch names it (EXAMINE sees no expunges
						// of its own).
						uid = bySeq[md.SeqNum]
					}
					i, ok := byUID[uid]
					if !ok || it.Literal == nil || started[i] {
						continue
					}
					started[i] = true
					if it.Literal.Size() > ps.m.opts.MaxMessageSize {
						q.skipTooLarge(i, uid)
						continue
					}
					if q.firstErr() != nil {
						break fetch
					}
					select {
					case sem <- struct{}{}:
					case <-ctx.Done():
						break fetch
					}
					j := q.start(i, uid)
					consumed := make(chan struct{})
					g := newLiteralGuard(it)
					lit := &eofSignal{r: g, ch: consumed}
					var body io.Reader = lit
					var held *[]byte
					if g.size <= maxHeldLiteral {
						held = ps.m.holdBuffer()
					}
					if held != nil {
						// Small messages are read off the connection at
						// once, so the next literal streams in while this
						// one's blob is created, written and synced: the
						// FETCH no longer waits for the disk per message.
						n, err := io.ReadFull(lit, (*held)[:g.size])
						body = bytes.NewReader((*held)[:n])
						if err != nil {
							body = io.MultiReader(body, errReader{err})
						}
						lit.signal()
					}
					wg.Go(func() {
						defer func() { <-sem }()
						if held != nil {
							defer ps.m.releaseBuffer(held)
						}
						sn := &headerSniffer{}
						sn.reset(body)
						sm := w.toCopy[i]
						// An append that has its body finishes even when the
						// pass is canceled (Ctrl-C): a streamed body whose
						// connection is closed fails on its own.
						msg, err := st.Append(context.WithoutCancel(ctx), ps.account, w.cp.Target, sn, store.AppendOptions{Flags: sm.flags, InternalDate: sm.date})
						lit.signal()
						if err != nil {
							var qe *store.QuotaError
							if !errors.As(err, &qe) && classifySource(err) == ErrClassConnection {
								err = srcErr(fmt.Errorf("reading message %d: %w", uid, err))
							} else {
								err = locErr(fmt.Errorf("append: %w", err))
							}
						}
						q.complete(j, msg, sn.hash(), err)
					})
					// The literal is read from the connection; only one
					// reader at a time.
					<-consumed
					if g.broken() {
						// The client's reader goroutine decodes again while
						// the literal's rest is unread; md.Next and
						// cmd.Close would read it concurrently (see
						// literalGuard). The client is closed first.
						sc.abandon()
						if cmdErr == nil {
							cmdErr = fmt.Errorf("reading message %d: %w", uid, g.err)
						}
						break fetch
					}
				}
			}
		}
	}
	failed := q.firstErr() != nil || ctx.Err() != nil || cmdErr != nil
	finish(failed)
	if err := q.firstErr(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return srcErr(ctx.Err())
	}
	if cmdErr != nil {
		return srcErr(fmt.Errorf("UID FETCH BODY.PEEK[]: %w", cmdErr))
	}
	// A message missing from the answer was expunged since the scan, or
	// the source could not send it (some servers leave out, or send as
	// NIL, a message they cannot render, and still answer OK). Only the
	// first is done; the source still lists the others.
	var missing imap.UIDSet
	for i, sm := range w.toCopy {
		if !started[i] {
			missing.AddNum(imap.UID(sm.uid))
		}
	}
	if len(missing) > 0 {
		still, err := fetchMeta(sc, missing, false)
		if err != nil {
			return srcErr(fmt.Errorf("UID FETCH of messages missing from the body FETCH: %w", err))
		}
		for _, sm := range still {
			w.failed = append(w.failed, sm.uid)
		}
	}
	return nil
}

// maxHeldLiteral is the largest message body fetchBodies reads into
// memory before appending it (larger ones stream from the connection).
const maxHeldLiteral = 1 << 20

// maxHeldBodies bounds the bodies held in memory at once by one Migrator
// (maxHeldBodies × maxHeldLiteral = 32 MiB); when all are taken, bodies
// stream from the connection as large ones do.
const maxHeldBodies = 32

// holdBuffer returns a maxHeldLiteral buffer for a body, or nil when
// maxHeldBodies are in use.
func (m *Migrator) holdBuffer() *[]byte {
	select {
	case m.heldSlots <- struct{}{}:
	default:
		return nil
	}
	if b, ok := m.heldBufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, maxHeldLiteral)
	return &b
}

// releaseBuffer gives back a buffer from holdBuffer.
func (m *Migrator) releaseBuffer(b *[]byte) {
	m.heldBufs.Put(b)
	<-m.heldSlots
}

// errReader fails every read with err (a held body cut short by the
// connection: the append fails as a streamed one would).
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// maxFetchSetLen bounds the UID set of one body FETCH, in octets, so
// that its command line stays within what servers accept (RFC 7162 §4
// asks clients to keep command lines under 8192 octets; Dovecot refuses
// lines over 64 KiB).
const maxFetchSetLen = 7000

// bodyFetchSets returns the UID sets of the body FETCH of toCopy (sorted
// by UID), given every UID of the folder (ascending): a range spans
// consecutive messages of the folder that are all to be copied, across
// UIDs no message has (a folder's UIDs have gaps wherever mail was
// deleted, and listing every UID would make the line grow with the
// folder), and the ranges are split into sets of at most maxLen octets.
func bodyFetchSets(all []uint32, toCopy []srcMsg, maxLen int) []imap.UIDSet {
	want := make(map[uint32]bool, len(toCopy))
	for _, sm := range toCopy {
		want[sm.uid] = true
	}
	var sets []imap.UIDSet
	var cur imap.UIDSet
	curLen := 0
	add := func(start, stop uint32) {
		n := len(strconv.FormatUint(uint64(start), 10)) + 1
		if stop != start {
			n += 1 + len(strconv.FormatUint(uint64(stop), 10))
		}
		if curLen > 0 && curLen+n > maxLen {
			sets = append(sets, cur)
			cur, curLen = nil, 0
		}
		cur = append(cur, imap.UIDRange{Start: imap.UID(start), Stop: imap.UID(stop)})
		curLen += n
	}
	var start, stop uint32
	open := false
	for _, u := range all {
		if want[u] {
			if !open {
				start, open = u, true
			}
			stop = u
			continue
		}
		if open {
			add(start, stop)
			open = false
		}
	}
	if open {
		add(start, stop)
	}
	if len(cur) > 0 {
		sets = append(sets, cur)
	}
	return sets
}

// eofSignal closes ch when its reader is exhausted (or fails), or when
// signal is called, whichever is first.
type eofSignal struct {
	r    io.Reader
	ch   chan struct{}
	once sync.Once
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.signal()
	}
	return n, err
}

func (e *eofSignal) signal() { e.once.Do(func() { close(e.ch) }) }

// appendQueue orders a folder's concurrent appends for checkpointing.
// Appends complete in any order and the store numbers them in commit
// order, so a checkpoint covers the longest finished prefix (in fetch
// order) and records as TargetUIDNext a bound every append it does not
// cover is at or above: the UID of a finished one, or for one still
// running the mailbox's UIDNEXT lower bound when it started (UIDs only
// grow). Reconcile then finds every unrecorded copy at or above the
// recorded value.
type appendQueue struct {
	ps   *passState
	w    *folderWork
	ckpt *checkpointer

	mu    sync.Mutex
	jobs  []*appendJob // started, not yet checkpointed, in fetch order
	floor uint32       // the mailbox's UIDNEXT is at least this
	done  []bool       // w.toCopy[i] copied or skipped
	next  int          // w.toCopy[:next] are all done
	err   error
}

type appendJob struct {
	i        int
	uid      uint32
	floor    uint32
	finished bool
	msg      store.Message
	hash     string
}

func (q *appendQueue) firstErr() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

func (q *appendQueue) fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
}

func (q *appendQueue) start(i int, uid uint32) *appendJob {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := &appendJob{i: i, uid: uid, floor: q.floor}
	q.jobs = append(q.jobs, j)
	return j
}

// skipTooLarge marks a message whose literal is over the limit (its
// RFC822.SIZE said otherwise).
func (q *appendQueue) skipTooLarge(i int, uid uint32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.w.cp.TooLarge) < maxTooLargeUIDs {
		q.w.cp.TooLarge = append(q.w.cp.TooLarge, uid)
	}
	q.w.fs.SkippedTooLarge++
	q.markDone(i)
}

func (q *appendQueue) markDone(i int) {
	q.done[i] = true
	for q.next < len(q.done) && q.done[q.next] {
		q.next++
	}
	if q.next > 0 {
		q.w.cp.LastUID = max(q.w.cp.LastUID, q.w.toCopy[q.next-1].uid)
	}
}

// complete records a finished append and queues the checkpoint of the
// finished prefix.
func (q *appendQueue) complete(j *appendJob, msg store.Message, hash string, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err != nil {
		if q.err == nil {
			q.err = err
		}
		return
	}
	j.finished, j.msg, j.hash = true, msg, hash
	q.floor = max(q.floor, msg.UID+1)
	var batch []pendingCheckpoint
	for len(q.jobs) > 0 && q.jobs[0].finished {
		h := q.jobs[0]
		q.jobs = q.jobs[1:]
		sm := q.w.toCopy[h.i]
		batch = append(batch, pendingCheckpoint{msgKey(q.w.prefix, h.uid),
			msgRecord{TargetUID: h.msg.UID, Size: h.msg.Size, Date: sm.date.Unix(), Hash: h.hash, Flags: sm.flags}})
		q.markDone(h.i)
		q.w.fs.Copied++
		q.w.fs.CopiedBytes += h.msg.Size
	}
	if len(batch) == 0 {
		return
	}
	bound := q.floor
	for _, o := range q.jobs {
		if o.finished {
			bound = min(bound, o.msg.UID)
		} else {
			bound = min(bound, o.floor)
		}
	}
	q.w.cp.TargetUIDNext = bound
	q.w.cp.Status = q.w.fs
	if err := q.ckpt.add(batch, q.w.cp); err != nil && q.err == nil {
		q.err = &Error{Class: classifyLocal(q.ckpt.ctx, err), Target: q.ps.job.Target, Folder: q.w.f.Name, Err: fmt.Errorf("checkpoint: %w", err)}
	}
}

// maxPendingCheckpoints bounds the appends a checkpointer holds.
const maxPendingCheckpoints = 256

// checkpointer writes a folder's checkpoints behind the appends: every
// durable append is queued, and one record transaction writes all queued
// message records with the folder record as of the latest of them. The
// next append proceeds meanwhile, so the store's group commit serves the
// append and the checkpoint together instead of two fsyncs per message.
// The appends not yet checkpointed when the process dies are the group's
// latest, above every recorded TargetUIDNext, which is where reconcile
// looks for them.
type checkpointer struct {
	ctx context.Context
	ps  *passState
	w   *folderWork

	mu      sync.Mutex
	cond    *sync.Cond
	pending []pendingCheckpoint
	cp      folderRecord
	err     error
	closed  bool
	done    chan struct{}
}

type pendingCheckpoint struct {
	key string
	rec msgRecord
}

func newCheckpointer(ctx context.Context, ps *passState, w *folderWork) *checkpointer {
	c := &checkpointer{ctx: ctx, ps: ps, w: w, done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	go c.run()
	return c
}

// add queues appended messages and the folder record that covers them;
// it waits while the queue is full and returns an earlier write's error.
func (c *checkpointer) add(recs []pendingCheckpoint, cp folderRecord) error {
	cp.TooLarge = slices.Clone(cp.TooLarge)
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) >= maxPendingCheckpoints && c.err == nil {
		c.cond.Wait()
	}
	if c.err != nil {
		return c.err
	}
	c.pending = append(c.pending, recs...)
	c.cp = cp
	c.cond.Broadcast()
	return nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	st := c.ps.m.opts.Store
	for {
		c.mu.Lock()
		for len(c.pending) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.pending) == 0 || c.err != nil {
			c.mu.Unlock()
			return
		}
		batch, cp := c.pending, c.cp
		c.pending = nil
		c.cond.Broadcast()
		c.mu.Unlock()
		err := st.UpdateRecords(c.ctx, func(tx store.RecordTx) error {
			for _, p := range batch {
				if err := txPutJSON(tx, nsMsg, p.key, p.rec); err != nil {
					return err
				}
			}
			return txPutJSON(tx, nsFolder, c.w.key, cp)
		})
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		var bytes int64
		for _, p := range batch {
			bytes += p.rec.Size
		}
		c.ps.doneMsgs.Add(int64(len(batch)))
		c.ps.doneBytes.Add(bytes)
		c.ps.report(c.w.f.Name)
	}
}

// close writes what is queued and stops; it returns the first write
// error.
func (c *checkpointer) close() error {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
