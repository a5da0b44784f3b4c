package migration

import (
	"context"
	"time"

	"github.com/mailyard/mailyard/store"
)

// PassStatus is what the runs keep of the passes of a target whose
// source is not an IMAP collector's (an EWS job, made by [RunSpec].Pass):
// the per-user status a collector keeps in its record ([MailboxStatus]).
// It is updated with the run's history, in the same transaction, when
// such a pass ends.
type PassStatus struct {
	Target string
	// Protocol and Endpoint are those of the last pass's job; Host, Port
	// and Login its source (never a password).
	Protocol string
	Endpoint string `json:",omitempty"`
	Host     string `json:",omitempty"`
	Port     int    `json:",omitempty"`
	Login    string `json:",omitempty"`
	// LastRun is the run of the last pass, LastPass when it ended.
	LastRun  int64
	LastPass time.Time
	// LastSuccess is the end of the last successful pass (zero if none);
	// Passes counts the successful passes.
	LastSuccess time.Time `json:",omitzero"`
	Passes      int
	// LastMessage is the last pass's summary; LastError and ErrorClass
	// say why it failed (empty when it succeeded).
	LastMessage string     `json:",omitempty"`
	LastError   string     `json:",omitempty"`
	ErrorClass  ErrorClass `json:",omitempty"`
}

// PassStatus returns the status of target's passes made by runs with
// their own Pass; store.ErrNotFound if there was none.
func (m *Migrator) PassStatus(ctx context.Context, target string) (PassStatus, error) {
	key := canonicalTarget(target)
	if key == "" {
		return PassStatus{}, store.ErrNotFound
	}
	var ps PassStatus
	if _, err := getJSON(ctx, m.opts.Store, nsPassStatus, key, &ps); err != nil {
		return PassStatus{}, err
	}
	return ps, nil
}

// txUpdatePassStatus folds the ended pass rm into its target's
// PassStatus. A canceled pass (interrupted) changes nothing: it neither
// succeeded nor failed.
func txUpdatePassStatus(tx store.RecordTx, rm RunMailbox) error {
	if rm.Status != RunMailboxOK && rm.Status != RunMailboxError {
		return nil
	}
	var ps PassStatus
	if _, err := txGetJSON(tx, nsPassStatus, rm.Target, &ps); err != nil {
		return err
	}
	ps.Target, ps.Protocol, ps.Endpoint = rm.Target, rm.Protocol, rm.Endpoint
	ps.Host, ps.Port, ps.Login = rm.Host, rm.Port, rm.Login
	ps.LastRun, ps.LastPass = rm.RunID, rm.Ended
	ps.LastMessage, ps.LastError, ps.ErrorClass = rm.Message, rm.Error, rm.Class
	if rm.Status == RunMailboxOK {
		ps.LastSuccess = rm.Ended
		ps.Passes++
	}
	return txPutJSON(tx, nsPassStatus, rm.Target, ps)
}
