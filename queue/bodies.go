package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mailyard/mailyard/internal/durable"
)

// Bodies keeps the bodies of queued messages where every node that shares
// the [Store] reads them ([Options].Bodies): a recipient claimed by one
// node may have been queued by another, or by a node that was killed
// meanwhile. store/postgres implements it in the database that holds the
// recipients. Without it the queue keeps one file per body in
// [Options].Dir, which only that process reads.
//
// Every method is safe for concurrent use.
type Bodies interface {
	// PutQueueBody stores r as the body of message id (a new id) and
	// returns its size. The body must be durable by the time an
	// EnqueueRecipients of the same Store for id returns. On error
	// nothing of it need remain.
	PutQueueBody(ctx context.Context, id string, r io.Reader) (int64, error)
	// OpenQueueBody returns body id from its start. A body that is not
	// there is an error wrapping fs.ErrNotExist.
	OpenQueueBody(ctx context.Context, id string) (io.ReadCloser, error)
	// RemoveQueueBody removes body id; one that is not there is no
	// error.
	RemoveQueueBody(ctx context.Context, id string) error
	// SweepQueueBodies removes the bodies last written before cut that
	// no queued recipient names (left by a crash between PutQueueBody
	// and EnqueueRecipients, never acknowledged).
	SweepQueueBodies(ctx context.Context, cut time.Time) error
}

// SharedBodyGrace is how old a body without recipients must be before a
// queue with shared [Bodies] removes it at Start: another node may be
// between writing a body and queueing its recipients (the SMTP server
// delivers the local copies in between), which never takes this long.
const SharedBodyGrace = time.Hour

// dirBodies keeps bodies as fsynced files in one directory, for one
// process (the default when [Options].Bodies is nil).
type dirBodies struct {
	dir   string
	store Store
}

func (b dirBodies) path(id string) string { return filepath.Join(b.dir, id) }

func (b dirBodies) PutQueueBody(_ context.Context, id string, r io.Reader) (int64, error) {
	return durable.CreateFile(b.dir, id, r)
}

func (b dirBodies) OpenQueueBody(_ context.Context, id string) (io.ReadCloser, error) {
	return os.Open(b.path(id))
}

func (b dirBodies) RemoveQueueBody(_ context.Context, id string) error {
	if err := os.Remove(b.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// SweepQueueBodies removes files without recipients, and files whose
// names are no message id (temp files), modified before cut.
func (b dirBodies) SweepQueueBodies(ctx context.Context, cut time.Time) error {
	des, err := os.ReadDir(b.dir)
	if err != nil {
		return fmt.Errorf("dir: %w", err)
	}
	for _, de := range des {
		if de.IsDir() {
			continue
		}
		if fi, err := de.Info(); err != nil || !fi.ModTime().Before(cut) {
			continue
		}
		if validID(de.Name()) {
			rs, err := b.store.MessageRecipients(ctx, de.Name())
			if err != nil {
				return err
			}
			if len(rs) > 0 {
				continue
			}
		}
		if err := os.Remove(b.path(de.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
