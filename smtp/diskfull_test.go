package smtp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foxcpp/go-mockdns"

	"github.com/mailyard/mailyard/internal/testpeer"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// TestDiskFull fills a real (tmpfs) disk under the store and the spool:
// a message is refused with 452 4.3.1 (RFC 3463 §3.4 "mail system full",
// RFC 5321 §4.2.2 "insufficient system storage"), whether the store or
// the spool ran out, and the next one is accepted once space is freed.
func TestDiskFull(t *testing.T) {
	disk := testpeer.Tmpfs(t, 4<<20)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(disk, "store"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateAccount(ctx, "alice", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(disk, "spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	// Message authentication makes the server spool every message;
	// those over 256 KiB go to a file in SpoolDir.
	ts := startServer(t, Options{Deliverer: st, SpoolDir: spool, VerifyResolver: &mockdns.Resolver{Zones: map[string]mockdns.Zone{}}})
	msgs := map[string]string{
		"store": testMsg,
		"spool": testMsg + strings.Repeat("a line of the body\r\n", 20000),
	}
	c := ts.client(t)
	filler := testpeer.FillDisk(t, disk)
	for name, msg := range msgs {
		err := send(c, "sender@remote.test", []string{"alice@example.test"}, msg)
		if code, enh := smtpCode(err); code != 452 || enh != "4.3.1" {
			t.Errorf("%s full: %v, want 452 4.3.1", name, err)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for name, msg := range msgs {
		if err := send(c, "sender@remote.test", []string{"alice@example.test"}, msg); err != nil {
			t.Errorf("%s message after space was freed: %v", name, err)
		}
	}
	if got, err := st.ListMessages(ctx, "alice", store.Inbox, nil); err != nil || len(got) != len(msgs) {
		t.Errorf("INBOX holds %d messages (%v), want %d", len(got), err, len(msgs))
	}
}
