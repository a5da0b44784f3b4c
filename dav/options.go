package dav

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/store"
)

// Store is what the handler needs from the store: the calendar and
// address-book collections of store.Collections. Any store.Store
// satisfies it.
type Store interface {
	CreateCollection(ctx context.Context, c store.Collection) (store.Collection, error)
	Collection(ctx context.Context, account string, kind store.CollectionKind, name string) (store.Collection, error)
	ListCollections(ctx context.Context, account string, kind store.CollectionKind) ([]store.Collection, error)
	UpdateCollection(ctx context.Context, c store.Collection) error
	DeleteCollection(ctx context.Context, account string, kind store.CollectionKind, name string) error
	PutObject(ctx context.Context, collectionID int64, o store.Object, opts store.PutOptions) (store.Object, error)
	GetObject(ctx context.Context, collectionID int64, name string) (store.Object, error)
	ObjectByUID(ctx context.Context, collectionID int64, uid string) (store.Object, error)
	QueryObjects(ctx context.Context, collectionID int64, q store.ObjectQuery) ([]store.Object, error)
	ListObjects(ctx context.Context, collectionID int64) ([]store.Object, error)
	DeleteObject(ctx context.Context, collectionID int64, name, ifMatch string) error
	ChangesSince(ctx context.Context, collectionID int64, token uint64) ([]store.ObjectChange, uint64, error)
}

// Directory is what the handler needs from the directory: password
// checks for directory.ProtoDAV, and the resolution of calendar-user
// addresses for scheduling (RFC 6638): LookupAddress finds the local
// user or resource an ATTENDEE names, LookupDomain tells an unknown
// local address (3.7) from one of a remote domain (handed to
// Options.IMIP). The user Authenticate returns names the account
// (User.ID) and the addresses of the principal's
// calendar-user-address-set. directory.Directory satisfies it; one that
// is also a directory.LoginKeyer keys the auth limiter by account, and
// one that also has User(ctx, id) (directory.User by ID, as
// *builtin.Directory and *directory.SourcedAuth have) lets principal
// URLs name proxy members and colleagues' principals be read (proxy.go).
type Directory interface {
	Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error)
	LookupAddress(ctx context.Context, address string) (directory.Entry, error)
	LookupDomain(ctx context.Context, name string) (directory.Domain, error)
}

// AddressesDirectory is an optional capability of a [Directory], found by
// type assertion: many addresses resolved in one call. The schedule
// outbox looks up all the recipients of a free/busy request (up to
// Limits.MaxRecipients) with it, and one by one through LookupAddress
// otherwise. *builtin.Directory and *directory.SourcedAuth have it.
type AddressesDirectory interface {
	// LookupAddresses resolves each address as LookupAddress does:
	// entries[i] and errs[i] are those of addresses[i].
	LookupAddresses(ctx context.Context, addresses []string) (entries []directory.Entry, errs []error)
}

// GAL is the tenant's global address list, served as the read-only
// address book "gal" in every user's address-book home.
// *builtin.Directory satisfies it.
type GAL interface {
	SearchGAL(ctx context.Context, q directory.GALQuery) (directory.GALPage, error)
	// Photo returns a user's picture, directory.ErrNotFound if there
	// is none.
	Photo(ctx context.Context, userID string) ([]byte, error)
}

// Defaults of [Limits] and of Options.AuthCacheTTL; DefaultAuthCacheSize
// bounds the credentials cache.
const (
	DefaultMaxResourceSize         = 1 << 20
	DefaultMaxCollections          = 100
	DefaultMaxObjectsPerCollection = 100000
	DefaultMaxInstances            = 10000
	DefaultMaxAttendees            = 1000
	DefaultMaxRecipients           = 100
	DefaultMaxSyncChanges          = 5000
	DefaultMaxPrincipalSearch      = 50
	DefaultMaxMultigetHrefs        = 5000
	DefaultMaxRequestBody          = 4 << 20
	DefaultMaxXMLDepth             = 32
	DefaultMaxXMLElements          = 100000
	DefaultAuthCacheTTL            = time.Minute
	DefaultAuthCacheSize           = 10000
)

// Limits bound what one client can make the server hold or do. A zero
// field takes its default.
type Limits struct {
	// MaxResourceSize is the largest calendar object or vCard a PUT may
	// store, announced as max-resource-size (RFC 4791 §5.2.5, RFC 6352
	// §6.2.3). Default 1 MiB.
	MaxResourceSize int64
	// MaxCollections bounds the calendars, and separately the address
	// books, of one account. Default 100.
	MaxCollections int
	// MaxObjectsPerCollection bounds the objects of one collection.
	// Default 100,000.
	MaxObjectsPerCollection int
	// MaxInstances bounds the recurrence instances one object may expand
	// to in a query, an expansion or a free/busy computation, and the
	// instances one report's calendar-data expansions return over all
	// its objects together: a report that would pass it ends with the
	// objects so far and a 507 for the request-URI
	// (number-of-matches-within-limits). Default 10,000.
	MaxInstances int
	// MaxAttendees bounds the attendees of one instance (RFC 4791
	// §5.2.9). Default 1000.
	MaxAttendees int
	// MaxRecipients bounds the ATTENDEEs of one free/busy request POSTed
	// to the schedule outbox (RFC 6638 §5), each of which costs a
	// free/busy computation over all the recipient's calendars. Default
	// 100.
	MaxRecipients int
	// MaxSyncChanges bounds the members one sync-collection answer lists
	// (RFC 6578 §3.6): a longer change set is truncated with a 507 for
	// the collection and a token the client continues from. A client's
	// smaller DAV:limit is honoured the same way. Default 5000.
	MaxSyncChanges int
	// MaxPrincipalSearch bounds the principals one
	// principal-property-search REPORT (RFC 3744 §9.4) returns; past it
	// the answer ends with a 507 for the request-URI
	// (number-of-matches-within-limits). Default 50.
	MaxPrincipalSearch int
	// MaxMultigetHrefs bounds the resources one calendar-multiget or
	// addressbook-multiget (RFC 4791 §7.9, RFC 6352 §8.7) names, each
	// counted once however often it is named; a longer one is refused
	// with 413. The default is DefaultMaxSyncChanges, so that a client
	// fetching every member one sync-collection answer listed in one
	// multiget is never refused. Default 5000.
	MaxMultigetHrefs int
	// MaxRequestBody bounds the XML body of PROPFIND, PROPPATCH,
	// MKCALENDAR, MKCOL and REPORT requests. Default 4 MiB.
	MaxRequestBody int64
	// MaxXMLDepth bounds the nesting of request XML elements. Default 32.
	MaxXMLDepth int
	// MaxXMLElements bounds the number of elements in one request body.
	// Default 100,000.
	MaxXMLElements int
}

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxResourceSize < 0 || l.MaxCollections < 0 || l.MaxObjectsPerCollection < 0 ||
		l.MaxInstances < 0 || l.MaxAttendees < 0 || l.MaxRecipients < 0 || l.MaxRequestBody < 0 || l.MaxSyncChanges < 0 || l.MaxPrincipalSearch < 0 || l.MaxMultigetHrefs < 0 ||
		l.MaxXMLDepth < 0 || l.MaxXMLElements < 0 {
		return l, errors.New("limits must not be negative")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def64 := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def64(&l.MaxResourceSize, DefaultMaxResourceSize)
	def(&l.MaxCollections, DefaultMaxCollections)
	def(&l.MaxObjectsPerCollection, DefaultMaxObjectsPerCollection)
	def(&l.MaxInstances, DefaultMaxInstances)
	def(&l.MaxAttendees, DefaultMaxAttendees)
	def(&l.MaxRecipients, DefaultMaxRecipients)
	def(&l.MaxSyncChanges, DefaultMaxSyncChanges)
	def(&l.MaxPrincipalSearch, DefaultMaxPrincipalSearch)
	def(&l.MaxMultigetHrefs, DefaultMaxMultigetHrefs)
	def64(&l.MaxRequestBody, DefaultMaxRequestBody)
	def(&l.MaxXMLDepth, DefaultMaxXMLDepth)
	def(&l.MaxXMLElements, DefaultMaxXMLElements)
	return l, nil
}

// Options configure a [Handler]. Store and Directory are required; every
// other zero field takes the documented default.
type Options struct {
	// Store holds the calendars and address books; the account of a
	// user's collections is its directory.User.ID.
	Store Store
	// Directory authenticates users (Basic auth, RFC 7617) for
	// directory.ProtoDAV and lists their addresses.
	Directory Directory
	// GAL, if set, serves the tenant's global address list as the
	// read-only address book "gal" of every user.
	GAL GAL
	// AuthLimiter decides which password checks may run; share the one
	// the IMAP and SMTP listeners use so that failures count on all.
	// Default: a private limiter with authlimit.Policy defaults.
	AuthLimiter *authlimit.Limiter
	// AuthCacheTTL is how long a verified user name and password are
	// accepted again from the same client (IPv4 address or IPv6 /64)
	// without asking the limiter or the directory (DAV clients send
	// Basic credentials with every request, and password hashes are
	// deliberately slow). Only a keyed hash of the three is kept. Default
	// DefaultAuthCacheTTL; negative disables the cache.
	AuthCacheTTL time.Duration
	// Prefix is the URL path under which DAV is served, without a
	// trailing slash. Default "/dav".
	Prefix string
	// Logger receives one record per refused authentication and per
	// server fault. Default: a logger that discards.
	Logger *slog.Logger
	// Limits bound requests and data; see [Limits].
	Limits Limits
	// IMIP, if set, carries scheduling messages for calendar users this
	// server does not host (see [IMIP]); without it they get
	// SCHEDULE-STATUS 5.3.
	IMIP IMIP
	// RemoteFreeBusy, if set, answers free/busy for the recipients of
	// an outbox free/busy request (RFC 6638 §5) that are not calendar
	// users here: another site's users and resources, such as a linked
	// geo site's (examples/mailserver wires geo's cross-site free/busy).
	// It gets those recipients' addresses (without "mailto:"), at most
	// Limits.MaxRecipients, in one call. An address in its result is
	// answered 2.0 with those periods; one left out is 3.7 (not a
	// calendar user) when it returns no error, 5.1 (service unavailable)
	// when it does. Without it such recipients are 3.7.
	RemoteFreeBusy func(ctx context.Context, addresses []string, from, to time.Time) (map[string][]BusyPeriod, error)
	// FloatingLocation is the time zone in which floating date-times
	// (RFC 5545 §3.3.5, no TZID) are evaluated by time-range queries and
	// free/busy (RFC 4791 §9.9). Default UTC.
	FloatingLocation *time.Location
}

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("option Store is required"))
	}
	if o.Directory == nil {
		errs = append(errs, errors.New("option Directory is required"))
	}
	if o.Prefix == "" {
		o.Prefix = "/dav"
	}
	if !strings.HasPrefix(o.Prefix, "/") || strings.HasSuffix(o.Prefix, "/") || strings.Contains(o.Prefix, "//") {
		errs = append(errs, fmt.Errorf("option Prefix %q must start and not end with a slash", o.Prefix))
	}
	lim, err := o.Limits.withDefaults()
	if err != nil {
		errs = append(errs, err)
	}
	o.Limits = lim
	if len(errs) > 0 {
		return o, fmt.Errorf("dav: invalid options: %w", errors.Join(errs...))
	}
	if o.AuthLimiter == nil {
		o.AuthLimiter = authlimit.New(authlimit.Policy{})
	}
	if o.AuthCacheTTL == 0 {
		o.AuthCacheTTL = DefaultAuthCacheTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FloatingLocation == nil {
		o.FloatingLocation = time.UTC
	}
	return o, nil
}
