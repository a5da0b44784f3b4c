package migration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/mailyard/mailyard/store"
)

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
		return ps.localErr(ctx, w.f.Name, err)
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
		return ps.localErr(ctx, w.f.Name, err)
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
			return "", ps.localErr(ctx, w.f.Name, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxHeaderScan))
		rc.Close()
		if err != nil {
			return "", ps.localErr(ctx, w.f.Name, err)
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
