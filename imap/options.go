package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/store"
)

// Backend is what the server needs from the store: mailboxes, messages,
// the change feed and account usage (QUOTA). Every store backend
// (*sqlite.Store) satisfies it.
type Backend interface {
	store.Mailboxes
	store.Messages
	store.Feed
	// Usage is store.Accounts.Usage: what the account holds and its
	// limits, for GETQUOTA and GETQUOTAROOT (RFC 9208).
	Usage(ctx context.Context, id string) (store.Usage, store.Quota, error)
}

// Authenticator checks IMAP logins. directory.Directory satisfies it.
type Authenticator interface {
	// Authenticate checks a login (primary address or alias) and password
	// for protocol p; errors are directory.ErrAuthFailed,
	// directory.ErrDisabled and directory.ErrProtocolNotAllowed.
	Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error)
}

// Defaults applied to zero Options fields.
const (
	// DefaultAppendLimit is the largest APPEND accepted (RFC 7889
	// APPENDLIMIT), the same as the SMTP server's default message size.
	DefaultAppendLimit = 50 << 20
	// DefaultMaxSearchBytes bounds how much of one message SEARCH BODY
	// and TEXT read.
	DefaultMaxSearchBytes = 8 << 20
	DefaultMaxConnsPerIP  = 20
	DefaultMaxConns       = 1000
)

// Options configure a [Server]. Backend and Auth are required; every other
// zero field takes the documented default.
type Options struct {
	// Backend holds the mail.
	Backend Backend
	// Auth authenticates users for directory.ProtoIMAP.
	Auth Authenticator
	// AuthLimiter decides which password checks may run (per client,
	// per client and login, and a per-login budget for strangers; see
	// package authlimit). Share one with the SMTP listeners so that
	// failures on one protocol count on all. Default: a private limiter
	// with authlimit.Policy defaults.
	AuthLimiter *authlimit.Limiter

	// TLSConfig enables STARTTLS (RFC 9051 §6.2.1), or is the implicit
	// TLS configuration when ImplicitTLS is set.
	TLSConfig *tls.Config
	// ImplicitTLS serves TLS from the first byte (port 993, RFC 8314
	// §3.3). It requires TLSConfig.
	ImplicitTLS bool
	// AllowInsecureAuth lets clients LOGIN and AUTHENTICATE over a
	// connection without TLS. Off by default: before STARTTLS the server
	// announces LOGINDISABLED and refuses both with NO [PRIVACYREQUIRED]
	// (RFC 9051 §6.2.3). Meant for loopback tests and benchmarks only.
	AllowInsecureAuth bool

	// Logger receives one line per session and per refused login, and
	// the protocol layer's records at the levels it chooses (Error for
	// a fault of the server, Info for a client refused for what it sent,
	// Debug for a client that went away). Default: a logger that
	// discards.
	Logger *slog.Logger

	// AppendLimit is the largest message APPEND accepts, announced as
	// APPENDLIMIT=n (RFC 7889). Default DefaultAppendLimit; at most
	// 4 GiB - 1.
	AppendLimit int64
	// MaxSearchBytes bounds how many bytes of each message SEARCH BODY
	// and SEARCH TEXT examine; text beyond it is not matched. Default
	// DefaultMaxSearchBytes.
	MaxSearchBytes int64
	// MaxConnsPerIP bounds the connections one client (an IPv4 address,
	// an IPv6 /64) may hold open; beyond it the client gets
	// "* BYE [UNAVAILABLE]" and is disconnected. Default 20; negative
	// means no limit.
	MaxConnsPerIP int
	// MaxConns bounds all connections of this server. Default 1000;
	// negative means no limit.
	MaxConns int

	// Metrics, if set, receives the server's metrics (connections,
	// authentications by result, appended messages). Several servers
	// sharing one registry need labels that tell them apart (see
	// [Metrics]).
	Metrics Metrics
}

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Backend == nil {
		errs = append(errs, errors.New("option Backend is required"))
	}
	if o.Auth == nil {
		errs = append(errs, errors.New("option Auth is required"))
	}
	if o.ImplicitTLS && o.TLSConfig == nil {
		errs = append(errs, errors.New("ImplicitTLS requires TLSConfig"))
	}
	if o.AppendLimit < 0 || o.AppendLimit > 1<<32-1 {
		errs = append(errs, fmt.Errorf("AppendLimit %d out of range [0, 4294967295]", o.AppendLimit))
	}
	if o.MaxSearchBytes < 0 {
		errs = append(errs, errors.New("MaxSearchBytes must not be negative"))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("imap: invalid options: %w", errors.Join(errs...))
	}
	if o.AuthLimiter == nil {
		o.AuthLimiter = authlimit.New(authlimit.Policy{})
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AppendLimit == 0 {
		o.AppendLimit = DefaultAppendLimit
	}
	if o.MaxSearchBytes == 0 {
		o.MaxSearchBytes = DefaultMaxSearchBytes
	}
	if o.MaxConnsPerIP == 0 {
		o.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	return o, nil
}
