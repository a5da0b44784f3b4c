package imap

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mailyard/mailyard/internal/testpeer"
)

// TestDiskFull fills a real (tmpfs) disk under the store: every command
// that writes answers NO [LIMIT] with the reason (RFC 5530 §3), not
// [SERVERBUG], and works again once space is freed. Each command gets a
// fresh store: a write that failed half-way leaves the database room that
// a smaller one could use.
func TestDiskFull(t *testing.T) {
	for _, c := range []struct{ name, cmd string }{
		{"APPEND", "APPEND INBOX {14+}\r\nSubject: two\r\n"},
		{"CREATE", "CREATE Projects"},
		{"STORE", "STORE 1 +FLAGS (\\Flagged)"},
		{"COPY", "COPY 1 Archive"},
		{"MOVE", "MOVE 1 Archive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			disk := testpeer.Tmpfs(t, 4<<20)
			e := newEnvIn(t, filepath.Join(disk, "store"))
			e.deliver(e.aliceID, "INBOX", "Subject: one\r\n\r\nx\r\n")
			r := e.rawLogin()
			r.expectOK("SELECT INBOX")
			filler := testpeer.FillDisk(t, disk)
			_, st := r.cmd(c.cmd)
			if want := "NO [LIMIT] Not enough disk space on the server"; len(st) < len(want) || st[:len(want)] != want {
				t.Fatalf("%s on a full disk: %q, want %q", c.name, st, want)
			}
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			r.expectOK(c.cmd)
		})
	}
}
