package migration

import (
	"context"
	"slices"

	"github.com/mailyard/mailyard/store"
)

// copyGroup scans every folder of a group (carrying flag changes over and
// reconciling lost appends) and then copies them.
func (ps *passState) copyGroup(ctx context.Context, sc *sourceConn, g []*srcFolder, cps map[string]*folderRecord) error {
	tname := g[0].Target
	m, extra, err := ps.lostAppendCandidates(ctx, tname, g, cps)
	if err != nil {
		return err
	}
	claimed := map[uint32]bool{}
	works, firstErr, err := ps.scanGroup(ctx, sc, g, cps, m, claimed)
	if err != nil {
		return err
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
	if err := ps.copyWorks(ctx, sc, works); err != nil {
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	return ps.raiseBound(ctx, tname, works)
}

// lostAppendCandidates returns M, the highest UIDNEXT any folder of the
// group recorded, and the target messages at or above it. An append whose
// checkpoint was lost is the group's last append, so it is at or above M.
func (ps *passState) lostAppendCandidates(ctx context.Context, tname string, g []*srcFolder, cps map[string]*folderRecord) (uint32, []store.Message, error) {
	var m uint32
	for _, f := range g {
		if cp := cps[f.Name]; cp != nil {
			m = max(m, cp.TargetUIDNext)
		}
	}
	if m == 0 {
		return 0, nil, nil
	}
	extra, err := ps.m.opts.Store.ListMessages(ctx, ps.account, tname, store.UIDSet{{Start: m, Stop: 0}})
	if err != nil {
		return 0, nil, ps.localErr(ctx, "", err)
	}
	extra = slices.DeleteFunc(extra, func(msg store.Message) bool { return msg.UID < m })
	return m, extra, nil
}

// scanGroup scans every folder of the group. A folder the source fails
// to scan is recorded as failed and the rest go on (its error is
// firstErr); any other error stops the group (err).
func (ps *passState) scanGroup(ctx context.Context, sc *sourceConn, g []*srcFolder, cps map[string]*folderRecord, m uint32, claimed map[uint32]bool) (works []*folderWork, firstErr, err error) {
	works = make([]*folderWork, 0, len(g))
	for _, f := range g {
		w, err := ps.scanFolder(ctx, sc, f, cps[f.Name], m, claimed)
		if err != nil {
			ps.setStatus(FolderStatus{Source: f.Name, Target: f.Target, Failed: 1})
			if c := ClassOf(err); c != ErrClassSource || ctx.Err() != nil {
				return nil, nil, err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		works = append(works, w)
	}
	return works, firstErr, nil
}

// copyWorks copies the scanned folders one after another and records
// each one's status; it stops at the first folder that fails.
func (ps *passState) copyWorks(ctx context.Context, sc *sourceConn, works []*folderWork) error {
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
	return nil
}

// raiseBound runs once everything of the group is recorded: it moves M
// up to the mailbox's UIDNEXT so that the next pass need not look at
// mail delivered since.
func (ps *passState) raiseBound(ctx context.Context, tname string, works []*folderWork) error {
	st := ps.m.opts.Store
	mb, err := st.Mailbox(ctx, ps.account, tname)
	if err != nil {
		return ps.localErr(ctx, "", err)
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
		return ps.localErr(ctx, "", err)
	}
	return nil
}
