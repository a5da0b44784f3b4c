package smtp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mailyard/mailyard/internal/durable"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

// ErrNotQuarantined is returned by Release and Delete for an id that is
// not held.
var ErrNotQuarantined = errors.New("smtp: no such quarantined message")

// QuarantineOptions configure a [Quarantine]. Dir, Records and Deliverer
// are required.
type QuarantineOptions struct {
	// Dir holds one fsynced file per held message. It is created if
	// missing. Required unless Bodies is set.
	Dir string
	// Bodies, if set, keeps the held messages' bodies instead of Dir:
	// a store every node of a cluster reads (store/postgres implements
	// it), so a message held by one node is released or deleted from
	// any.
	Bodies QuarantineBodies
	// Records keeps one record per held message: its delivery plan.
	Records store.Records
	// Deliverer stores a released message for its local recipients.
	Deliverer store.Deliverer
	// Queue takes a released message's remote recipients. A message with
	// remote recipients cannot be released without it.
	Queue Outbound
	// Logger receives one line per hold, release and delete. Default:
	// discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Quarantine holds messages a milter asked to quarantine (SMFIR_QUARANTINE)
// until an administrator releases or deletes them.
//
// A held message is the message exactly as it would have been delivered
// (trace fields, Authentication-Results, milter header changes included),
// in a file in Dir, plus a record with its delivery plan: the local
// accounts and mailboxes (Junk when DMARC said so) and the remote
// recipients with their next hops, as routing decided at RCPT. Both are
// durable before the client gets 250. Release delivers it as the server
// would have: the local copies first (then the record forgets them, so a
// failed release retried later does not store them twice), then the
// remote recipients through the outbound queue, then the record and file
// go. A crash in between repeats at most the step in progress
// (at-least-once).
//
// The operations work from any process on the same store and Dir (the
// `mailserver quarantine` commands).
type Quarantine struct {
	opts   QuarantineOptions
	log    *slog.Logger
	bodies QuarantineBodies
	grace  time.Duration // of Reclaim: 0 for the directory of one process
}

// NewQuarantine returns a quarantine on opts.
func NewQuarantine(opts QuarantineOptions) (*Quarantine, error) {
	var errs []error
	if opts.Dir == "" && opts.Bodies == nil {
		errs = append(errs, errors.New("option Dir or Bodies is required"))
	}
	if opts.Records == nil {
		errs = append(errs, errors.New("option Records is required"))
	}
	if opts.Deliverer == nil {
		errs = append(errs, errors.New("option Deliverer is required"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("smtp: invalid quarantine options: %w", errors.Join(errs...))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	q := &Quarantine{opts: opts, log: opts.Logger.With("component", "quarantine"), bodies: opts.Bodies, grace: SharedQuarantineGrace}
	if q.bodies == nil {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("smtp: quarantine dir: %w", err)
		}
		q.bodies, q.grace = dirQuarantineBodies(opts.Dir), 0
	}
	return q, nil
}

// QuarantineBodies keeps the bodies of held messages, each under the id
// of its record in [QuarantineNamespace].
type QuarantineBodies interface {
	// PutQuarantineBody stores r as body id (a new id) and returns its
	// size. The body must be durable when it returns. On error nothing
	// of it need remain.
	PutQuarantineBody(ctx context.Context, id string, r io.Reader) (int64, error)
	// OpenQuarantineBody returns body id from its start. A body that is
	// not there is an error wrapping fs.ErrNotExist.
	OpenQuarantineBody(ctx context.Context, id string) (io.ReadCloser, error)
	// RemoveQuarantineBody removes body id; one that is not there is no
	// error.
	RemoveQuarantineBody(ctx context.Context, id string) error
	// QuarantineBodiesBefore lists the ids of the bodies written before
	// cut, for [Quarantine.Reclaim].
	QuarantineBodiesBefore(ctx context.Context, cut time.Time) ([]string, error)
}

// SharedQuarantineGrace is how old a body without a record must be
// before [Quarantine.Reclaim] removes it from shared
// [QuarantineOptions.Bodies]: another node may be between writing a body
// and committing its record, which never takes this long.
const SharedQuarantineGrace = time.Hour

// dirQuarantineBodies keeps bodies as fsynced files in one directory,
// for one process (the default when QuarantineOptions.Bodies is nil).
type dirQuarantineBodies string

func (d dirQuarantineBodies) path(id string) string { return filepath.Join(string(d), id) }

func (d dirQuarantineBodies) PutQuarantineBody(_ context.Context, id string, r io.Reader) (int64, error) {
	return durable.CreateFile(string(d), id, r)
}

func (d dirQuarantineBodies) OpenQuarantineBody(_ context.Context, id string) (io.ReadCloser, error) {
	return os.Open(d.path(id))
}

func (d dirQuarantineBodies) RemoveQuarantineBody(_ context.Context, id string) error {
	if err := os.Remove(d.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (d dirQuarantineBodies) QuarantineBodiesBefore(_ context.Context, cut time.Time) ([]string, error) {
	des, err := os.ReadDir(string(d))
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, de := range des {
		if de.IsDir() {
			continue
		}
		if fi, err := de.Info(); err == nil && fi.ModTime().Before(cut) {
			ids = append(ids, de.Name())
		}
	}
	return ids, nil
}

// QuarantinedMessage is one held message, as List shows it.
type QuarantinedMessage struct {
	ID   string
	From string // "" for the null sender
	// Recipients are the envelope recipients the client gave.
	Recipients []string
	// Accounts are the local accounts it goes to on release (none once
	// a release stored the local copies); Remote the remote recipients.
	Accounts []string
	Remote   []string
	// Milter asked for the quarantine, giving Reason.
	Milter string
	Reason string
	Size   int64
	// Created is when the message was received.
	Created time.Time
}

// quarantineEntry is the stored delivery plan of a held message.
type quarantineEntry struct {
	From    string            `json:"from"`
	UTF8    bool              `json:"utf8,omitempty"`
	Rcpts   []string          `json:"rcpts"`
	Targets []store.Recipient `json:"targets,omitempty"`
	Relays  []storedRelay     `json:"relays,omitempty"`
	Milter  string            `json:"milter"`
	Reason  string            `json:"reason"`
	Size    int64             `json:"size"`
	Created time.Time         `json:"created"`
}

// storedRelay is a remote target in the record. Rule and Hop.Route let
// the queue name the transport (routing.TransportOf) whose hop and
// credentials apply when the message is released.
type storedRelay struct {
	Address string    `json:"address"`
	Hop     storedHop `json:"hop"`
	Rule    string    `json:"rule,omitempty"`
}

// storedHop is routing.Hop in the record, without its credentials: the
// queue looks them up by transport name when it delivers. (Records of
// earlier releases also hold "user" and "pass"; they are not read.)
type storedHop struct {
	NextHop string            `json:"next_hop,omitempty"`
	TLS     routing.TLSPolicy `json:"tls"`
	Route   string            `json:"route,omitempty"`
}

func toStoredHop(h routing.Hop) storedHop {
	return storedHop{NextHop: h.NextHop.String(), TLS: h.TLS, Route: h.Route}
}

func (s storedHop) hop() (routing.Hop, error) {
	nh, err := routing.ParseNextHop(s.NextHop)
	if err != nil {
		return routing.Hop{}, err
	}
	return routing.Hop{NextHop: nh, TLS: s.TLS, Route: s.Route}, nil
}

// newMessageID returns a fresh id that sorts by creation time.
func newMessageID(now time.Time) string {
	return strconv.FormatInt(now.UnixMilli(), 36) + strings.ToLower(rand.Text()[:10])
}

// hold stores body durably with its delivery plan and returns its id.
func (q *Quarantine) hold(ctx context.Context, body io.Reader, e quarantineEntry, relays []routing.Decision) (string, error) {
	id := newMessageID(q.opts.Now())
	n, err := q.bodies.PutQuarantineBody(ctx, id, body)
	if err == nil {
		e.Size = n
		for _, d := range relays {
			e.Relays = append(e.Relays, storedRelay{Address: d.Address, Hop: toStoredHop(d.Hop), Rule: d.Rule})
		}
		err = q.opts.Records.UpdateRecords(ctx, func(tx store.RecordTx) error {
			return store.PutJSON(tx, QuarantineNamespace, id, e, 0)
		})
	}
	if err != nil {
		q.bodies.RemoveQuarantineBody(context.WithoutCancel(ctx), id)
		return "", fmt.Errorf("smtp: quarantine: %w", err)
	}
	q.log.Info("message quarantined", "quarantine_id", id, "from", e.From, "milter", e.Milter, "reason", e.Reason, "bytes", n)
	return id, nil
}

// List returns every held message, oldest first.
func (q *Quarantine) List(ctx context.Context) ([]QuarantinedMessage, error) {
	var out []QuarantinedMessage
	after := ""
	for {
		recs, err := q.opts.Records.ListRecords(ctx, QuarantineNamespace, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("smtp: quarantine: %w", err)
		}
		for _, r := range recs {
			var e quarantineEntry
			if err := store.DecodeJSON(r, &e); err != nil {
				return nil, fmt.Errorf("smtp: quarantine: %w", err)
			}
			m := QuarantinedMessage{ID: r.Key, From: e.From, Recipients: e.Rcpts, Milter: e.Milter, Reason: e.Reason,
				Size: e.Size, Created: e.Created}
			for _, t := range e.Targets {
				m.Accounts = append(m.Accounts, t.Account)
			}
			for _, d := range e.Relays {
				m.Remote = append(m.Remote, d.Address)
			}
			out = append(out, m)
		}
		if len(recs) < 1000 {
			return out, nil
		}
		after = recs[len(recs)-1].Key
	}
}

// get reads one record.
func (q *Quarantine) get(ctx context.Context, id string) (quarantineEntry, int64, error) {
	if id == "" || strings.ContainsAny(id, "/\\.") {
		return quarantineEntry{}, 0, fmt.Errorf("%w: %q", ErrNotQuarantined, id)
	}
	var e quarantineEntry
	r, err := q.opts.Records.GetRecord(ctx, QuarantineNamespace, id)
	if errors.Is(err, store.ErrNotFound) {
		return e, 0, fmt.Errorf("%w: %q", ErrNotQuarantined, id)
	}
	if err != nil {
		return e, 0, fmt.Errorf("smtp: quarantine: %w", err)
	}
	if err := store.DecodeJSON(r, &e); err != nil {
		return e, 0, fmt.Errorf("smtp: quarantine: %w", err)
	}
	version := r.Version
	return e, version, nil
}

// Release delivers held message id as the server would have delivered it
// and removes it from the quarantine.
func (q *Quarantine) Release(ctx context.Context, id string) error {
	e, version, err := q.get(ctx, id)
	if err != nil {
		return err
	}
	if len(e.Relays) > 0 && q.opts.Queue == nil {
		return fmt.Errorf("smtp: quarantine: message %s has remote recipients and there is no outbound queue", id)
	}
	if len(e.Targets) > 0 {
		f, err := q.bodies.OpenQuarantineBody(ctx, id)
		if err != nil {
			return fmt.Errorf("smtp: quarantine: %w", err)
		}
		_, err = q.opts.Deliverer.Deliver(ctx, store.Delivery{Recipients: e.Targets, InternalDate: e.Created}, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("smtp: quarantine: release %s: %w", id, err)
		}
		// The local copies are stored: a retry after a failure below
		// must not store them again.
		e.Targets = nil
		if err := q.opts.Records.UpdateRecords(ctx, func(tx store.RecordTx) error {
			return store.PutJSON(tx, QuarantineNamespace, id, e, version)
		}); err != nil {
			return fmt.Errorf("smtp: quarantine: release %s: %w", id, err)
		}
		version = -1
	}
	if len(e.Relays) > 0 {
		f, err := q.bodies.OpenQuarantineBody(ctx, id)
		if err != nil {
			return fmt.Errorf("smtp: quarantine: %w", err)
		}
		targets := make([]routing.Decision, 0, len(e.Relays))
		for _, r := range e.Relays {
			hop, err := r.Hop.hop()
			if err != nil {
				f.Close()
				return fmt.Errorf("smtp: quarantine: release %s: %w", id, err)
			}
			targets = append(targets, routing.Decision{Kind: routing.Relay, Address: r.Address, Hop: hop, Rule: r.Rule})
		}
		qid, err := q.opts.Queue.Spool(ctx, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("smtp: quarantine: release %s: %w", id, err)
		}
		if err := q.opts.Queue.Commit(ctx, qid, e.From, e.UTF8, targets); err != nil {
			return fmt.Errorf("smtp: quarantine: release %s: %w", id, err)
		}
	}
	if err := q.remove(ctx, id); err != nil {
		return err
	}
	q.log.Info("quarantined message released", "quarantine_id", id, "from", e.From, "remote", len(e.Relays))
	return nil
}

// Delete drops held message id without delivering it.
func (q *Quarantine) Delete(ctx context.Context, id string) error {
	if _, _, err := q.get(ctx, id); err != nil {
		return err
	}
	if err := q.remove(ctx, id); err != nil {
		return err
	}
	q.log.Info("quarantined message deleted", "quarantine_id", id)
	return nil
}

func (q *Quarantine) remove(ctx context.Context, id string) error {
	err := q.opts.Records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		err := tx.Delete(QuarantineNamespace, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("smtp: quarantine: %w", err)
	}
	if err := q.bodies.RemoveQuarantineBody(ctx, id); err != nil {
		return fmt.Errorf("smtp: quarantine: %w", err)
	}
	return nil
}

// Reclaim removes bodies without a record: left by a crash between
// writing a message and committing its record, so never acknowledged.
// Call it at startup, before the server accepts mail. With shared
// [QuarantineOptions.Bodies] only bodies older than
// [SharedQuarantineGrace] are removed, as another node may be holding a
// message meanwhile.
func (q *Quarantine) Reclaim(ctx context.Context) error {
	cut := q.opts.Now().Add(-q.grace)
	if q.grace == 0 {
		cut = time.Now().Add(time.Hour) // every file: no other writer
	}
	ids, err := q.bodies.QuarantineBodiesBefore(ctx, cut)
	if err != nil {
		return fmt.Errorf("smtp: quarantine: reclaim: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	held, err := q.List(ctx)
	if err != nil {
		return err
	}
	kept := make(map[string]bool, len(held))
	for _, m := range held {
		kept[m.ID] = true
	}
	for _, id := range ids {
		if kept[id] {
			continue
		}
		if err := q.bodies.RemoveQuarantineBody(ctx, id); err != nil {
			return fmt.Errorf("smtp: quarantine: reclaim: %w", err)
		}
		q.log.Info("orphan quarantine body removed", "quarantine_id", id)
	}
	return nil
}
