package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/internal/testpeer"
	"github.com/mailyard/mailyard/store"
)

// TestNoSpace fills a real (tmpfs) disk under the store: an append fails
// writing its body, a mailbox creation writing the database, both with
// store.ErrNoSpace and without a trace; once space is freed both succeed
// and the store checks clean.
func TestNoSpace(t *testing.T) {
	disk := testpeer.Tmpfs(t, 4<<20)
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(disk, "store"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.CreateAccount(ctx, "a", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	body := "Subject: x\r\n\r\n" + strings.Repeat("body line\r\n", 10000)
	filler := testpeer.FillDisk(t, disk)

	if _, err := s.Append(ctx, "a", store.Inbox, strings.NewReader(body), store.AppendOptions{}); !errors.Is(err, store.ErrNoSpace) {
		t.Errorf("append on a full disk: %v, want ErrNoSpace", err)
	}
	if _, err := s.CreateMailbox(ctx, "a", "Full", store.SpecialNone); !errors.Is(err, store.ErrNoSpace) {
		t.Errorf("create mailbox on a full disk: %v, want ErrNoSpace", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "a", store.Inbox, strings.NewReader(body), store.AppendOptions{}); err != nil {
		t.Errorf("append after space was freed: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, "a", "Full", store.SpecialNone); err != nil {
		t.Errorf("create mailbox after space was freed: %v", err)
	}
	msgs, err := s.ListMessages(ctx, "a", store.Inbox, nil)
	if err != nil || len(msgs) != 1 {
		t.Errorf("INBOX holds %d messages (%v), want the one appended after the space was freed", len(msgs), err)
	}
	if probs, err := s.Check(ctx); err != nil || len(probs) != 0 {
		t.Errorf("check: %v %v", probs, err)
	}
}
