package memstore

import (
	"context"
	"fmt"

	"github.com/mailyard/mailyard/store"
)

// Check implements store.Checker. It verifies that the body every message
// names exists with the message's size, that every body is named by as
// many messages as its reference count says (none: an orphan), and that
// UIDNEXT, HIGHESTMODSEQ and usage agree with the messages.
func (s *Store) Check(ctx context.Context) ([]store.Problem, error) {
	var problems []store.Problem
	add := func(kind, format string, args ...any) {
		problems = append(problems, store.Problem{Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
	err := s.read(ctx, func() error {
		refs := make(map[string]int)
		for _, id := range sortedKeys(s.accounts) {
			a := s.accounts[id]
			var used store.Usage
			for _, name := range sortedKeys(a.mailboxes) {
				m := a.mailboxes[name]
				var maxUID uint32
				var maxModSeq uint64
				for _, msg := range m.msgs {
					refs[msg.BlobID]++
					used.Bytes += msg.Size
					used.Messages++
					maxUID, maxModSeq = max(maxUID, msg.UID), max(maxModSeq, msg.ModSeq)
					switch b := s.blobs[msg.BlobID]; {
					case b == nil:
						add("missing-blob", "account %s mailbox %q UID %d: blob %s is referenced but missing", id, name, msg.UID, msg.BlobID)
					case int64(len(b.data)) != msg.Size:
						add("size-mismatch", "blob %s has %d bytes, index says %d", msg.BlobID, len(b.data), msg.Size)
					}
				}
				for uid, ms := range m.expunged {
					maxUID, maxModSeq = max(maxUID, uid), max(maxModSeq, ms)
				}
				if maxUID >= m.uidNext {
					add("counter", "account %s mailbox %q: UIDNEXT %d <= highest UID %d", id, name, m.uidNext, maxUID)
				}
				if maxModSeq > m.modSeq {
					add("counter", "account %s mailbox %q: HIGHESTMODSEQ %d < MODSEQ %d in use", id, name, m.modSeq, maxModSeq)
				}
			}
			if used != a.used {
				add("counter", "account %s: usage says %+v, messages hold %+v", id, a.used, used)
			}
		}
		for _, id := range sortedKeys(s.blobs) {
			switch b := s.blobs[id]; {
			case refs[id] == 0:
				add("orphan-blob", "blob %s (%d bytes) has no index row", id, len(b.data))
			case refs[id] != b.refs:
				add("counter", "blob %s: %d references counted, %d index rows", id, b.refs, refs[id])
			}
		}
		return nil
	})
	return problems, err
}
