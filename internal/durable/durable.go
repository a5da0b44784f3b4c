// Package durable holds the module's one directory fsync: what makes a
// file created, renamed or removed in a directory survive a crash once
// the file itself is synced.
package durable

import (
	"fmt"
	"os"
)

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
