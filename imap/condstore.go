package imap

import (
	"slices"
	"sort"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"
)

// CONDSTORE and QRESYNC (RFC 7162) of the selected mailbox's view.

// condStore reports whether the client has issued a CONDSTORE enabling
// command (RFC 7162 §3.1): FETCH responses with FLAGS then carry MODSEQ.
func (s *session) condStore() bool {
	return s.conn.Enabled(imap.CapCondStore)
}

// qresync reports whether the client has enabled QRESYNC (RFC 7162
// §3.2.3): expunges are then reported with VANISHED.
func (s *session) qresync() bool {
	return s.conn.Enabled(imap.CapQResync)
}

var _ imapserver.SessionCondStore = (*session)(nil)

// HighestModSeq implements imapserver.SessionCondStore: the MODSEQ up to
// which the selected mailbox's changes are in the view.
func (s *session) HighestModSeq() uint64 {
	v := s.view
	if v == nil {
		return 0
	}
	if len(v.gone) > 0 {
		return min(v.goneFloor, v.modSeq)
	}
	return v.modSeq
}

// QResync implements imapserver.SessionCondStore: the resynchronisation
// of SELECT/EXAMINE (QRESYNC ...) (RFC 7162 §3.2.5.1), as if the client
// had sent UID FETCH known-uids (FLAGS) (CHANGEDSINCE modseq VANISHED).
func (s *session) QResync(w *imapserver.UpdateWriter, p *imapserver.QResyncParams) error {
	defer s.srv.begin()()
	v := s.view
	if v == nil || p.ModSeq >= v.modSeq {
		return nil
	}
	cs, err := s.srv.opts.Backend.Changes(s.ctx, s.account, v.name, p.ModSeq)
	if err != nil {
		return s.storeErr("select", err)
	}
	known := func(uid uint32) bool {
		return p.KnownUIDs == nil || p.KnownUIDs.Contains(imap.UID(uid))
	}
	// RFC 7162 §3.2.5.2: expunges at or below the last message whose
	// sequence number the client still has right are known to it.
	floor := v.seqMatchFloor(p.SeqMatchSeqs, p.SeqMatchUIDs)
	var vanished imap.UIDSet
	for _, uid := range slices.Sorted(slices.Values(cs.Vanished)) {
		// A message still in the view was expunged after it was opened;
		// the next poll reports it as VANISHED.
		if uid > floor && known(uid) && v.seqOf(uid) == 0 {
			vanished.AddNum(imap.UID(uid))
		}
	}
	if err := w.WriteVanishedEarlier(vanished); err != nil {
		return err
	}
	msgs := slices.Clone(cs.Changed)
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].UID < msgs[j].UID })
	for _, m := range msgs {
		seq := v.seqOf(m.UID)
		if seq == 0 || m.ModSeq > v.modSeq || !known(m.UID) {
			continue // newer than the view: the next poll has it
		}
		v.setFlags(m.UID, m.Flags)
		v.noteKeywords(m.Flags)
		if err := w.WriteMessageFlags(seq, imap.UID(m.UID), v.clientFlags(m.UID, m.Flags), m.ModSeq); err != nil {
			return err
		}
	}
	return nil
}

// seqMatchFloor walks the seq-match-data pairs (RFC 7162 §3.2.5.2) in
// order and returns the UID of the last pair that still matches the
// mailbox before the first that does not (0 if none does): the client's
// knowledge of expunges is right up to that message.
func (v *view) seqMatchFloor(seqs imap.SeqSet, uids imap.UIDSet) uint32 {
	var floor uint32
	next := rangeIter(uidRangesOf(uids))
	for _, r := range seqs {
		for seq := min(r.Start, r.Stop); seq <= max(r.Start, r.Stop); seq++ {
			uid, ok := next()
			if !ok || seq == 0 || int(seq) > len(v.uids) || v.uids[seq-1] != uid {
				return floor
			}
			floor = uid
			if seq == ^uint32(0) {
				return floor
			}
		}
	}
	return floor
}

func uidRangesOf(s imap.UIDSet) [][2]uint32 {
	out := make([][2]uint32, len(s))
	for i, r := range s {
		out[i] = [2]uint32{uint32(min(r.Start, r.Stop)), uint32(max(r.Start, r.Stop))}
	}
	return out
}

// rangeIter returns the numbers of ranges one by one.
func rangeIter(ranges [][2]uint32) func() (uint32, bool) {
	i, n := 0, uint64(0)
	return func() (uint32, bool) {
		for i < len(ranges) {
			r := ranges[i]
			if v := uint64(r[0]) + n; v <= uint64(r[1]) {
				n++
				return uint32(v), true
			}
			i, n = i+1, 0
		}
		return 0, false
	}
}
