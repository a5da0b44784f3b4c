// Package durable holds the module's one directory fsync: what makes a
// file created, renamed or removed in a directory survive a crash once
// the file itself is synced.
package durable

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CreateFile writes r to a new file name in dir (an existing one is an
// error), fsyncs it and dir, and returns its size: when it returns nil
// the file survives a crash. On error the file is removed.
func CreateFile(dir, name string, r io.Reader) (int64, error) {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = SyncDir(dir)
	}
	if err != nil {
		os.Remove(path)
		return 0, err
	}
	return n, nil
}

// SyncDir fsyncs the directory at path, so that the entries created,
// renamed or removed in it are on disk: on POSIX systems a file's own
// fsync does not make its name durable (fsync(2): "an explicit fsync()
// on a file descriptor for the directory is also needed").
func SyncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	return nil
}
