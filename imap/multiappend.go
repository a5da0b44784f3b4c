package imap

import (
	"context"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/store"
)

// UndoAppend implements imapserver.SessionMultiAppend (RFC 3502): the
// messages a failed MULTIAPPEND appended are flagged \Deleted and
// expunged, even when the failure is the connection's end (the session's
// context is then cancelled, so the store is called without it).
func (s *session) UndoAppend(name string, uids []imap.UID) error {
	defer s.srv.begin()()
	name, err := mailboxName(name)
	if err != nil {
		return err
	}
	nums := make([]uint32, len(uids))
	for i, u := range uids {
		nums[i] = uint32(u)
	}
	set := compressUIDs(nums)
	ctx := context.WithoutCancel(s.ctx)
	b := s.srv.opts.Backend
	if _, err := b.StoreFlags(ctx, s.account, name, store.StoreFlagsRequest{UIDs: set, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		return err
	}
	_, err = b.Expunge(ctx, s.account, name, set)
	return err
}
