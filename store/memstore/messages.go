package memstore

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailyard/mailyard/store"
)

// readBody reads a whole message body. The caller bounds its size.
func readBody(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addBlob keeps a body and returns its ID; refs starts at 0 and each
// index row that names it adds one. The caller holds s.mu.
func (s *Store) addBlob(data []byte) string {
	s.lastBlobID++
	id := strconv.FormatUint(s.lastBlobID, 10)
	s.blobs[id] = &blob{data: data}
	return id
}

// unrefBlob drops one reference, freeing the body with the last one.
// Readers that opened it keep their slice.
func (s *Store) unrefBlob(id string) {
	b := s.blobs[id]
	if b == nil {
		return
	}
	if b.refs--; b.refs <= 0 {
		delete(s.blobs, id)
	}
}

// inStoredZone returns t as the store gives it back: in a fixed zone with
// t's UTC offset (time.UTC for offset 0), without a monotonic reading.
func inStoredZone(t time.Time) time.Time {
	_, off := t.Zone()
	if off == 0 {
		return t.UTC().Round(0)
	}
	return t.In(time.FixedZone("", off)).Round(0)
}

// wallClock is t's wall-clock reading in its own zone, as if it were UTC
// (store.SearchCriteria compares these).
func wallClock(t time.Time) time.Time {
	_, off := t.Zone()
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// clone returns a message the caller may keep and change.
func clone(m *store.Message) store.Message {
	c := *m
	c.Flags = slices.Clone(m.Flags)
	return c
}

// allocUIDs reserves n UIDs in a mailbox and a new MODSEQ for them
// (guarantees 2 and 3 of the store contract).
func (m *mailbox) allocUIDs(n int) (first uint32, modseq uint64, err error) {
	if !m.hasUIDs(n) {
		return 0, 0, errUIDSpace
	}
	first = m.uidNext
	m.uidNext += uint32(n)
	m.modSeq++
	return first, m.modSeq, nil
}

// hasUIDs reports whether n more UIDs fit: UIDNEXT itself must stay a
// valid nz-number (RFC 9051 §2.3.1.1).
func (m *mailbox) hasUIDs(n int) bool {
	return uint64(m.uidNext)+uint64(n) <= math.MaxUint32
}

// add indexes a message; its UID is above every other in the mailbox.
func (s *Store) add(a *account, m *mailbox, msg store.Message) {
	m.msgs = append(m.msgs, &msg)
	a.used.Bytes += msg.Size
	a.used.Messages++
	s.blobs[msg.BlobID].refs++
}

// remove expunges msgs from a mailbox: it leaves tombstones with a new
// MODSEQ, fixes usage and frees unreferenced bodies. It returns the
// removed UIDs and the MODSEQ.
func (s *Store) remove(a *account, m *mailbox, msgs []*store.Message) ([]uint32, uint64) {
	m.modSeq++
	gone := make(map[uint32]bool, len(msgs))
	out := make([]uint32, 0, len(msgs))
	for _, msg := range msgs {
		gone[msg.UID] = true
		out = append(out, msg.UID)
		m.expunged[msg.UID] = m.modSeq
		a.used.Bytes -= msg.Size
		a.used.Messages--
		s.unrefBlob(msg.BlobID)
	}
	m.msgs = slices.DeleteFunc(m.msgs, func(msg *store.Message) bool { return gone[msg.UID] })
	return out, m.modSeq
}

// selectUIDs returns the messages of m in set, by UID.
func (m *mailbox) selectUIDs(set store.UIDSet) []*store.Message {
	var out []*store.Message
	for _, msg := range m.msgs {
		if set.Contains(msg.UID) {
			out = append(out, msg)
		}
	}
	return out
}

// Append implements store.Messages. The body is read whole into memory.
func (s *Store) Append(ctx context.Context, account, mailbox string, r io.Reader, opts store.AppendOptions) (store.Message, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return store.Message{}, err
	}
	flags, err := store.NormalizeFlags(opts.Flags)
	if err != nil {
		return store.Message{}, err
	}
	if err := s.checkOpen(); err != nil {
		return store.Message{}, err
	}
	date := opts.InternalDate
	if date.IsZero() {
		date = s.now()
	}
	body, err := readBody(r)
	if err != nil {
		return store.Message{}, err
	}
	msg := store.Message{Flags: flags, InternalDate: inStoredZone(date), Size: int64(len(body))}
	err = s.write(ctx, func() error {
		a, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		if err := s.checkQuota([]quotaAdd{{account, msg.Size, 1}}); err != nil {
			return err
		}
		if msg.UID, msg.ModSeq, err = m.allocUIDs(1); err != nil {
			return err
		}
		msg.BlobID = s.addBlob(body)
		msg.SaveDate = s.now().UTC()
		s.add(a, m, msg)
		s.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: account, Mailbox: name, UIDs: []uint32{msg.UID}, ModSeq: msg.ModSeq})
		return nil
	})
	if err != nil {
		return store.Message{}, err
	}
	return clone(&msg), nil
}

// ListMessages implements store.Messages.
func (s *Store) ListMessages(ctx context.Context, account, mailbox string, uids store.UIDSet) ([]store.Message, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	var out []store.Message
	err = s.read(ctx, func() error {
		_, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		out = []store.Message{}
		for _, msg := range m.selectUIDs(uids) {
			out = append(out, clone(msg))
		}
		return nil
	})
	return out, err
}

// hasFlag reports whether flags holds f, compared case-insensitively
// (RFC 9051 §2.3.2).
func hasFlag(flags []string, f string) bool {
	return slices.ContainsFunc(flags, func(x string) bool { return strings.EqualFold(x, f) })
}

// matches reports whether msg meets every set criterion of c.
func matches(msg *store.Message, c store.SearchCriteria) bool {
	date := wallClock(msg.InternalDate)
	switch {
	case !c.UIDs.Contains(msg.UID),
		!c.Since.IsZero() && date.Before(wallClock(c.Since)),
		!c.Before.IsZero() && !date.Before(wallClock(c.Before)),
		c.Larger > 0 && msg.Size <= c.Larger,
		c.Smaller > 0 && msg.Size >= c.Smaller,
		msg.ModSeq < c.ModSeqAtLeast:
		return false
	}
	for _, f := range c.WithFlags {
		if !hasFlag(msg.Flags, f) {
			return false
		}
	}
	for _, f := range c.WithoutFlags {
		if hasFlag(msg.Flags, f) {
			return false
		}
	}
	return true
}

// Search implements store.Messages. It reads only the index.
func (s *Store) Search(ctx context.Context, account, mailbox string, c store.SearchCriteria) ([]uint32, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	for _, list := range []*[]string{&c.WithFlags, &c.WithoutFlags} {
		canon := make([]string, len(*list))
		for i, f := range *list {
			if canon[i], err = store.CanonicalFlag(f); err != nil {
				return nil, err
			}
		}
		*list = canon
	}
	out := []uint32{}
	err = s.read(ctx, func() error {
		_, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		for _, msg := range m.msgs {
			if matches(msg, c) {
				out = append(out, msg.UID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// OpenBody implements store.Messages. The reader holds the body's bytes,
// so it reads whole even if the message is expunged meanwhile.
func (s *Store) OpenBody(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	var data []byte
	err = s.read(ctx, func() error {
		_, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		i, found := slices.BinarySearchFunc(m.msgs, uid, func(msg *store.Message, uid uint32) int {
			return cmp.Compare(msg.UID, uid)
		})
		if !found {
			return errorf("message %d: %w", uid, store.ErrNoMessage)
		}
		data = s.blobs[m.msgs[i].BlobID].data
		return nil
	})
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// StoreFlags implements store.Messages. All messages changed by one call
// share one new MODSEQ (RFC 7162 §3.1: it must only be greater than every
// earlier one). Messages that fail UnchangedSince are listed in Modified
// and are not in Updated.
func (s *Store) StoreFlags(ctx context.Context, account, mailbox string, req store.StoreFlagsRequest) (store.StoreFlagsResult, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return store.StoreFlagsResult{}, err
	}
	if req.Op != store.FlagsReplace && req.Op != store.FlagsAdd && req.Op != store.FlagsRemove {
		return store.StoreFlagsResult{}, errorf("%w: unknown flag operation %d", store.ErrInvalid, req.Op)
	}
	flags, err := store.NormalizeFlags(req.Flags)
	if err != nil {
		return store.StoreFlagsResult{}, err
	}
	res := store.StoreFlagsResult{Updated: []store.Message{}}
	err = s.write(ctx, func() error {
		_, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		var modseq uint64
		var changed []uint32
		for _, msg := range m.selectUIDs(req.UIDs) {
			// RFC 7162 §3.1.3: UNCHANGEDSINCE fails for messages whose
			// MODSEQ is greater than the given value.
			if req.UnchangedSince > 0 && msg.ModSeq > req.UnchangedSince {
				res.Modified = append(res.Modified, msg.UID)
				continue
			}
			if nf := store.ApplyFlags(msg.Flags, req.Op, flags); !slices.Equal(nf, msg.Flags) {
				if modseq == 0 {
					m.modSeq++
					modseq = m.modSeq
				}
				msg.Flags, msg.ModSeq = nf, modseq
				changed = append(changed, msg.UID)
			}
			res.Updated = append(res.Updated, clone(msg))
		}
		if len(changed) > 0 {
			s.publish(store.Change{Kind: store.ChangeFlags, Account: account, Mailbox: name, UIDs: changed, ModSeq: modseq})
		}
		res.ModSeq = modseq
		return nil
	})
	if err != nil {
		return store.StoreFlagsResult{}, err
	}
	return res, nil
}

// Expunge implements store.Messages.
func (s *Store) Expunge(ctx context.Context, account, mailbox string, uids store.UIDSet) ([]uint32, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	out := []uint32{}
	err = s.write(ctx, func() error {
		a, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		msgs := slices.DeleteFunc(m.selectUIDs(uids), func(msg *store.Message) bool {
			return !slices.Contains(msg.Flags, store.FlagDeleted)
		})
		if len(msgs) == 0 {
			return nil
		}
		var ms uint64
		out, ms = s.remove(a, m, msgs)
		s.publish(store.Change{Kind: store.ChangeExpunged, Account: account, Mailbox: name, UIDs: out, ModSeq: ms})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Copy implements store.Messages. Copies keep flags and internal date and
// share the source's body.
func (s *Store) Copy(ctx context.Context, account, src, dst string, uids store.UIDSet) ([]store.UIDPair, error) {
	return s.copyOrMove(ctx, account, src, dst, uids, false)
}

// Move implements store.Messages (RFC 6851): the copies are added and the
// originals expunged in one step. Usage does not change, so a move is
// never refused for quota.
func (s *Store) Move(ctx context.Context, account, src, dst string, uids store.UIDSet) ([]store.UIDPair, error) {
	return s.copyOrMove(ctx, account, src, dst, uids, true)
}

func (s *Store) copyOrMove(ctx context.Context, account, src, dst string, uids store.UIDSet, move bool) ([]store.UIDPair, error) {
	srcName, err := store.CleanMailboxName(src)
	if err != nil {
		return nil, err
	}
	dstName, err := store.CleanMailboxName(dst)
	if err != nil {
		return nil, err
	}
	pairs := []store.UIDPair{}
	err = s.write(ctx, func() error {
		a, sm, err := s.mailbox(account, srcName)
		if err != nil {
			return err
		}
		_, dm, err := s.mailbox(account, dstName)
		if err != nil {
			return err
		}
		msgs := sm.selectUIDs(uids)
		if len(msgs) == 0 {
			return nil
		}
		var size int64
		for _, msg := range msgs {
			size += msg.Size
		}
		if !move {
			if err := s.checkQuota([]quotaAdd{{account, size, int64(len(msgs))}}); err != nil {
				return err
			}
		}
		first, modseq, err := dm.allocUIDs(len(msgs))
		if err != nil {
			return err
		}
		added := make([]uint32, len(msgs))
		saved := s.now().UTC() // RFC 8514: the time of the COPY or MOVE
		for i, msg := range msgs {
			c := clone(msg)
			c.UID, c.ModSeq, c.SaveDate = first+uint32(i), modseq, saved
			s.add(a, dm, c)
			pairs = append(pairs, store.UIDPair{Src: msg.UID, Dst: c.UID})
			added[i] = c.UID
		}
		s.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: account, Mailbox: dstName, UIDs: added, ModSeq: modseq})
		if move {
			gone, ms := s.remove(a, sm, msgs)
			s.publish(store.Change{Kind: store.ChangeExpunged, Account: account, Mailbox: srcName, UIDs: gone, ModSeq: ms})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pairs, nil
}

// Changes implements store.Messages.
func (s *Store) Changes(ctx context.Context, account, mailbox string, sinceModSeq uint64) (store.ChangeSet, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return store.ChangeSet{}, err
	}
	cs := store.ChangeSet{Changed: []store.Message{}, Vanished: []uint32{}}
	err = s.read(ctx, func() error {
		_, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		for _, msg := range m.msgs {
			if msg.ModSeq > sinceModSeq {
				cs.Changed = append(cs.Changed, clone(msg))
			}
		}
		for uid, ms := range m.expunged {
			if ms > sinceModSeq {
				cs.Vanished = append(cs.Vanished, uid)
			}
		}
		slices.Sort(cs.Vanished)
		return nil
	})
	if err != nil {
		return store.ChangeSet{}, err
	}
	return cs, nil
}
