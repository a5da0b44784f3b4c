//go:build !unix

package sqlite

import (
	"context"
	"fmt"
	"os"
)

// lockStore without flock: the store cannot tell whether another process
// has it open, so it never claims exclusivity and never sweeps orphans
// (Check still reports them).
func lockStore(ctx context.Context, path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: lock: %w", err)
	}
	return f, false, nil
}

func shareLock(ctx context.Context, f *os.File) error { return nil }

func unlockStore(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close()
}
