package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/store"
)

// The model of one account's mailboxes that the store is checked against.
type modelMsg struct {
	uid   uint32
	flags []string
	body  []byte
}

type modelBox struct {
	uidValidity uint32
	maxUID      uint32 // highest UID ever given out; UIDs never go back
	maxModSeq   uint64
	msgs        []modelMsg // by UID
}

type model struct {
	boxes map[string]*modelBox
}

var (
	modelNames = []string{"INBOX", "Sent", "a", "b", "a/x", "a/x/y", "b/x", "INBOX/sub"}
	modelFlags = []string{store.FlagSeen, store.FlagDeleted, store.FlagFlagged, "$Label", "$Other"}
)

func (m *model) names() []string {
	out := make([]string, 0, len(m.boxes))
	for n := range m.boxes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func normFlags(f []string) []string {
	n, err := store.NormalizeFlags(f)
	if err != nil {
		panic(err)
	}
	return n
}

// testModel runs random sequences of mail operations against the store
// and an in-memory model, one fresh account per sequence, and compares
// them after every step.
func testModel(t *testing.T, open Opener) {
	s := open(t)
	ctx := ctxT(t)
	seq := 0
	rapid.Check(t, func(rt *rapid.T) {
		seq++
		acct := fmt.Sprintf("model%d", seq)
		if _, err := s.CreateAccount(ctx, acct, store.Quota{}); err != nil {
			rt.Fatalf("CreateAccount: %v", err)
		}
		m := &model{boxes: map[string]*modelBox{}}
		boxes, err := s.ListMailboxes(ctx, acct)
		if err != nil {
			rt.Fatal(err)
		}
		for _, b := range boxes {
			m.boxes[b.Name] = &modelBox{uidValidity: b.UIDValidity, maxModSeq: b.HighestModSeq}
		}
		steps := rapid.IntRange(1, 25).Draw(rt, "steps")
		for range steps {
			touched := modelStep(rt, ctx, s, acct, m)
			compareModel(rt, ctx, s, acct, m, touched, false)
		}
		compareModel(rt, ctx, s, acct, m, nil, true)
		if err := s.DeleteAccount(ctx, acct); err != nil {
			rt.Fatalf("DeleteAccount: %v", err)
		}
	})
	noProblems(t, s)
}

func pickSet(rt *rapid.T, b *modelBox) store.UIDSet {
	switch rapid.IntRange(0, 3).Draw(rt, "setKind") {
	case 0:
		return nil
	case 1:
		return store.UIDSet{{Start: 1, Stop: 0}}
	default:
		var set store.UIDSet
		hi := int(b.maxUID) + 2
		for range rapid.IntRange(1, 3).Draw(rt, "ranges") {
			lo := uint32(rapid.IntRange(1, hi).Draw(rt, "lo"))
			set = append(set, store.UIDRange{Start: lo, Stop: lo + uint32(rapid.IntRange(0, 2).Draw(rt, "len"))})
		}
		return set
	}
}

func expectErr(rt *rapid.T, what string, err, want error) {
	if want == nil && err != nil {
		rt.Fatalf("%s: unexpected error %v", what, err)
	}
	if want != nil && !errors.Is(err, want) {
		rt.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

// modelStep does one random operation on store and model and returns
// the mailboxes whose messages it may have changed.
func modelStep(rt *rapid.T, ctx context.Context, s store.Store, acct string, m *model) (touched []string) {
	names := m.names()
	existing := rapid.SampledFrom(names).Draw(rt, "mailbox")
	anyName := rapid.SampledFrom(modelNames).Draw(rt, "name")
	switch op := rapid.IntRange(0, 9).Draw(rt, "op"); op {
	case 0, 1, 2: // Append
		touched = []string{existing}
		body := rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(rt, "body")
		flags := rapid.SliceOfDistinct(rapid.SampledFrom(modelFlags), rapid.ID).Draw(rt, "flags")
		msg, err := s.Append(ctx, acct, existing, bytes.NewReader(body), store.AppendOptions{Flags: flags})
		expectErr(rt, "Append", err, nil)
		b := m.boxes[existing]
		if msg.UID <= b.maxUID {
			rt.Fatalf("Append UID %d not above %d", msg.UID, b.maxUID)
		}
		if msg.ModSeq <= b.maxModSeq {
			rt.Fatalf("Append MODSEQ %d not above %d", msg.ModSeq, b.maxModSeq)
		}
		b.maxUID, b.maxModSeq = msg.UID, msg.ModSeq
		b.msgs = append(b.msgs, modelMsg{uid: msg.UID, flags: normFlags(flags), body: body})
	case 3: // StoreFlags
		touched = []string{existing}
		b := m.boxes[existing]
		set := pickSet(rt, b)
		op := store.FlagOp(rapid.IntRange(0, 2).Draw(rt, "flagop"))
		flags := rapid.SliceOfDistinct(rapid.SampledFrom(modelFlags), rapid.ID).Draw(rt, "flags")
		res, err := s.StoreFlags(ctx, acct, existing, store.StoreFlagsRequest{UIDs: set, Op: op, Flags: flags})
		expectErr(rt, "StoreFlags", err, nil)
		nf := normFlags(flags)
		var want []uint32
		for i := range b.msgs {
			mm := &b.msgs[i]
			if !set.Contains(mm.uid) {
				continue
			}
			want = append(want, mm.uid)
			var next []string
			switch op {
			case store.FlagsReplace:
				next = nf
			case store.FlagsAdd:
				next = normFlags(append(slices.Clone(mm.flags), nf...))
			case store.FlagsRemove:
				next = []string{}
				for _, f := range mm.flags {
					if !slices.Contains(nf, f) {
						next = append(next, f)
					}
				}
			}
			mm.flags = next
		}
		var got []uint32
		for _, u := range res.Updated {
			got = append(got, u.UID)
			if u.ModSeq > b.maxModSeq {
				b.maxModSeq = u.ModSeq
			}
		}
		if !slices.Equal(got, want) {
			rt.Fatalf("StoreFlags updated %v, want %v", got, want)
		}
	case 4: // Expunge
		touched = []string{existing}
		b := m.boxes[existing]
		set := pickSet(rt, b)
		gone, err := s.Expunge(ctx, acct, existing, set)
		expectErr(rt, "Expunge", err, nil)
		var want []uint32
		kept := b.msgs[:0]
		for _, mm := range b.msgs {
			if set.Contains(mm.uid) && slices.Contains(mm.flags, store.FlagDeleted) {
				want = append(want, mm.uid)
			} else {
				kept = append(kept, mm)
			}
		}
		b.msgs = kept
		if !slices.Equal(gone, want) && !(len(gone) == 0 && len(want) == 0) {
			rt.Fatalf("Expunge removed %v, want %v", gone, want)
		}
	case 5, 6: // Copy or Move
		dst := rapid.SampledFrom(names).Draw(rt, "dst")
		touched = []string{existing, dst}
		sb, db := m.boxes[existing], m.boxes[dst]
		set := pickSet(rt, sb)
		move := op == 6
		var pairs []store.UIDPair
		var err error
		if move {
			pairs, err = s.Move(ctx, acct, existing, dst, set)
		} else {
			pairs, err = s.Copy(ctx, acct, existing, dst, set)
		}
		expectErr(rt, "Copy/Move", err, nil)
		var selected []modelMsg
		kept := []modelMsg{}
		for _, mm := range sb.msgs {
			if set.Contains(mm.uid) {
				selected = append(selected, mm)
			} else {
				kept = append(kept, mm)
			}
		}
		if len(pairs) != len(selected) {
			rt.Fatalf("Copy/Move returned %d pairs, want %d", len(pairs), len(selected))
		}
		var added []modelMsg
		for i, p := range pairs {
			if p.Src != selected[i].uid || p.Dst <= db.maxUID {
				rt.Fatalf("pair %+v: want Src %d and Dst > %d", p, selected[i].uid, db.maxUID)
			}
			db.maxUID = p.Dst
			added = append(added, modelMsg{uid: p.Dst, flags: slices.Clone(selected[i].flags), body: selected[i].body})
		}
		if move {
			sb.msgs = kept
		}
		db.msgs = append(db.msgs, added...)
	case 7: // CreateMailbox
		_, err := s.CreateMailbox(ctx, acct, anyName, store.SpecialNone)
		if m.boxes[anyName] != nil {
			expectErr(rt, "CreateMailbox existing", err, store.ErrExists)
			return nil
		}
		expectErr(rt, "CreateMailbox", err, nil)
		segs := strings.Split(anyName, "/")
		for i := 1; i <= len(segs); i++ {
			n := strings.Join(segs[:i], "/")
			if m.boxes[n] == nil {
				mb, err := s.Mailbox(ctx, acct, n)
				if err != nil {
					rt.Fatalf("created mailbox or parent %s: %v", n, err)
				}
				for on, ob := range m.boxes {
					if ob.uidValidity == mb.UIDValidity {
						rt.Fatalf("new mailbox %s reuses UIDVALIDITY %d of %s", n, mb.UIDValidity, on)
					}
				}
				m.boxes[n] = &modelBox{uidValidity: mb.UIDValidity, maxModSeq: mb.HighestModSeq}
			}
		}
	case 8: // RenameMailbox
		err := s.RenameMailbox(ctx, acct, existing, anyName)
		var want error
		moving := map[string]string{}
		for n := range m.boxes {
			if n == existing || strings.HasPrefix(n, existing+"/") {
				moving[n] = anyName + strings.TrimPrefix(n, existing)
			}
		}
		switch {
		case existing == store.Inbox:
			want = store.ErrInvalid
		case anyName == existing:
			want = store.ErrExists
		case strings.HasPrefix(anyName, existing+"/"):
			want = store.ErrInvalid
		}
		if want == nil {
			for _, to := range moving {
				if m.boxes[to] != nil {
					want = store.ErrExists
				}
			}
		}
		if want != nil {
			if err == nil {
				rt.Fatalf("RenameMailbox %s -> %s succeeded, want %v", existing, anyName, want)
			}
			expectErr(rt, "RenameMailbox", err, want)
			return nil
		}
		expectErr(rt, "RenameMailbox", err, nil)
		moved := map[string]*modelBox{}
		for from, to := range moving {
			touched = append(touched, to)
			moved[to] = m.boxes[from]
			delete(m.boxes, from)
		}
		for to, b := range moved {
			m.boxes[to] = b
		}
		segs := strings.Split(anyName, "/")
		for i := 1; i < len(segs); i++ {
			n := strings.Join(segs[:i], "/")
			if m.boxes[n] == nil {
				mb, err := s.Mailbox(ctx, acct, n)
				if err != nil {
					rt.Fatalf("parent %s of renamed mailbox: %v", n, err)
				}
				m.boxes[n] = &modelBox{uidValidity: mb.UIDValidity, maxModSeq: mb.HighestModSeq}
			}
		}
	case 9: // DeleteMailbox
		err := s.DeleteMailbox(ctx, acct, anyName)
		switch {
		case anyName == store.Inbox:
			expectErr(rt, "DeleteMailbox INBOX", err, store.ErrInvalid)
		case m.boxes[anyName] == nil:
			expectErr(rt, "DeleteMailbox missing", err, store.ErrNotFound)
		default:
			expectErr(rt, "DeleteMailbox", err, nil)
			delete(m.boxes, anyName)
		}
	}
	return touched
}

// compareModel checks the mailbox list and counters, and the messages of
// the mailboxes in only (all if only is nil), their bodies too if bodies.
func compareModel(rt *rapid.T, ctx context.Context, s store.Store, acct string, m *model, only []string, bodies bool) {
	boxes, err := s.ListMailboxes(ctx, acct)
	if err != nil {
		rt.Fatal(err)
	}
	var got []string
	for _, b := range boxes {
		got = append(got, b.Name)
		mb := m.boxes[b.Name]
		if mb == nil {
			rt.Fatalf("store has mailbox %s the model does not", b.Name)
		}
		if b.UIDValidity != mb.uidValidity {
			rt.Fatalf("%s: UIDVALIDITY %d, model %d", b.Name, b.UIDValidity, mb.uidValidity)
		}
		if b.UIDNext <= mb.maxUID {
			rt.Fatalf("%s: UIDNEXT %d not above highest UID given %d", b.Name, b.UIDNext, mb.maxUID)
		}
		if b.HighestModSeq < mb.maxModSeq {
			rt.Fatalf("%s: HIGHESTMODSEQ %d went below %d", b.Name, b.HighestModSeq, mb.maxModSeq)
		}
		mb.maxModSeq = b.HighestModSeq
		if only != nil && !slices.Contains(only, b.Name) {
			continue
		}
		msgs, err := s.ListMessages(ctx, acct, b.Name, nil)
		if err != nil {
			rt.Fatal(err)
		}
		if len(msgs) != len(mb.msgs) {
			rt.Fatalf("%s: %d messages, model %d", b.Name, len(msgs), len(mb.msgs))
		}
		var size, unseen, deleted int64
		for i, msg := range msgs {
			want := mb.msgs[i]
			if msg.UID != want.uid || !slices.Equal(msg.Flags, want.flags) || msg.Size != int64(len(want.body)) {
				rt.Fatalf("%s: message %d = UID %d flags %v size %d; model UID %d flags %v size %d",
					b.Name, i, msg.UID, msg.Flags, msg.Size, want.uid, want.flags, len(want.body))
			}
			if msg.ModSeq > b.HighestModSeq {
				rt.Fatalf("%s: message MODSEQ %d above HIGHESTMODSEQ %d", b.Name, msg.ModSeq, b.HighestModSeq)
			}
			size += msg.Size
			if !slices.Contains(want.flags, store.FlagSeen) {
				unseen++
			}
			if slices.Contains(want.flags, store.FlagDeleted) {
				deleted++
			}
			if bodies {
				rc, err := s.OpenBody(ctx, acct, b.Name, msg.UID)
				if err != nil {
					rt.Fatal(err)
				}
				data, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(data, want.body) {
					rt.Fatalf("%s: body of UID %d = %q, %v; want %q", b.Name, msg.UID, data, err, want.body)
				}
			}
		}
		st, err := s.Status(ctx, acct, b.Name)
		if err != nil {
			rt.Fatal(err)
		}
		if st.Messages != int64(len(mb.msgs)) || st.Size != size || st.Unseen != unseen || st.Deleted != deleted {
			rt.Fatalf("%s: STATUS %d messages %d bytes %d unseen %d deleted, want %d %d %d %d",
				b.Name, st.Messages, st.Size, st.Unseen, st.Deleted, len(mb.msgs), size, unseen, deleted)
		}
	}
	if want := m.names(); !slices.Equal(got, want) {
		rt.Fatalf("mailboxes %v, model %v", got, want)
	}
	var total, count int64
	for _, b := range m.boxes {
		for _, mm := range b.msgs {
			total += int64(len(mm.body))
			count++
		}
	}
	u, _, err := s.Usage(ctx, acct)
	if err != nil {
		rt.Fatal(err)
	}
	if u.Bytes != total || u.Messages != count {
		rt.Fatalf("usage %+v, model %d bytes %d messages", u, total, count)
	}
}
