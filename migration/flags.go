package migration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mailyard/mailyard/store"
)

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
