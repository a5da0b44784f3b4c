package imap

import (
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/store"
)

// view is a session's picture of its selected mailbox: the message
// sequence numbers the client knows (RFC 9051 §2.3.1.2), the flags it was
// last told, and what has changed in the store since.
//
// The store is the truth; the view only decides what to tell the client
// when. Messages expunged by others stay in the view (in gone) until an
// EXPUNGE response may be sent (not during FETCH, STORE or SEARCH, RFC
// 9051 §7.5.1), so sequence numbers never shift under the client.
type view struct {
	s           *session
	name        string
	readOnly    bool
	uidValidity uint32
	key         recentKey

	uids []uint32 // sequence number n is uids[n-1]; ascending
	// flags[n-1] is the flags of uids[n-1] as last known, an index into
	// flagSets: messages share a few distinct sets, so a view costs
	// 8 bytes per message rather than a map entry and a slice each.
	flags    []uint32
	flagSets [][]string // distinct flag lists, store form; never modified
	flagIdx  map[string]uint32
	gone     map[uint32]bool // expunged in the store, not yet reported
	// recent holds the UIDs that are \Recent for this session.
	recent map[uint32]bool
	// keywords in use in the mailbox, lower case -> first spelling seen;
	// FLAGS and PERMANENTFLAGS list them (RFC 9051 §7.3.5).
	keywords      map[string]string
	keywordsDirty bool
	// modSeq is the mailbox HIGHESTMODSEQ up to which changes have been
	// taken into the view.
	modSeq uint64
	// dead is set when the mailbox was deleted or recreated under the
	// session; everything in it is then reported expunged.
	dead bool
	// searchRes is the SEARCHRES result "$" (RFC 5182), as UIDs.
	searchRes []uint32
	// told holds the MODSEQ of messages whose FETCH responses to this
	// client's own commands (STORE, FETCH) carried MODSEQ since the last
	// poll, so that the poll does not report those changes again.
	told map[uint32]uint64
	// goneFloor is, while gone is not empty, the modSeq the view had
	// before the first of those expunges: all of them have a greater
	// MODSEQ, so it is the HIGHESTMODSEQ the client may be given until
	// they are reported (RFC 7162 §3.2).
	goneFloor uint64
	// polled is the mailbox's change number when the view last took
	// the store's changes in (see storeCache.unchanged).
	polled pollMark
	// opened is a body listForFetch opened with its message, for
	// fetchOne; nil outside a FETCH.
	opened *openedBody
	// contexts are the SEARCH and SORT results kept up to date (RFC
	// 5267 §4.3, see context.go), at most Options.MaxUpdateContexts;
	// contextsMark is the view's state when they were last brought up
	// to date.
	contexts     []*searchContext
	contextsMark contextMark
	// newFrom is, while a poll brings the contexts up to date, the
	// first UID it added to the view (0 if none): UPDATE's fetch
	// attributes are for those (RFC 5465 §7).
	newFrom uint32
}

// systemFlags are the flags every mailbox supports.
var systemFlags = []string{store.FlagAnswered, store.FlagFlagged, store.FlagDeleted, store.FlagSeen, store.FlagDraft}

func openView(s *session, name string, readOnly bool) (*view, *imap.SelectData, error) {
	b := s.srv.opts.Backend
	// The watermark is taken before the listing: whatever commits in
	// between is seen again by the next poll, which is harmless.
	mark := s.srv.cache.mark(s.account, name)
	mb, msgs, err := s.srv.cache.selectListing(s.ctx, b, s.account, name, mark, func(mb store.Mailbox, m store.Message) {
		s.srv.bodies.keep(recentKey{s.account, mb.Name, mb.UIDValidity}, m)
	})
	if err != nil {
		return nil, nil, err
	}
	v := &view{
		s:           s,
		name:        mb.Name,
		readOnly:    readOnly,
		uidValidity: mb.UIDValidity,
		key:         recentKey{s.account, mb.Name, mb.UIDValidity},
		uids:        make([]uint32, 0, len(msgs)),
		flags:       make([]uint32, 0, len(msgs)),
		gone:        make(map[uint32]bool),
		recent:      make(map[uint32]bool),
		keywords:    make(map[string]string),
		modSeq:      mb.HighestModSeq,
		polled:      mark,
	}
	var firstUnseen uint32
	for i, m := range msgs {
		v.uids = append(v.uids, m.uid)
		v.flags = append(v.flags, v.internFlags(m.flags))
		v.noteKeywords(m.flags)
		if firstUnseen == 0 && !hasFlag(m.flags, store.FlagSeen) {
			firstUnseen = uint32(i + 1)
		}
	}
	v.keywordsDirty = false
	uidNext := mb.UIDNext
	if n := len(v.uids); n > 0 && v.uids[n-1] >= uidNext {
		uidNext = v.uids[n-1] + 1
	}
	v.markRecent(v.uids, uidNext-1)

	flags := v.mailboxFlags()
	perm := v.permanentFlags(flags)
	if perm == nil {
		perm = []imap.Flag{}
	}
	data := &imap.SelectData{
		Flags:             flags,
		PermanentFlags:    perm,
		NumMessages:       uint32(len(v.uids)),
		FirstUnseenSeqNum: firstUnseen,
		NumRecent:         uint32(len(v.recent)),
		UIDNext:           imap.UID(uidNext),
		UIDValidity:       mb.UIDValidity,
		HighestModSeq:     mb.HighestModSeq,
	}
	return v, data, nil
}

// markRecent decides which of uids are \Recent for this session. A
// read-write session claims them (RFC 3501 §2.3.2: recent in exactly one
// session); a read-only one only looks (RFC 3501 §6.3.2: EXAMINE must not
// clear \Recent).
func (v *view) markRecent(uids []uint32, upTo uint32) {
	var mark uint32
	if v.readOnly {
		mark = v.s.srv.recent.peek(v.key)
	} else {
		mark = v.s.srv.recent.claim(v.key, upTo)
	}
	for _, uid := range uids {
		if uid > mark {
			v.recent[uid] = true
		}
	}
}

func (v *view) noteKeywords(flags []string) {
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			continue
		}
		k := strings.ToLower(f)
		if _, ok := v.keywords[k]; !ok {
			v.keywords[k] = f
			v.keywordsDirty = true
		}
	}
}

// mailboxFlags is the FLAGS list: system flags and keywords in use.
func (v *view) mailboxFlags() []imap.Flag {
	out := make([]imap.Flag, 0, len(systemFlags)+len(v.keywords))
	for _, f := range systemFlags {
		out = append(out, imap.Flag(f))
	}
	kw := make([]string, 0, len(v.keywords))
	for _, k := range v.keywords {
		kw = append(kw, k)
	}
	sort.Strings(kw)
	for _, k := range kw {
		out = append(out, imap.Flag(k))
	}
	return out
}

// permanentFlags is the PERMANENTFLAGS list for the FLAGS list flags;
// nil for a read-only view, which may change none.
func (v *view) permanentFlags(flags []imap.Flag) []imap.Flag {
	if v.readOnly {
		return nil
	}
	// RFC 9051 §7.1: \* says that new keywords may be created.
	return append(slices.Clone(flags), imap.FlagWildcard)
}

// announceKeywords writes FLAGS and PERMANENTFLAGS if keywords new to
// the mailbox were noted since they were last written. It comes before
// any FETCH or EXISTS response that may carry them: RFC 9051 §7.3.5 has
// FLAGS list the flags in use, and clients drop flags it does not list.
// A read-only view's empty PERMANENTFLAGS are not repeated.
func (v *view) announceKeywords(w interface {
	WriteMailboxFlags(flags, permanent []imap.Flag) error
}) error {
	if !v.keywordsDirty {
		return nil
	}
	v.keywordsDirty = false
	flags := v.mailboxFlags()
	return w.WriteMailboxFlags(flags, v.permanentFlags(flags))
}

// announceKeywordsOf notes the keywords of msgs that are in the view and
// announces the new ones (announceKeywords): for STORE and FETCH, which
// report the store's flags of msgs next.
func (v *view) announceKeywordsOf(w *imapserver.FetchWriter, msgs []store.Message) error {
	for _, m := range msgs {
		if v.seqOf(m.UID) != 0 && !v.gone[m.UID] {
			v.noteKeywords(m.Flags)
		}
	}
	return v.announceKeywords(w)
}

// clientFlags is a message's FLAGS as this client sees them: \Recent is
// added for IMAP4rev1 clients (RFC 3501 §2.3.2), never for IMAP4rev2 ones.
func (v *view) clientFlags(uid uint32, flags []string) []imap.Flag {
	out := make([]imap.Flag, 0, len(flags)+1)
	for _, f := range flags {
		out = append(out, imap.Flag(f))
	}
	if v.recent[uid] && !v.s.rev2() {
		out = append(out, `\Recent`)
	}
	return out
}

// flagsOf returns the flags last known for uid; nil if the view lacks it.
// The slice is shared and must not be modified.
func (v *view) flagsOf(uid uint32) []string {
	if n := v.seqOf(uid); n != 0 {
		return v.flagSets[v.flags[n-1]]
	}
	return nil
}

// setFlags records the flags of uid, if the view has it.
func (v *view) setFlags(uid uint32, flags []string) {
	if n := v.seqOf(uid); n != 0 {
		v.flags[n-1] = v.internFlags(flags)
	}
}

// internFlags returns the index of flags in flagSets, adding them if new.
// The table only grows while the mailbox is selected; it holds at most one
// entry per distinct flag list seen, which stays small in practice.
func (v *view) internFlags(flags []string) uint32 {
	for i, f := range v.flagSets[:min(len(v.flagSets), 8)] {
		if slices.Equal(f, flags) {
			return uint32(i)
		}
	}
	if len(v.flagSets) < 8 {
		v.flagSets = append(v.flagSets, flags)
		return uint32(len(v.flagSets) - 1)
	}
	key := strings.Join(flags, "\x00")
	if i, ok := v.flagIdx[key]; ok {
		return i
	}
	if v.flagIdx == nil {
		v.flagIdx = make(map[string]uint32)
	}
	v.flagSets = append(v.flagSets, flags)
	i := uint32(len(v.flagSets) - 1)
	v.flagIdx[key] = i
	return i
}

// seqOf returns the sequence number of uid, 0 if the view lacks it.
func (v *view) seqOf(uid uint32) uint32 {
	i, ok := slices.BinarySearch(v.uids, uid)
	if !ok {
		return 0
	}
	return uint32(i + 1)
}

// poll brings the view up to date with the store and writes what changed:
// EXPUNGE (when allowed), FLAGS for new keywords, EXISTS and RECENT for
// new messages, FETCH FLAGS for messages whose flags others changed.
func (v *view) poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	s := v.s
	b := s.srv.opts.Backend
	var added []uint32
	// changed maps the messages whose flags (or, with CONDSTORE, MODSEQ)
	// others changed to their MODSEQ.
	changed := make(map[uint32]uint64)
	condStore := s.condStore()
	// Nothing committed for the mailbox since the last look: the store
	// would say what the view knows (issue 16: this look-up was most of
	// a NOOP's time).
	if !v.dead && !s.srv.cache.unchanged(v.polled, s.account, v.name) {
		mark := s.srv.cache.mark(s.account, v.name)
		// Shared with the other sessions polling the mailbox; cs may
		// start below v.modSeq (see storeCache.changes).
		mb, cs, err := s.srv.cache.changes(s.ctx, b, s.account, v.name, mark, v.modSeq)
		switch {
		case errors.Is(err, store.ErrNotFound) || (err == nil && mb.UIDValidity != v.uidValidity):
			// Deleted or renamed away under us: all messages are gone
			// (RFC 2180 §3 lets the server report them expunged).
			v.dead = true
			if len(v.gone) == 0 {
				v.goneFloor = v.modSeq
			}
			for _, uid := range v.uids {
				v.gone[uid] = true
			}
		case err != nil:
			return s.storeErr("poll", err)
		case mb.HighestModSeq > v.modSeq:
			for _, uid := range cs.Vanished {
				if v.seqOf(uid) != 0 {
					if len(v.gone) == 0 {
						v.goneFloor = v.modSeq
					}
					v.gone[uid] = true
				}
			}
			last := v.lastUID()
			var fresh []store.Message
			for _, m := range cs.Changed {
				switch {
				case m.ModSeq <= v.modSeq:
					// Known: the read was shared from an earlier MODSEQ.
				case v.seqOf(m.UID) != 0:
					if v.gone[m.UID] {
						continue
					}
					// With CONDSTORE the client caches MODSEQ too, so a
					// new MODSEQ is news even with the same flags (RFC
					// 7162 §3.1), unless this client was just told.
					newFlags := !slices.Equal(v.flagsOf(m.UID), m.Flags)
					if newFlags || condStore && m.ModSeq > v.told[m.UID] {
						v.setFlags(m.UID, m.Flags)
						v.noteKeywords(m.Flags)
						changed[m.UID] = m.ModSeq
					}
				case m.UID > last:
					fresh = append(fresh, m)
				}
			}
			sort.Slice(fresh, func(i, j int) bool { return fresh[i].UID < fresh[j].UID })
			for _, m := range fresh {
				v.cacheBody(m)
				v.uids = append(v.uids, m.UID)
				v.flags = append(v.flags, v.internFlags(m.Flags))
				v.noteKeywords(m.Flags)
				added = append(added, m.UID)
			}
			if len(added) > 0 {
				v.markRecent(added, added[len(added)-1])
			}
			v.modSeq = mb.HighestModSeq
			v.polled = mark
		default:
			v.polled = mark // nothing new
		}
	}
	clear(v.told)
	if allowExpunge {
		if err := v.reportExpunges(w); err != nil {
			return err
		}
	}
	if err := v.announceKeywords(w); err != nil {
		return err
	}
	if len(added) > 0 {
		if err := w.WriteNumMessages(uint32(len(v.uids))); err != nil {
			return err
		}
		if err := w.WriteNumRecent(uint32(len(v.recent))); err != nil {
			return err
		}
	}
	if len(changed) > 0 {
		for i, uid := range v.uids {
			modSeq, ok := changed[uid]
			if !ok || v.gone[uid] {
				continue
			}
			if !condStore {
				modSeq = 0 // not reported
			}
			if err := w.WriteMessageFlags(uint32(i+1), imap.UID(uid), v.clientFlags(uid, v.flagSets[v.flags[i]]), modSeq); err != nil {
				return err
			}
		}
	}
	// RFC 5465 §5.2: NOTIFY's FETCH of new messages, after their EXISTS
	// and before their ADDTO (§7).
	if len(added) > 0 {
		if err := s.notifyNew(w, len(added)); err != nil {
			return err
		}
	}
	// RFC 5267 §4.3: ADDTO and REMOVEFROM, after EXISTS (§4.3.3).
	if len(added) > 0 {
		v.newFrom = added[0]
	}
	err := v.syncContexts(w)
	v.newFrom = 0
	if err != nil {
		return err
	}
	if len(v.gone) > 0 && s.qresync() {
		// RFC 7162 §3.2: MODSEQs this command or poll gave may exceed
		// those of the expunges held back; a HIGHESTMODSEQ below the
		// expunges keeps a client that loses the connection now from
		// taking them as known.
		return w.WriteHighestModSeq(v.goneFloor)
	}
	return nil
}

// expungeWriter is what reportExpunges writes to: the library's
// UpdateWriter, ExpungeWriter and MoveWriter.
type expungeWriter interface {
	WriteExpunge(seq uint32) error
	WriteVanished(uids imap.UIDSet) error
	contextWriter
}

func (v *view) lastUID() uint32 {
	if len(v.uids) == 0 {
		return 0
	}
	return v.uids[len(v.uids)-1]
}

// reportExpunges writes one EXPUNGE per gone message, highest sequence
// number first so that each number is valid when the client reads it
// (RFC 9051 §7.5.1), and drops them from the view. Once QRESYNC is
// enabled they are reported by UID in one VANISHED response instead (RFC
// 7162 §3.2.10.2).
func (v *view) reportExpunges(w expungeWriter) error {
	if len(v.gone) == 0 {
		return nil
	}
	// RFC 5267 §4.3.4: REMOVEFROM before the EXPUNGE, while the
	// sequence numbers in it are valid.
	if err := v.contextsRemoveGone(w); err != nil {
		return err
	}
	v.goneFloor = 0
	var (
		seqs []uint32 // ascending, as the view had them
		uids imap.UIDSet
	)
	kept := 0
	for i, uid := range v.uids {
		if v.gone[uid] {
			seqs = append(seqs, uint32(i+1))
			uids.AddNum(imap.UID(uid))
			delete(v.gone, uid)
			delete(v.recent, uid)
			continue
		}
		v.uids[kept], v.flags[kept] = uid, v.flags[i]
		kept++
	}
	v.uids, v.flags = v.uids[:kept], v.flags[:kept]
	v.searchRes = slices.DeleteFunc(v.searchRes, func(uid uint32) bool { return v.seqOf(uid) == 0 })
	if len(seqs) == 0 {
		return nil
	}
	if v.s.qresync() {
		return w.WriteVanished(uids)
	}
	// Highest first: each number is still right when the client reads it.
	for i := len(seqs) - 1; i >= 0; i-- {
		if err := w.WriteExpunge(seqs[i]); err != nil {
			return err
		}
	}
	return nil
}

// resolve turns a sequence set, UID set or "$" into indexes into v.uids,
// ascending and without duplicates. A sequence number beyond the mailbox
// is a client error (RFC 9051 §9 seq-number: "a number larger than the
// number of messages is invalid"); "*" in an empty mailbox selects
// nothing. UIDs that do not exist are ignored (RFC 9051 §6.4.9).
func (v *view) resolve(numSet imap.NumSet) ([]int, error) {
	if imap.IsSearchRes(numSet) {
		var out []int
		for _, uid := range v.searchRes {
			if n := v.seqOf(uid); n != 0 {
				out = append(out, int(n-1))
			}
		}
		return out, nil
	}
	n := uint32(len(v.uids))
	pick := make(map[int]bool)
	switch set := numSet.(type) {
	case imap.SeqSet:
		for _, r := range set {
			star := r.Start == 0 || r.Stop == 0
			lo, hi := starRange(r.Start, r.Stop, n)
			if hi > n && !star || lo == 0 && !star {
				return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug,
					Text: "Message sequence number out of range"}
			}
			for i := lo; i <= hi && i <= n; i++ {
				if i > 0 {
					pick[int(i-1)] = true
				}
			}
		}
	case imap.UIDSet:
		last := v.lastUID()
		for _, r := range set {
			lo, hi := starRange(uint32(r.Start), uint32(r.Stop), last)
			i, _ := slices.BinarySearch(v.uids, lo)
			for ; i < len(v.uids) && v.uids[i] <= hi; i++ {
				pick[i] = true
			}
		}
	}
	out := make([]int, 0, len(pick))
	for i := range pick {
		out = append(out, i)
	}
	sort.Ints(out)
	return out, nil
}

// starRange orders a range's ends, "*" (0) standing for last.
func starRange(lo, hi, last uint32) (uint32, uint32) {
	if lo == 0 {
		lo = last
	}
	if hi == 0 {
		hi = last
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

// resolveLive resolves numSet and returns the UIDs it names that are not
// expunged.
func (v *view) resolveLive(numSet imap.NumSet) ([]uint32, error) {
	idxs, err := v.resolve(numSet)
	if err != nil {
		return nil, err
	}
	return v.live(idxs), nil
}

// live returns the UIDs at idxs that are not expunged.
func (v *view) live(idxs []int) []uint32 {
	out := make([]uint32, 0, len(idxs))
	for _, i := range idxs {
		if uid := v.uids[i]; !v.gone[uid] {
			out = append(out, uid)
		}
	}
	return out
}

// compressUIDs turns ascending UIDs into ranges.
func compressUIDs(uids []uint32) store.UIDSet {
	set := store.UIDSet{}
	for _, u := range uids {
		if n := len(set); n > 0 && set[n-1].Stop+1 == u {
			set[n-1].Stop = u
			continue
		}
		set = append(set, store.UIDRange{Start: u, Stop: u})
	}
	return set
}

func hasFlag(flags []string, f string) bool {
	for _, g := range flags {
		if strings.EqualFold(g, f) {
			return true
		}
	}
	return false
}

var errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
	Text: "Mailbox is read-only (selected with EXAMINE)"}

// store implements STORE (RFC 9051 §6.4.6) with the UNCHANGEDSINCE
// modifier (RFC 7162 §3.1.3). The OK follows the commit. missing reports
// that some of the messages it was to change were no longer in the store
// (expunged by another session since the last poll).
func (v *view) store(w *imapserver.FetchWriter, numSet imap.NumSet, sf *imap.StoreFlags, o *imap.StoreOptions) (missing bool, err error) {
	if v.readOnly {
		return false, errReadOnly
	}
	uids, err := v.resolveLive(numSet)
	if err != nil {
		return false, err
	}
	if len(uids) == 0 {
		return false, nil
	}
	flags := make([]string, len(sf.Flags))
	for i, f := range sf.Flags {
		flags[i] = string(f)
	}
	req := store.StoreFlagsRequest{UIDs: compressUIDs(uids), Flags: flags}
	switch sf.Op {
	case imap.StoreFlagsSet:
		req.Op = store.FlagsReplace
	case imap.StoreFlagsAdd:
		req.Op = store.FlagsAdd
	case imap.StoreFlagsDel:
		req.Op = store.FlagsRemove
	}
	s := v.s
	var res store.StoreFlagsResult
	if o.UnchangedSince == imapserver.UnchangedSinceZero {
		// RFC 7162 §3.1.3: "UNCHANGEDSINCE 0" fails for every message
		// (a system flag always exists).
		res.Modified = uids
	} else {
		req.UnchangedSince = o.UnchangedSince
		res, err = s.srv.opts.Backend.StoreFlags(s.ctx, s.account, v.name, req)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, s.storeErr("store", err)
		}
		// ErrNotFound: deleted under the session, so every message is
		// expunged (RFC 2180 §3) and missing; res is empty.
		missing = len(res.Updated)+len(res.Modified) < len(uids)
	}
	_, byUID := numSet.(imap.UIDSet)
	condStore := s.condStore()
	// RFC 7162 §3.2.4: with QRESYNC offered, FETCH responses of STORE
	// carry the UID once any CONDSTORE enabling command was given.
	withUID := byUID || condStore
	if err := v.announceKeywordsOf(w, res.Updated); err != nil {
		return missing, err
	}
	for _, m := range res.Updated {
		seq := v.seqOf(m.UID)
		if seq == 0 || v.gone[m.UID] {
			continue
		}
		old := v.flagsOf(m.UID)
		changed := !slices.Equal(old, m.Flags)
		// Another session changed this message's flags since the client
		// last heard: FLAGS are reported even for .SILENT (RFC 9051
		// §6.4.6), or the view would swallow that change.
		external := !sameFlagSet(applyFlagOp(old, req.Op, flags), m.Flags)
		v.setFlags(m.UID, m.Flags)
		// RFC 7162 §3.1.3: a conditional STORE reports the MODSEQ of every
		// message it succeeded for, even with .SILENT; after a CONDSTORE
		// enabling command, so does any STORE for the messages it changed.
		if sf.Silent && !external && !(condStore && changed) && o.UnchangedSince == 0 {
			continue
		}
		rw := w.CreateMessage(seq)
		if withUID {
			rw.WriteUID(imap.UID(m.UID))
		}
		if !sf.Silent || external {
			rw.WriteFlags(v.clientFlags(m.UID, m.Flags))
		}
		if condStore {
			rw.WriteModSeq(m.ModSeq)
			v.tell(m.UID, m.ModSeq)
		}
		if err := rw.Close(); err != nil {
			return missing, err
		}
	}
	// The store gave this STORE's changes the MODSEQ just above the
	// view's, which no other write has: the view, which took Updated in
	// above, is current up to it, and the poll that follows the command
	// need not read its own change back (issue 16: that read was a third
	// of a single client's STORE).
	if res.ModSeq != 0 && res.ModSeq == v.modSeq+1 && !v.dead {
		v.modSeq = res.ModSeq
	}
	if len(res.Modified) == 0 {
		return missing, nil
	}
	// The messages that failed the UNCHANGEDSINCE test, by sequence
	// number for STORE and by UID for UID STORE (RFC 7162 §3.1.3). Any
	// change to them that the client has not seen is reported by the
	// poll that follows, before the tagged OK.
	var modified imap.NumSet
	var seqs imap.SeqSet
	var mUIDs imap.UIDSet
	for _, uid := range res.Modified {
		seq := v.seqOf(uid)
		if seq == 0 || v.gone[uid] {
			continue
		}
		if byUID {
			mUIDs.AddNum(imap.UID(uid))
		} else {
			seqs.AddNum(seq)
		}
	}
	if byUID {
		modified = mUIDs
	} else {
		modified = seqs
	}
	if modified.String() == "" {
		return missing, nil
	}
	return missing, &imap.Error{Type: imap.StatusResponseTypeOK,
		Code: imap.ResponseCode("MODIFIED " + modified.String()), Text: "Conditional STORE failed"}
}

// expunge implements EXPUNGE, UID EXPUNGE (RFC 4315 §2.1) and the silent
// expunge of CLOSE (RFC 9051 §6.4.1).
func (v *view) expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	// CLOSE passes a writer without a connection; EXPUNGE never does.
	isClose := *w == imapserver.ExpungeWriter{}
	if v.readOnly {
		if isClose {
			return nil // CLOSE after EXAMINE expunges nothing
		}
		return errReadOnly
	}
	var set store.UIDSet
	if uids != nil {
		live, err := v.resolveLive(*uids)
		if err != nil {
			return err
		}
		set = compressUIDs(live)
		if len(set) == 0 {
			return nil
		}
	} else if last := v.lastUID(); last > 0 {
		// Only messages the client knows of; later ones it has not seen.
		set = store.UIDSet{{Start: 1, Stop: last}}
	} else {
		return nil
	}
	s := v.s
	removed, err := s.srv.opts.Backend.Expunge(s.ctx, s.account, v.name, set)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted under the session: its messages are expunged (RFC
		// 2180 §3), and the poll after this command reports them; CLOSE
		// leaves the mailbox (RFC 9051 §6.4.1 has no NO).
		return nil
	}
	if err != nil {
		return s.storeErr("expunge", err)
	}
	for _, uid := range removed {
		if v.seqOf(uid) != 0 {
			v.gone[uid] = true
		}
	}
	return v.reportExpunges(w)
}

// copyTo implements COPY (RFC 9051 §6.4.7) with COPYUID (RFC 4315).
func (v *view) copyTo(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	dest, err := mailboxName(dest)
	if err != nil {
		return nil, err
	}
	uids, err := v.resolveLive(numSet)
	if err != nil {
		return nil, err
	}
	if len(uids) == 0 {
		return nil, nil
	}
	s := v.s
	pairs, err := s.srv.opts.Backend.Copy(s.ctx, s.account, v.name, dest, compressUIDs(uids))
	if err != nil {
		return nil, v.transferErr("copy", dest, err)
	}
	return v.copyData(dest, pairs)
}

// move implements MOVE (RFC 6851): COPYUID first, then the expunges. A
// MOVE into the selected mailbox itself is COPY + STORE \Deleted +
// EXPUNGE there (RFC 6851 §3): the messages get new UIDs, the old ones
// are expunged now and the new ones reported by the poll that follows
// (EXISTS).
func (v *view) move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if v.readOnly {
		return errReadOnly
	}
	dest, err := mailboxName(dest)
	if err != nil {
		return err
	}
	uids, err := v.resolveLive(numSet)
	if err != nil {
		return err
	}
	if len(uids) == 0 {
		return nil
	}
	s := v.s
	pairs, err := s.srv.opts.Backend.Move(s.ctx, s.account, v.name, dest, compressUIDs(uids))
	if err != nil {
		return v.transferErr("move", dest, err)
	}
	data, err := v.copyData(dest, pairs)
	if err != nil {
		return err
	}
	if data != nil {
		if err := w.WriteCopyData(data); err != nil {
			return err
		}
	}
	for _, p := range pairs {
		if v.seqOf(p.Src) != 0 {
			v.gone[p.Src] = true
		}
	}
	return v.reportExpunges(w)
}

func (v *view) transferErr(op, dest string, err error) error {
	if !errors.Is(err, store.ErrNoMailbox) {
		return v.s.storeErr(op, err)
	}
	s := v.s
	if _, err := s.srv.opts.Backend.Mailbox(s.ctx, s.account, v.name); errors.Is(err, store.ErrNoMailbox) {
		// The selected source was deleted under the session: its
		// messages are expunged (RFC 2180 §3, RFC 5530 §3).
		return errExpungeIssued()
	}
	// RFC 9051 §6.4.7: a missing destination is TRYCREATE.
	return noCode(imap.ResponseCodeTryCreate, "No such mailbox: "+printable(dest))
}

func (v *view) copyData(dest string, pairs []store.UIDPair) (*imap.CopyData, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	s := v.s
	mb, err := s.srv.opts.Backend.Mailbox(s.ctx, s.account, dest)
	if err != nil {
		// Copied and committed; only the COPYUID code cannot be given.
		s.log.Warn("copy: destination vanished after copy", "mailbox", dest, "err", err)
		return nil, nil
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].Src < pairs[j].Src })
	data := &imap.CopyData{UIDValidity: mb.UIDValidity}
	for _, p := range pairs {
		data.SourceUIDs.AddNum(imap.UID(p.Src))
		data.DestUIDs.AddNum(imap.UID(p.Dst))
	}
	return data, nil
}

// tell records that this client was just given MODSEQ modSeq for uid in
// a FETCH response, so that the next poll does not report it again.
func (v *view) tell(uid uint32, modSeq uint64) {
	if v.told == nil {
		v.told = make(map[uint32]uint64)
	}
	v.told[uid] = modSeq
}

// applyFlagOp is what a STORE of flags with op makes of old, compared
// case-insensitively by sameFlagSet.
func applyFlagOp(old []string, op store.FlagOp, flags []string) []string {
	switch op {
	case store.FlagsReplace:
		return flags
	case store.FlagsAdd:
		return append(slices.Clone(old), flags...)
	}
	return slices.DeleteFunc(slices.Clone(old), func(f string) bool {
		return slices.ContainsFunc(flags, func(g string) bool { return strings.EqualFold(f, g) })
	})
}

// sameFlagSet reports whether a and b hold the same flags, ignoring case,
// order and repetition.
func sameFlagSet(a, b []string) bool {
	set := func(l []string) map[string]bool {
		m := make(map[string]bool, len(l))
		for _, f := range l {
			m[strings.ToLower(f)] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) {
		return false
	}
	for f := range sa {
		if !sb[f] {
			return false
		}
	}
	return true
}
