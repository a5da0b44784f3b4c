package smtp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store/sqlite"
)

// Reclaim on the directory of one process removes every file without a
// record (a crash between writing it and committing the record) and
// keeps the held messages.
func TestQuarantineReclaimDir(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := t.TempDir()
	q, err := NewQuarantine(QuarantineOptions{Dir: dir, Records: st, Deliverer: st})
	if err != nil {
		t.Fatal(err)
	}
	id, err := q.hold(ctx, strings.NewReader("Subject: held\r\n\r\nx\r\n"), quarantineEntry{From: "a@remote.test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "orphan"), []byte("never acknowledged"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := q.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 1 || des[0].Name() != id {
		t.Fatalf("after Reclaim the directory holds %v, want only %s", des, id)
	}
	if _, err := st.GetRecord(ctx, QuarantineNamespace, id); err != nil {
		t.Fatalf("record of the held message: %v", err)
	}
}
