package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mailyard/mailyard/store"
)

// Bounds of what a Status keeps.
const (
	MaxStatusLog    = 500
	MaxStatusErrors = 100
	// MaxStatusUsers bounds Status.VanishedUsers and Status.DeletedUsers.
	MaxStatusUsers = 100
)

// Sync states.
const (
	StateRunning = "running"
	StateSuccess = "success"
	StateError   = "error"
)

// Status is what administrators see about a connection's syncs.
type Status struct {
	Name  string
	State string // running, success, error
	// Kind is "full" or "incremental".
	Kind     string
	Server   string // URL of the server the run used
	Started  time.Time
	Finished time.Time
	Duration time.Duration
	// Counts of the last run: entries created, changed, disabled (users
	// the source disables, and users found missing from it), removed
	// (groups and contacts gone from the source, users missing for longer
	// than Config.DeleteVanishedAfter, with their mailbox), seen without
	// change, and left out (unusable or excluded entries, failed writes).
	Added     int
	Updated   int
	Disabled  int
	Deleted   int
	Unchanged int
	Skipped   int
	// Reappeared counts the users listed again after they had vanished
	// (enabled again, unless the source or an administrator disabled
	// them).
	Reappeared int
	// Vanished is how many users the last full sync found missing from
	// the source: disabled, with their addresses, account and mail kept
	// until they reappear, an administrator deletes them, or
	// Config.DeleteVanishedAfter passes. VanishedUsers lists them by
	// address (at most MaxStatusUsers). Incremental runs, which cannot
	// see deletions, carry both over, less the users that reappeared.
	Vanished      int
	VanishedUsers []VanishedUser
	// DeletedUsers are the addresses of the users the last run deleted
	// with their mailbox (at most MaxStatusUsers).
	DeletedUsers []string
	// Errors are the last run's problems (at most MaxStatusErrors); Log
	// is its log (at most MaxStatusLog lines, the latest kept).
	Errors []string
	Log    []string
	// Cursor is the highest change marker (uSNChanged or
	// modifyTimestamp) seen by the last successful run, at CursorServer:
	// incremental syncs ask for what changed since. LastFull is when the
	// last full sync succeeded.
	Cursor       string
	CursorServer string
	LastFull     time.Time
}

// VanishedUser is a user missing from the source since Since.
type VanishedUser struct {
	Address string
	Since   time.Time
}

// ReadStatus returns the stored status of connection name; the zero
// Status (with Name set) if it never ran.
func ReadStatus(ctx context.Context, records store.Records, name string) (Status, error) {
	rec, err := records.GetRecord(ctx, nsStatus, name)
	if errors.Is(err, store.ErrNotFound) {
		return Status{Name: name}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("ldap: read status: %w", err)
	}
	var s Status
	if err := store.DecodeJSON(rec, &s); err != nil {
		return Status{}, fmt.Errorf("ldap: status: %w", err)
	}
	return s, nil
}

func writeStatus(ctx context.Context, records store.Records, s Status) error {
	err := records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return store.PutJSON(tx, nsStatus, s.Name, s, -1)
	})
	if err != nil {
		return fmt.Errorf("ldap: write status: %w", err)
	}
	return nil
}

// run collects one sync's counts and log, safe for the worker goroutines.
type run struct {
	mu  sync.Mutex
	st  Status
	now func() time.Time
	// writeFailed is set when an entry could not be written.
	writeFailed bool
	// dom remembers the domains made sure of, for users and groups alike.
	dom *domains
}

func (r *run) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := r.now().UTC().Format(time.RFC3339) + " " + fmt.Sprintf(format, args...)
	r.st.Log = append(r.st.Log, line)
	if len(r.st.Log) > MaxStatusLog {
		r.st.Log = r.st.Log[len(r.st.Log)-MaxStatusLog:]
	}
}

func (r *run) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.logf("error: %s", msg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Skipped++
	if len(r.st.Errors) < MaxStatusErrors {
		r.st.Errors = append(r.st.Errors, msg)
	}
}

func (r *run) count(f func(s *Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.st)
}

func (r *run) snapshot() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.st
	s.Log = append([]string(nil), s.Log...)
	s.Errors = append([]string(nil), s.Errors...)
	s.VanishedUsers = append([]VanishedUser(nil), s.VanishedUsers...)
	s.DeletedUsers = append([]string(nil), s.DeletedUsers...)
	return s
}

// String summarises the status in one line.
func (s Status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", s.Name, s.State)
	if s.State == "" {
		b.WriteString("never synced")
		return b.String()
	}
	fmt.Fprintf(&b, " (%s sync from %s at %s, %s): added %d, updated %d, disabled %d, deleted %d, unchanged %d, skipped %d, reappeared %d; %d vanished users kept",
		s.Kind, s.Server, s.Started.UTC().Format(time.RFC3339), s.Duration.Round(time.Millisecond),
		s.Added, s.Updated, s.Disabled, s.Deleted, s.Unchanged, s.Skipped, s.Reappeared, s.Vanished)
	return b.String()
}
