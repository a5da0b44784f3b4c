package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/store"
)

// Backend is what every IMAP session needs from the store: the
// account's mailboxes, and reading and changing their messages. It is a
// core of three small interfaces; what only some extensions need is in
// optional interfaces ([Quotas], [Subscriptions], [Feed]) that the
// server finds by type assertion on the Backend, as go-imap's server does
// with sessions, and announces only when present (RFC 9051 §6.1.1: a
// server announces what it implements). Every store backend
// (*sqlite.Store, *memstore.Store) satisfies Backend and all of them.
type Backend interface {
	Mailboxes
	MessageReader
	MessageWriter
}

// Mailboxes is the part of a [Backend] that names mailboxes (the
// store.Mailboxes methods of the same names): SELECT, LIST, CREATE,
// RENAME, DELETE.
type Mailboxes interface {
	Mailbox(ctx context.Context, account, name string) (store.Mailbox, error)
	ListMailboxes(ctx context.Context, account string) ([]store.Mailbox, error)
	CreateMailbox(ctx context.Context, account, name string, use store.SpecialUse) (store.Mailbox, error)
	RenameMailbox(ctx context.Context, account, oldName, newName string) error
	DeleteMailbox(ctx context.Context, account, name string) error
}

// MessageReader is the part of a [Backend] that reads what a mailbox
// holds (the store methods of the same names): STATUS, FETCH, SEARCH,
// and the polls that report others' changes. Changes is needed by every
// session, not only by CONDSTORE ones: a poll asks it what changed.
type MessageReader interface {
	Status(ctx context.Context, account, name string) (store.MailboxStatus, error)
	ListMessages(ctx context.Context, account, mailbox string, uids store.UIDSet) ([]store.Message, error)
	Search(ctx context.Context, account, mailbox string, c store.SearchCriteria) ([]uint32, error)
	OpenBody(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, error)
	Changes(ctx context.Context, account, mailbox string, sinceModSeq uint64) (store.ChangeSet, error)
}

// MessageWriter is the part of a [Backend] that changes messages (the
// store.Messages methods of the same names): APPEND, STORE, EXPUNGE,
// COPY and MOVE (MOVE is part of IMAP4rev2, RFC 9051 §6.4.8).
type MessageWriter interface {
	Append(ctx context.Context, account, mailbox string, r io.Reader, opts store.AppendOptions) (store.Message, error)
	StoreFlags(ctx context.Context, account, mailbox string, req store.StoreFlagsRequest) (store.StoreFlagsResult, error)
	Expunge(ctx context.Context, account, mailbox string, uids store.UIDSet) ([]uint32, error)
	Copy(ctx context.Context, account, src, dst string, uids store.UIDSet) ([]store.UIDPair, error)
	Move(ctx context.Context, account, src, dst string, uids store.UIDSet) ([]store.UIDPair, error)
}

// Quotas is an optional interface of a [Backend]: with it the server
// announces QUOTA, QUOTA=RES-STORAGE and QUOTA=RES-MESSAGE and answers
// GETQUOTA and GETQUOTAROOT (RFC 9208); without it those commands are
// unknown (BAD), as in a server without the extension.
type Quotas interface {
	// Usage is store.Accounts.Usage: what the account holds and its
	// limits.
	Usage(ctx context.Context, id string) (store.Usage, store.Quota, error)
}

// Subscriptions is an optional interface of a [Backend] (the
// store.Mailboxes methods of the same names): the account's subscription
// list for SUBSCRIBE, UNSUBSCRIBE, LSUB and LIST (SUBSCRIBED). Without it
// every existing mailbox counts as subscribed: SUBSCRIBE of an existing
// mailbox succeeds, of another name fails with NO [NONEXISTENT] (RFC 9051
// §6.3.7 lets the server check that the mailbox exists), and UNSUBSCRIBE
// fails with NO [CANNOT].
type Subscriptions interface {
	SetSubscribed(ctx context.Context, account, name string, subscribed bool) error
	Subscriptions(ctx context.Context, account string) ([]string, error)
}

// Feed is an optional interface of a [Backend] (store.Feed): it tells
// the server when an account's mail changed, so that an IDLE session
// reports others' changes at once. Without it an IDLE session polls the
// store every Options.IdlePollInterval instead.
type Feed interface {
	Subscribe(ctx context.Context, account string) (store.Subscription, error)
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
	// Defaults of Options.Metadata.
	DefaultMetadataMaxValue        = 64 << 10
	DefaultMetadataMaxEntries      = 100
	DefaultMetadataMaxAccountBytes = 1 << 20
	// DefaultIdlePollInterval is how often an IDLE session polls the
	// store when the Backend has no [Feed].
	DefaultIdlePollInterval = 30 * time.Second
	// DefaultMaxUpdateContexts is how many SEARCH and SORT results one
	// session may have kept up to date at once (RFC 5267 §4.3.1).
	DefaultMaxUpdateContexts = 4
	// DefaultMaxNotifyMailboxes is how many mailboxes one session's
	// NOTIFY may watch (RFC 5465; see Options.MaxNotifyMailboxes).
	DefaultMaxNotifyMailboxes = 1000
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

	// IdlePollInterval is how often an IDLE session polls the store
	// when the Backend has no [Feed] (RFC 9051 §6.3.13 leaves it to the
	// server). Default DefaultIdlePollInterval; unused with a Feed.
	IdlePollInterval time.Duration

	// MaxUpdateContexts bounds the contexts (SEARCH or SORT with
	// RETURN (UPDATE), RFC 5267 §4.3) one session keeps up to date;
	// beyond it an UPDATE is refused with NO [NOUPDATE] (§4.3.1).
	// Default DefaultMaxUpdateContexts; the RFC asks for at least one.
	MaxUpdateContexts int
	// MaxNotifyMailboxes bounds the mailboxes one session's NOTIFY
	// (RFC 5465) watches for message events and the names it lists: a
	// NOTIFY SET over more is refused with NO [NOTIFICATIONOVERFLOW]
	// (§3.1), and a session whose watched mailboxes grow past it (new
	// mailboxes under "personal" or "subtree") gets an untagged OK
	// [NOTIFICATIONOVERFLOW] and no more notifications (§5.8). Each
	// watched mailbox costs the session its name and some 40 bytes.
	// Default DefaultMaxNotifyMailboxes.
	MaxNotifyMailboxes int

	// Metadata bounds the annotations (RFC 5464 METADATA) an account
	// may keep, when the Backend implements store.Metadata: the largest
	// value (announced in NO [METADATA MAXSIZE n]; at most 256 KiB),
	// the entries of one mailbox or of the server, and the bytes of all
	// the account's entries. Zero fields take DefaultMetadataMaxValue,
	// DefaultMetadataMaxEntries and DefaultMetadataMaxAccountBytes.
	Metadata store.MetadataLimits

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
	if o.MaxNotifyMailboxes < 0 {
		errs = append(errs, errors.New("MaxNotifyMailboxes must not be negative"))
	}
	if o.MaxUpdateContexts < 0 {
		errs = append(errs, errors.New("MaxUpdateContexts must not be negative"))
	}
	if m := o.Metadata; m.MaxValueBytes < 0 || m.MaxValueBytes > maxMetadataValue || m.MaxEntries < 0 || m.MaxAccountBytes < 0 {
		errs = append(errs, fmt.Errorf("option Metadata out of range (MaxValueBytes at most %d, no limit negative)", maxMetadataValue))
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
	if o.Metadata.MaxValueBytes == 0 {
		o.Metadata.MaxValueBytes = DefaultMetadataMaxValue
	}
	if o.Metadata.MaxEntries == 0 {
		o.Metadata.MaxEntries = DefaultMetadataMaxEntries
	}
	if o.Metadata.MaxAccountBytes == 0 {
		o.Metadata.MaxAccountBytes = DefaultMetadataMaxAccountBytes
	}
	if o.IdlePollInterval <= 0 {
		o.IdlePollInterval = DefaultIdlePollInterval
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxNotifyMailboxes == 0 {
		o.MaxNotifyMailboxes = DefaultMaxNotifyMailboxes
	}
	if o.MaxUpdateContexts == 0 {
		o.MaxUpdateContexts = DefaultMaxUpdateContexts
	}
	return o, nil
}
