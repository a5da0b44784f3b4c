package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// A directory syncs; a missing one is an error that says so.
func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing directory: %v", err)
	}
}

func TestCreateFile(t *testing.T) {
	dir := t.TempDir()
	n, err := CreateFile(dir, "a", strings.NewReader("hello"))
	if err != nil || n != 5 {
		t.Fatalf("CreateFile: %d, %v", n, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a")); err != nil || string(b) != "hello" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if _, err := CreateFile(dir, "a", strings.NewReader("again")); err == nil {
		t.Fatal("CreateFile over an existing file succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "hello" {
		t.Fatalf("the existing file changed to %q", b)
	}
	// A reader that fails leaves no file behind.
	if _, err := CreateFile(dir, "b", iotest.ErrReader(errors.New("cut"))); err == nil {
		t.Fatal("CreateFile of a failing reader succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Fatalf("a failed CreateFile left its file: %v", err)
	}
}
