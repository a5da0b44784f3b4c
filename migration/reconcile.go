package migration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/store"
)

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
	cands := unclaimedBySizeDate(extra, claimed)
	var set imap.UIDSet
	for _, sm := range w.toCopy {
		if len(cands[sizeDateOf(sm)]) > 0 {
			set.AddNum(imap.UID(sm.uid))
		}
	}
	if len(set) == 0 {
		return nil
	}
	if err := ps.reexamine(ctx, sc, w); err != nil {
		return err
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
	out, err := ps.pairLostAppends(ctx, w, prefixes, cands, claimed)
	if err != nil || len(out) == 0 {
		return err
	}
	return ps.recordReconciled(ctx, w, out)
}

// sizeDate is what a lost append shares with its source message in the
// store's index: size and INTERNALDATE (in seconds).
type sizeDate struct {
	size int64
	date int64
}

func sizeDateOf(sm srcMsg) sizeDate { return sizeDate{sm.size, sm.date.Unix()} }

// unclaimedBySizeDate groups the target messages no folder maps yet by
// size and date.
func unclaimedBySizeDate(extra []store.Message, claimed map[uint32]bool) map[sizeDate][]store.Message {
	cands := map[sizeDate][]store.Message{}
	for _, msg := range extra {
		if !claimed[msg.UID] {
			k := sizeDate{msg.Size, msg.InternalDate.Unix()}
			cands[k] = append(cands[k], msg)
		}
	}
	return cands
}

// reexamine EXAMINEs w's folder again and checks that its UIDVALIDITY is
// still the one its checkpoint holds.
func (ps *passState) reexamine(ctx context.Context, sc *sourceConn, w *folderWork) error {
	sel, err := sc.c.Select(w.f.Wire, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return ps.sourceErr(ctx, w.f.Name, fmt.Errorf("EXAMINE: %w", err))
	}
	if sel.UIDValidity != w.cp.UIDValidity {
		return ps.sourceErr(ctx, w.f.Name, fmt.Errorf("UIDVALIDITY changed during the pass (%d -> %d)", w.cp.UIDValidity, sel.UIDValidity))
	}
	return nil
}

// pairLostAppends pairs each message of w.toCopy whose prefix hash is
// known with the first unclaimed candidate of the same size, date and
// prefix hash, and claims that candidate. Each candidate's body is read
// at most once.
func (ps *passState) pairLostAppends(ctx context.Context, w *folderWork, prefixes map[uint32]string, cands map[sizeDate][]store.Message, claimed map[uint32]bool) ([]reconciled, error) {
	type copyID struct{ prefix, msgID string }
	targetIDs := map[uint32]copyID{}
	var out []reconciled
	for _, sm := range w.toCopy {
		p, ok := prefixes[sm.uid]
		if !ok {
			continue
		}
		for _, tm := range cands[sizeDateOf(sm)] {
			if claimed[tm.UID] {
				continue
			}
			id, ok := targetIDs[tm.UID]
			if !ok {
				b, err := ps.targetPrefix(ctx, w, tm.UID)
				if err != nil {
					return nil, err
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
	return out, nil
}

// targetPrefix reads the first maxHeaderScan bytes of target message uid.
func (ps *passState) targetPrefix(ctx context.Context, w *folderWork, uid uint32) ([]byte, error) {
	rc, err := ps.m.opts.Store.OpenBody(ctx, ps.account, w.cp.Target, uid)
	if err != nil {
		return nil, ps.localErr(ctx, w.f.Name, err)
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxHeaderScan))
	rc.Close()
	if err != nil {
		return nil, ps.localErr(ctx, w.f.Name, err)
	}
	return b, nil
}

// recordReconciled records the pairs as copies (message records and the
// folder's checkpoint in one transaction), brings the copies to the
// source's flags now, and drops them from w.toCopy.
func (ps *passState) recordReconciled(ctx context.Context, w *folderWork, out []reconciled) error {
	err := ps.m.opts.Store.UpdateRecords(ctx, func(tx store.RecordTx) error {
		for _, r := range out {
			if err := txPutJSON(tx, nsMsg, msgKey(w.prefix, r.uid), r.rec); err != nil {
				return err
			}
			w.cp.TargetUIDNext = max(w.cp.TargetUIDNext, r.rec.TargetUID+1)
		}
		return txPutJSON(tx, nsFolder, w.key, w.cp)
	})
	if err != nil {
		return ps.localErr(ctx, w.f.Name, err)
	}
	// The copies have the flags of the pass that appended them; bring
	// them to the source's flags now.
	done := map[uint32]bool{}
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
		return ps.localErr(ctx, w.f.Name, err)
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
	out := map[uint32]string{}
	err := fetchEach(sc, set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}}, func(buf *imapclient.FetchMessageBuffer) {
		if b := buf.FindBodySection(sec); buf.UID != 0 && b != nil {
			out[uint32(buf.UID)] = prefixHash(b)
		}
	})
	return out, err
}

// prefixHash hashes the first maxHeaderScan bytes of a message.
func prefixHash(b []byte) string {
	sum := sha256.Sum256(b[:min(len(b), maxHeaderScan)])
	return hex.EncodeToString(sum[:])
}
