package migration

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/store"
)

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
	var out []srcMsg
	err := fetchEach(sc, set, opts, func(buf *imapclient.FetchMessageBuffer) {
		if buf.UID == 0 {
			return
		}
		sm := srcMsg{uid: uint32(buf.UID), seq: buf.SeqNum, size: buf.RFC822Size, date: buf.InternalDate, flags: normFlags(buf.Flags)}
		if withID {
			sm.hash = messageIDHash(buf.FindBodySection(idSection))
		}
		out = append(out, sm)
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b srcMsg) int { return int(a.uid) - int(b.uid) })
	return out, nil
}

// fetchEach runs one FETCH and hands each answer, collected by
// collectMessage, to fn. A message that cannot be collected ends the
// command with its error.
func fetchEach(sc *sourceConn, set imap.NumSet, opts *imap.FetchOptions, fn func(*imapclient.FetchMessageBuffer)) error {
	cmd := sc.c.Fetch(set, opts)
	for md := cmd.Next(); md != nil; md = cmd.Next() {
		buf, err := collectMessage(sc, md)
		if err != nil {
			cmd.Close()
			return err
		}
		fn(buf)
	}
	return cmd.Close()
}

// fetchChanges reads what changed in a folder since its checkpoint, where
// the source keeps mod-sequences (RFC 7162): the metadata of the messages
// above cp.LastUID, and the flags of older ones changed since
// cp.HighestModSeq, by UID FETCH ... (FLAGS) (CHANGEDSINCE n) (§3.1.4),
// instead of every message's flags. ok is false, and a full read is
// needed, when the counts do not add up: messages were expunged (their
// sizes must leave the folder's total) or arrived between the last
// EXAMINE and its FETCH.
func fetchChanges(sc *sourceConn, cp *folderRecord, sel *imap.SelectData) (msgs []srcMsg, ok bool, err error) {
	var fresh []srcMsg
	if sel.UIDNext == 0 || uint32(sel.UIDNext) > cp.LastUID+1 {
		var set imap.UIDSet
		set.AddRange(imap.UID(cp.LastUID+1), 0)
		all, err := fetchMeta(sc, set, false)
		if err != nil {
			return nil, false, fmt.Errorf("UID FETCH new metadata: %w", err)
		}
		// "n:*" also names the last message when n is above it.
		for _, sm := range all {
			if sm.uid > cp.LastUID {
				fresh = append(fresh, sm)
			}
		}
	}
	if int64(sel.NumMessages) != cp.Status.SourceMessages+int64(len(fresh)) {
		return nil, false, nil
	}
	if sel.HighestModSeq != cp.HighestModSeq && cp.LastUID > 0 {
		var set imap.UIDSet
		set.AddRange(1, imap.UID(cp.LastUID))
		opts := &imap.FetchOptions{UID: true, Flags: true, ChangedSince: cp.HighestModSeq}
		err := fetchEach(sc, set, opts, func(buf *imapclient.FetchMessageBuffer) {
			if buf.UID != 0 && uint32(buf.UID) <= cp.LastUID {
				msgs = append(msgs, srcMsg{uid: uint32(buf.UID), seq: buf.SeqNum, flags: normFlags(buf.Flags)})
			}
		})
		if err != nil {
			return nil, false, fmt.Errorf("UID FETCH FLAGS CHANGEDSINCE: %w", err)
		}
	}
	msgs = append(msgs, fresh...)
	slices.SortFunc(msgs, func(a, b srcMsg) int { return int(a.uid) - int(b.uid) })
	return msgs, true, nil
}

// scanFolder is step 5 for one folder.
//
// Target UIDs at or above m that the folder's records map are added to
// claimed, so that reconcile does not take them for lost appends.
func (ps *passState) scanFolder(ctx context.Context, sc *sourceConn, f *srcFolder, cp *folderRecord, m uint32, claimed map[uint32]bool) (*folderWork, error) {
	// EXAMINE (CONDSTORE) reports HIGHESTMODSEQ (RFC 7162 §3.1.8).
	condStore := sc.c.Caps().Has(imap.CapCondStore)
	sel, err := sc.c.Select(f.Wire, &imap.SelectOptions{ReadOnly: true, CondStore: condStore}).Wait()
	if err != nil {
		return nil, ps.sourceErr(ctx, f.Name, fmt.Errorf("EXAMINE: %w", err))
	}
	w := &folderWork{f: f, key: folderKey(ps.job.Target, f.Name)}
	w.fs = FolderStatus{Source: f.Name, Target: f.Target, SourceMessages: int64(sel.NumMessages)}
	if cp != nil {
		w.cp = *cp
	} else if w.cp, err = ps.firstCheckpoint(ctx, w, sel.UIDValidity, m); err != nil {
		return nil, err
	}
	repair := w.cp.UIDValidity != sel.UIDValidity
	var msgs []srcMsg
	incremental := false
	if sel.NumMessages > 0 && !repair && cp != nil && w.cp.HighestModSeq > 0 && sel.HighestModSeq > 0 {
		if msgs, incremental, err = fetchChanges(sc, &w.cp, sel); err != nil {
			return nil, ps.sourceErr(ctx, f.Name, err)
		}
	}
	if sel.NumMessages > 0 && !incremental {
		var set imap.UIDSet
		set.AddRange(1, 0)
		if msgs, err = fetchMeta(sc, set, repair); err != nil {
			return nil, ps.sourceErr(ctx, f.Name, fmt.Errorf("UID FETCH metadata: %w", err))
		}
	}
	if repair {
		if err := ps.repair(ctx, sc, w, sel.UIDValidity, msgs); err != nil {
			return nil, err
		}
	}
	// Persisted with the folder's checkpoints, after the flag changes
	// below are applied.
	w.cp.HighestModSeq = sel.HighestModSeq
	w.prefix = msgPrefix(ps.job.Target, f.Name, w.cp.UIDValidity)
	byUID := w.index(msgs)
	if incremental {
		// msgs holds the new messages and the changed old ones (only
		// their flags): the folder's size is the last one plus the new.
		w.fs.SourceBytes, w.all = w.cp.Status.SourceBytes, nil
		for _, sm := range msgs {
			if sm.uid > w.cp.LastUID {
				w.fs.SourceBytes += sm.size
				w.all = append(w.all, sm.uid)
			}
		}
		w.maxUID = max(w.maxUID, w.cp.LastUID)
	}
	cs, err := ps.scanCopies(ctx, w, msgs, byUID, m, claimed)
	if err != nil {
		return nil, ps.localErr(ctx, f.Name, err)
	}
	ps.selectToCopy(w, msgs, cs.mapped)
	if err := ps.applyFlags(ctx, w.cp.Target, cs.updates); err != nil {
		return nil, ps.localErr(ctx, f.Name, err)
	}
	w.cp.Status.Copied, w.cp.Status.CopiedBytes = cs.copied, cs.copiedBytes
	w.fs.Copied, w.fs.CopiedBytes = cs.copied, cs.copiedBytes
	w.fs.SkippedTooLarge = int64(len(w.cp.TooLarge))
	w.fs.Target = w.cp.Target
	for _, sm := range w.toCopy {
		ps.totalMsgs.Add(1)
		ps.totalBytes.Add(sm.size)
	}
	ps.report("")
	return w, nil
}

// firstCheckpoint writes the first checkpoint of a folder never copied
// before. It is written before the first append, so that a lost append is
// always above a recorded UIDNEXT; and not above the group's bound m (if
// any): an unrecorded copy of another folder of the group may lie between
// the two.
func (ps *passState) firstCheckpoint(ctx context.Context, w *folderWork, uidValidity, m uint32) (folderRecord, error) {
	st := ps.m.opts.Store
	mb, err := st.Mailbox(ctx, ps.account, w.f.Target)
	if err != nil {
		return folderRecord{}, ps.localErr(ctx, w.f.Name, err)
	}
	bound := mb.UIDNext
	if m > 0 {
		bound = min(bound, m)
	}
	cp := folderRecord{UIDValidity: uidValidity, Target: w.f.Target, TargetUIDNext: bound}
	if err := st.UpdateRecords(ctx, func(tx store.RecordTx) error { return txPutJSON(tx, nsFolder, w.key, cp) }); err != nil {
		return folderRecord{}, ps.localErr(ctx, w.f.Name, err)
	}
	return cp, nil
}

// index records the source's UIDs, the highest one and the folder's
// size in w, and returns each message's index in msgs by UID.
func (w *folderWork) index(msgs []srcMsg) map[uint32]int {
	byUID := make(map[uint32]int, len(msgs))
	w.all = make([]uint32, len(msgs))
	for i, sm := range msgs {
		byUID[sm.uid] = i
		w.all[i] = sm.uid
		w.fs.SourceBytes += sm.size
		w.maxUID = max(w.maxUID, sm.uid)
	}
	return byUID
}

// copiesScan is what the folder's message records say.
type copiesScan struct {
	// mapped holds the UIDs above the checkpoint's LastUID that have a
	// copy already.
	mapped map[uint32]bool
	// updates are the copies whose source flags changed.
	updates             []flagUpdate
	copied, copiedBytes int64
}

// scanCopies reads the folder's message records: what is copied already,
// and which copies' flags the source changed since. Target UIDs at or
// above m are added to claimed.
func (ps *passState) scanCopies(ctx context.Context, w *folderWork, msgs []srcMsg, byUID map[uint32]int, m uint32, claimed map[uint32]bool) (copiesScan, error) {
	cs := copiesScan{mapped: map[uint32]bool{}}
	err := scanPrefix(ctx, ps.m.opts.Store, nsMsg, w.prefix, "", func(r store.Record) error {
		uid, ok := msgKeyUID(w.prefix, r.Key)
		if !ok {
			return nil
		}
		var mr msgRecord
		if err := store.DecodeJSON(r, &mr); err != nil {
			return fmt.Errorf("message: %w", err)
		}
		cs.copied++
		cs.copiedBytes += mr.Size
		if m > 0 && mr.TargetUID >= m {
			claimed[mr.TargetUID] = true
		}
		if uid > w.cp.LastUID {
			cs.mapped[uid] = true
		}
		if i, ok := byUID[uid]; ok && !flagsEqual(mr.Flags, msgs[i].flags) {
			cs.updates = append(cs.updates, flagUpdate{key: r.Key, rec: mr, now: msgs[i].flags})
		}
		return nil
	})
	return cs, err
}

// selectToCopy sets w.toCopy to the messages above the checkpoint that
// have no copy yet, leaving out those over MaxMessageSize (whose UIDs the
// checkpoint keeps, up to maxTooLargeUIDs).
func (ps *passState) selectToCopy(w *folderWork, msgs []srcMsg, mapped map[uint32]bool) {
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
}
