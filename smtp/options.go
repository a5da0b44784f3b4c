package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

// Router decides what happens to one recipient. *routing.Table satisfies it.
type Router interface {
	Resolve(ctx context.Context, env routing.Envelope, recipient string) (routing.Result, error)
}

// Authenticator checks submission credentials and says which addresses a
// user may send as. directory.Directory satisfies it.
type Authenticator interface {
	Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error)
	SendAddresses(ctx context.Context, userID string) ([]string, error)
}

// AddressLookup is optionally implemented by the Authenticator
// (directory.Directory does). With it, a user may send as a sub-address of
// an own address ("alice+news@d") only when that full address is not some
// other entry's.
type AddressLookup interface {
	LookupAddress(ctx context.Context, address string) (directory.Entry, error)
}

// QuotaReporter is optionally implemented by the Deliverer (every store
// backend does, through store.Accounts). With it, a recipient whose mailbox
// is full is refused at RCPT with 452 4.2.2 (RFC 3463 X.2.2) instead of the
// whole message failing at DATA.
type QuotaReporter interface {
	Usage(ctx context.Context, account string) (store.Usage, store.Quota, error)
}

// KeySource gives the DKIM keys that sign a domain's mail. *dkim.Keys
// satisfies it.
type KeySource interface {
	Signing(ctx context.Context, domain string) ([]dkim.Key, error)
}

// Mode selects what a server is for.
type Mode int

// Modes.
const (
	// ModeMX receives mail for local recipients from other servers
	// (port 25). No AUTH; STARTTLS offered when TLSConfig is set.
	ModeMX Mode = iota
	// ModeSubmission receives mail from authenticated users (port 587):
	// STARTTLS is required before AUTH, AUTH before MAIL (RFC 6409).
	ModeSubmission
	// ModeSubmissions is submission over implicit TLS (port 465,
	// RFC 8314 §3.3).
	ModeSubmissions
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeMX:
		return "mx"
	case ModeSubmission:
		return "submission"
	case ModeSubmissions:
		return "submissions"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Defaults applied to zero Options fields.
const (
	DefaultMaxMessageBytes = 50 << 20
	// DefaultMaxRecipients is the minimum RFC 5321 §4.5.3.1.8 requires a
	// server to accept.
	DefaultMaxRecipients = 100
	DefaultMaxConnsPerIP = 20
	DefaultMaxConns      = 1000
	// DefaultMaxLineLength is twice RFC 5321 §4.5.3.1.6's 1000 octets, as
	// go-smtp does, to tolerate slightly broken clients.
	DefaultMaxLineLength  = 2000
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultReadTimeout is RFC 5321 §4.5.3.2.7's server timeout.
	DefaultReadTimeout  = 5 * time.Minute
	DefaultWriteTimeout = time.Minute
	// DefaultVerifyTimeout stays far below the 10 minutes RFC 5321
	// §4.5.3.2.6 gives the client to wait for the reply after DATA.
	DefaultVerifyTimeout = 30 * time.Second
)

// Options configure a [Server]. Router and Deliverer are required; Auth and
// TLSConfig are required for the submission modes. Every other zero field
// takes the documented default.
type Options struct {
	// Hostname is announced in the greeting and in Received header
	// fields. Default: os.Hostname(), or "localhost".
	Hostname string
	// Mode selects MX or submission behaviour. Default ModeMX.
	Mode Mode
	// TLSConfig enables STARTTLS (RFC 3207) in ModeMX and ModeSubmission
	// and is the implicit TLS configuration of ModeSubmissions.
	TLSConfig *tls.Config

	// Router resolves each recipient at RCPT time.
	Router Router
	// Deliverer stores accepted messages for local accounts.
	Deliverer store.Deliverer
	// Auth authenticates submission users. Unused in ModeMX.
	Auth Authenticator
	// AuthLimiter decides which password checks may run (per client,
	// per client and login, and a per-login budget for strangers; see
	// package authlimit). Share one between every listener of a process
	// so that failures on one protocol count on all. Default: a private
	// limiter with authlimit.Policy defaults.
	AuthLimiter *authlimit.Limiter
	// Logger receives one line per decision and per message. Default: a
	// logger that discards.
	Logger *slog.Logger

	// MaxMessageBytes is the largest message accepted, announced with
	// SIZE (RFC 1870). Default 50 MiB.
	MaxMessageBytes int64
	// MaxRecipients is the most RCPT commands accepted per message
	// (452 4.5.3 beyond). Default 100, RFC 5321 §4.5.3.1.8's minimum.
	MaxRecipients int
	// MaxConnsPerIP bounds the connections one client (an IPv4 address,
	// an IPv6 /64) may hold open; beyond it the connection gets
	// 421 4.7.0 and is closed. Default 20; negative means no limit.
	MaxConnsPerIP int
	// MaxConns bounds all connections of this server (421 4.3.2 beyond).
	// Default 1000; negative means no limit.
	MaxConns int
	// MaxLineLength bounds command and message lines, in bytes including
	// CRLF. Default 2000.
	MaxLineLength int
	// MaxHeaderBytes bounds the header block parsed on submission for the
	// From: check; larger header blocks are refused. Default 64 KiB.
	MaxHeaderBytes int
	// ReadTimeout is how long a read from the client may wait (an idle
	// timeout: a slow but steady upload is not cut off). Default 5m.
	ReadTimeout time.Duration
	// WriteTimeout bounds each reply write. Default 1m.
	WriteTimeout time.Duration

	// VerifyResolver, if set, turns on message authentication on the MX
	// (ModeMX only): each message is spooled once, judged by DKIM, SPF
	// and DMARC (package dkim) through this resolver, stamped with an
	// Authentication-Results field (RFC 8601) for Hostname, and incoming
	// Authentication-Results fields that claim Hostname are removed.
	VerifyResolver dkim.Resolver
	// VerifyTimeout bounds the DNS lookups of one message's
	// authentication together: they run concurrently (see dkim.Verify)
	// under this one deadline, and a lookup still unanswered at the
	// deadline is a DNS timeout, a temperror result: the message is
	// delivered and marked (RFC 7489 §6.6.2 leaves that to local policy),
	// not deferred to meet the same DNS on every retry. Default 30s.
	VerifyTimeout time.Duration
	// DMARC says what happens to messages whose DMARC policy is reject
	// or quarantine; the zero value follows the domain's published
	// policy (reject at DATA with 550 5.7.1; quarantine to Junk).
	DMARC dkim.ActionPolicy
	// DKIMKeys, if set, signs submitted mail (ModeSubmission and
	// ModeSubmissions) with the active keys of the From domain; a domain
	// without keys sends unsigned mail. *dkim.Keys satisfies it.
	DKIMKeys KeySource
	// SpoolDir holds messages larger than 256 KiB while they are checked
	// or signed (see VerifyResolver, DKIMKeys), in files readable by this
	// process only and unlinked as soon as they are created. It must
	// exist. Default os.TempDir().
	SpoolDir string

	// Queue, if set, takes the recipients routing relays to other hosts:
	// the server accepts them and answers 250 only after the message is
	// both stored for the local recipients and committed to the queue.
	// Without it such recipients get 451 4.3.2. Start the queue before
	// the server.
	Queue Outbound

	// Milters are mail filters (antivirus, DLP) asked about every
	// message, in this order, over the milter protocol (see [Milter] for
	// each one's address, timeouts, allowed modifications and failure
	// action). The chain starts at MAIL; RCPT answers apply per
	// recipient; the message (header fields, then the body in chunks of
	// at most 64 KiB read from the spool, never whole in memory) is sent
	// after DATA, and end-of-message answers decide the reply to DATA.
	// With milters, every message is spooled (see SpoolDir) and its
	// header block is bounded by MaxHeaderBytes (552 5.3.4 beyond).
	// Header changes the milters make (add, insert, change, delete) are
	// applied to what is delivered, before DKIM signing on submission;
	// DKIM verification on the MX reads the message as received. See
	// milterChain in the source for the stage at which each answer
	// applies.
	Milters []Milter
	// Quarantine holds the messages a milter quarantines
	// (SMFIR_QUARANTINE): they are answered 250 and delivered only when
	// an administrator releases them. Without it such a message is
	// refused with 451 4.7.1 (kept by the sender, not lost).
	Quarantine *Quarantine

	// Now is the clock for Received dates and delivery times. Default
	// time.Now.
	Now func() time.Time
	// Metrics, if set, receives the server's metrics (connections,
	// messages accepted and rejected by reason, bytes, recipients by
	// decision, authentications by result, milter answers). Several
	// servers sharing one registry need labels that tell them apart
	// (see [Metrics]).
	Metrics Metrics
}

// withDefaults validates o and fills its zero fields.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Router == nil {
		errs = append(errs, errors.New("Router is required"))
	}
	if o.Deliverer == nil {
		errs = append(errs, errors.New("option Deliverer is required"))
	}
	switch o.Mode {
	case ModeMX:
	case ModeSubmission, ModeSubmissions:
		if o.Auth == nil {
			errs = append(errs, fmt.Errorf("Auth is required in %s mode", o.Mode))
		}
		if o.TLSConfig == nil {
			// Without TLS, AUTH could never be offered (RFC 8314 §3).
			errs = append(errs, fmt.Errorf("TLSConfig is required in %s mode", o.Mode))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown mode %d", int(o.Mode)))
	}
	if o.MaxMessageBytes < 0 || o.MaxRecipients < 0 || o.MaxLineLength < 0 || o.MaxHeaderBytes < 0 ||
		o.ReadTimeout < 0 || o.WriteTimeout < 0 || o.VerifyTimeout < 0 {
		errs = append(errs, errors.New("MaxMessageBytes, MaxRecipients, MaxLineLength, MaxHeaderBytes and timeouts must not be negative"))
	}
	if o.SpoolDir != "" {
		if fi, err := os.Stat(o.SpoolDir); err != nil {
			errs = append(errs, fmt.Errorf("SpoolDir: %w", err))
		} else if !fi.IsDir() {
			errs = append(errs, fmt.Errorf("SpoolDir %s is not a directory", o.SpoolDir))
		}
	}
	for i, m := range o.Milters {
		if _, err := m.spec(); err != nil {
			errs = append(errs, fmt.Errorf("option Milters[%d]: %w", i, err))
		}
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("smtp: invalid options: %w", errors.Join(errs...))
	}
	if o.Hostname == "" {
		o.Hostname = defaultHostname()
	}
	if o.AuthLimiter == nil {
		o.AuthLimiter = authlimit.New(authlimit.Policy{})
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	defaultTo(&o.MaxMessageBytes, DefaultMaxMessageBytes)
	defaultTo(&o.MaxRecipients, DefaultMaxRecipients)
	defaultTo(&o.MaxConnsPerIP, DefaultMaxConnsPerIP)
	defaultTo(&o.MaxConns, DefaultMaxConns)
	defaultTo(&o.MaxLineLength, DefaultMaxLineLength)
	defaultTo(&o.MaxHeaderBytes, DefaultMaxHeaderBytes)
	defaultTo(&o.ReadTimeout, DefaultReadTimeout)
	defaultTo(&o.WriteTimeout, DefaultWriteTimeout)
	defaultTo(&o.VerifyTimeout, DefaultVerifyTimeout)
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// defaultTo sets *p to def when it holds the zero value.
func defaultTo[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// defaultHostname returns os.Hostname(), or "localhost" if it is unavailable.
func defaultHostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
