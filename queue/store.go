package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

// Store is the storage capability the queue needs: its recipients in a
// table of their own, found by an index on the next attempt time and
// claimed with a lease, so that a backlog costs the queue nothing in
// memory and several delivering processes (nodes) never attempt one
// recipient at the same time. store/sqlite and store/memstore implement
// it; queue/queuetest holds the conformance tests every implementation
// passes.
//
// The first six methods are the scheduler's; the rest serve the admin
// operations and the metrics. Every method is safe for concurrent use and
// each call is atomic.
type Store interface {
	// EnqueueRecipients adds the recipients of one new message: all of
	// them durably, or none. A (Msg, Index) already queued is
	// ErrDuplicate and nothing is added.
	EnqueueRecipients(ctx context.Context, rcpts []Recipient) error
	// ClaimRecipients leases to owner, until until, at most limit
	// recipients that are due: not held, Next <= now, and not leased
	// (LeaseUntil <= now). It returns them with the lease set, earliest
	// Next first. On PostgreSQL this is SELECT ... FOR UPDATE SKIP LOCKED
	// followed by the UPDATE; on SQLite the single writer makes it one
	// UPDATE ... RETURNING.
	ClaimRecipients(ctx context.Context, owner string, now, until time.Time, limit int) ([]Recipient, error)
	// SettleRecipients records the outcome of attempts on recipients
	// owner holds a lease on, and ends the lease: Done removes the
	// recipient, otherwise its retry state is set (a hold an
	// administrator set meanwhile stays). Recipients that are gone, or
	// leased by another owner, are skipped. It returns the messages
	// that no longer have any recipient (their bodies may go).
	SettleRecipients(ctx context.Context, owner string, outcomes []Outcome) (emptied []string, err error)
	// RenewLeases extends to until the leases owner holds from the
	// claims named (LeaseOwner == owner and LeaseUntil == the claim's
	// Until, so a recipient claimed again since, by another owner or by
	// this one for another attempt, is not touched) and returns the keys
	// it extended. The queue renews the claims of a destination's
	// waiting jobs together, in one call, when one of them would start
	// its attempt late in its lease (see [Options].Lease).
	RenewLeases(ctx context.Context, owner string, claims []Claim, until time.Time) ([]RecipientKey, error)
	// ReleaseLeases ends every lease owner holds (at Start, the leases
	// of this owner's previous run; at Close, its own).
	ReleaseLeases(ctx context.Context, owner string) error
	// NextDue returns the earliest Next of the recipients that are
	// neither held nor leased at now; ok is false when there is none.
	// (Leases that end are noticed at the next poll.)
	NextDue(ctx context.Context, now time.Time) (t time.Time, ok bool, err error)

	// ListRecipients returns up to limit recipients ordered by (Msg,
	// Index), starting after the recipient named by after (zero: from
	// the start); limit <= 0 means no limit.
	ListRecipients(ctx context.Context, after RecipientKey, limit int) ([]Recipient, error)
	// MessageRecipients returns the recipients of message msg, by Index
	// (none: an empty slice).
	MessageRecipients(ctx context.Context, msg string) ([]Recipient, error)
	// UpdateMessage applies op to every recipient of message msg and
	// returns how many there were; OpRetryNow sets Next to now.
	UpdateMessage(ctx context.Context, msg string, op MessageOp, now time.Time) (int, error)
	// CountRecipients counts the recipients by state at now.
	CountRecipients(ctx context.Context, now time.Time) (Counts, error)
}

// ErrDuplicate is returned by EnqueueRecipients for a recipient already
// queued.
var ErrDuplicate = errors.New("queue: recipient already queued")

// RecipientKey names one recipient of one message.
type RecipientKey struct {
	Msg   string
	Index int
}

// Claim names a lease the queue holds on one recipient: the recipient
// and the LeaseUntil that its claim, or the claim's last renewal, set.
type Claim struct {
	RecipientKey
	Until time.Time
}

// Recipient is the stored state of one recipient of one queued message.
// It holds no credentials: the next hop and its AUTH credentials are
// looked up by Transport when the queue delivers (see [Routes]).
type Recipient struct {
	// Msg is the message id (lower-case letters and digits, sorting by
	// creation time); Index the recipient's place in the message.
	Msg   string
	Index int
	// From is the envelope sender ("" for the null sender), Address the
	// recipient.
	From    string
	Address string
	// Transport names the routing entry that chose the next hop
	// (routing.TransportOf); "" for MX delivery to the recipient's
	// domain. NextHop (routing.NextHop syntax) and TLS are the hop as
	// routing gave it at enqueue time, shown by List and used only when
	// no Routes is configured.
	Transport string
	NextHop   string
	TLS       routing.TLSPolicy
	// UTF8 says the message needs SMTPUTF8 (RFC 6531); Size is the body's.
	UTF8 bool
	Size int64
	// Created is when the message was queued; Next when the next attempt
	// is due.
	Created time.Time
	Next    time.Time
	// Attempts counts the failed attempts; Warned says the "delayed" DSN
	// went out; Held stops attempts until released.
	Attempts int
	Held     bool
	Warned   bool
	// LastError is the last temporary failure, RemoteMTA the host that
	// gave it.
	LastError string
	RemoteMTA string
	// LeaseOwner and LeaseUntil are set while a queue attempts the
	// recipient ([Store].ClaimRecipients); zero otherwise.
	LeaseOwner string
	LeaseUntil time.Time
}

// Key returns the recipient's key.
func (r Recipient) Key() RecipientKey { return RecipientKey{Msg: r.Msg, Index: r.Index} }

// Outcome is the result of one attempt on one recipient.
type Outcome struct {
	RecipientKey
	// Done removes the recipient: delivered, or failed for good with its
	// DSN durable.
	Done bool
	// When not Done: the recipient's new retry state.
	Next      time.Time
	Attempts  int
	Warned    bool
	LastError string
	RemoteMTA string
}

// MessageOp is an administrator's operation on a whole message.
type MessageOp int

// The operations of UpdateMessage.
const (
	OpHold     MessageOp = iota + 1 // stop attempts until OpRelease
	OpRelease                       // attempt again, at Next
	OpRetryNow                      // make due now (held stays held)
	OpDelete                        // remove every recipient
)

// Counts are the recipients by state, for the metrics.
type Counts struct {
	// Ready are due or being attempted, Deferred wait for a later
	// attempt, Held wait for an administrator.
	Ready, Deferred, Held int
	// Oldest is the earliest Created (zero when the queue is empty).
	Oldest time.Time
}

// Routes looks up a transport's current next hop at delivery time, so that
// a changed smarthost or password applies to mail already queued.
// *routing.Table and *routing.Rules satisfy it.
type Routes interface {
	// Transport returns the hop of transport name in the current
	// configuration; ok is false when it no longer exists.
	Transport(name string) (hop routing.Hop, ok bool)
}

// CheckRecipients checks the recipients of one EnqueueRecipients call
// for a Store implementation: at least one, each with a message id, an
// Index >= 0 and an address, no key twice. Its errors wrap
// store.ErrInvalid or ErrDuplicate.
func CheckRecipients(rcpts []Recipient) error {
	if len(rcpts) == 0 {
		return fmt.Errorf("%w: no recipients to queue", store.ErrInvalid)
	}
	seen := make(map[RecipientKey]bool, len(rcpts))
	for _, r := range rcpts {
		if r.Msg == "" || r.Address == "" || r.Index < 0 {
			return fmt.Errorf("%w: a queued recipient needs a message id, an index >= 0 and an address", store.ErrInvalid)
		}
		if seen[r.Key()] {
			return fmt.Errorf("recipient %s/%d: %w", r.Msg, r.Index, ErrDuplicate)
		}
		seen[r.Key()] = true
	}
	return nil
}

// ValidOp reports whether op is one of the MessageOp constants.
func ValidOp(op MessageOp) bool { return op >= OpHold && op <= OpDelete }
