//go:build unix

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lockStore opens the lock file and takes a lock on it: exclusive if no
// other process holds it (the caller may then sweep crash leftovers and
// must call shareLock), else shared.
func lockStore(ctx context.Context, path string) (f *os.File, exclusive bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: lock: %w", err)
	}
	err = flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, false, fmt.Errorf("sqlite: lock %s: %w", path, err)
	}
	if err := shareLock(ctx, f); err != nil {
		f.Close()
		return nil, false, err
	}
	return f, false, nil
}

// shareLock takes (or converts to) a shared lock, waiting while another
// process holds the exclusive lock to sweep.
func shareLock(ctx context.Context, f *os.File) error {
	for {
		err := flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("sqlite: shared lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sqlite: waiting for store lock: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func unlockStore(f *os.File) error {
	if f == nil {
		return nil
	}
	// Closing the file releases the flock.
	return f.Close()
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
