package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"
)

// Sentinel errors. Backends wrap them with %w so callers match with errors.Is.
var (
	// ErrNotFound: the account, mailbox, message, collection, object or
	// record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrNoMailbox: the mailbox does not exist (its account does). It
	// wraps ErrNotFound, so errors.Is(err, ErrNotFound) holds too.
	ErrNoMailbox = fmt.Errorf("%w: no such mailbox", ErrNotFound)
	// ErrNoMessage: the message is not (or no longer) in its mailbox. It
	// wraps ErrNotFound, so errors.Is(err, ErrNotFound) holds too.
	ErrNoMessage = fmt.Errorf("%w: no such message", ErrNotFound)
	// ErrExists: an account, mailbox, collection, object name or UID is
	// already taken.
	ErrExists = errors.New("store: already exists")
	// ErrInvalid: the arguments are malformed (empty or invalid mailbox name,
	// renaming INBOX, deleting INBOX, bad flag, ...). Nothing was changed.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrQuotaExceeded: adding the message would exceed an account quota.
	// Returned wrapped in a *QuotaError.
	ErrQuotaExceeded = errors.New("store: quota exceeded")
	// ErrPreconditionFailed: an If-Match ETag or UNCHANGEDSINCE condition
	// did not hold. Nothing was changed.
	ErrPreconditionFailed = errors.New("store: precondition failed")
	// ErrSyncTokenInvalid: a collection sync token is unknown or too old
	// (RFC 6578 §3.2 valid-sync-token); the client must do a full sync.
	ErrSyncTokenInvalid = errors.New("store: invalid sync token")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store: closed")
	// ErrNoSpace: a write failed because the disk is full (ENOSPC,
	// EDQUOT, SQLITE_FULL). Nothing was changed; the same call may succeed
	// once space is freed.
	ErrNoSpace = errors.New("store: no space left on the server's disk")
)

// NoSpace returns err marked with ErrNoSpace (still matching err with
// errors.Is and errors.As) when the operating system said the disk is
// full: ENOSPC, or EDQUOT for the filesystem quota of the server's user.
// Other errors, and nil, are returned as they are. Backends and callers
// that write files of their own use it, so that every full disk is
// reported the same way.
func NoSpace(err error) error {
	if err == nil || errors.Is(err, ErrNoSpace) {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// QuotaError says which accounts would go over which limit.
type QuotaError struct {
	// Accounts that are over quota, in the order the caller gave them.
	Accounts []string
	// Resource is "STORAGE" or "MESSAGE" (RFC 9208 §5 resource names) for
	// the first account listed.
	Resource string
}

// Error implements error.
func (e *QuotaError) Error() string {
	return fmt.Sprintf("store: quota exceeded (%s) for %v", e.Resource, e.Accounts)
}

// Unwrap makes errors.Is(err, ErrQuotaExceeded) true.
func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

// Store is everything a backend provides. Consumers should depend on the
// smaller interfaces they need.
type Store interface {
	Accounts
	Mailboxes
	Messages
	Deliverer
	Collections
	Records
	Feed
	Checker
	// Close releases the backend. Pending group commits finish first.
	// Calling Close again does nothing and returns the first call's result.
	Close() error
}

// Quota holds an account's limits. Zero means unlimited.
type Quota struct {
	MaxBytes    int64 // sum of message sizes (RFC 9208 STORAGE, in bytes)
	MaxMessages int64 // number of messages (RFC 9208 MESSAGE)
}

// Usage is what an account currently holds.
type Usage struct {
	Bytes    int64
	Messages int64
}

// Account is a mail/calendar/contacts owner. The ID is chosen by the caller
// (the directory uses the user's stable ID) and never changes.
type Account struct {
	ID      string
	Quota   Quota
	Created time.Time
}

// Accounts manages accounts and their quotas.
type Accounts interface {
	// CreateAccount creates the account with the default mailboxes INBOX,
	// Sent, Drafts, Trash, Junk and Archive (with their special-use
	// attributes, all subscribed) and a default calendar "calendar" and
	// address book "contacts". ErrExists if the ID is taken.
	CreateAccount(ctx context.Context, id string, q Quota) (Account, error)
	// Account returns one account.
	Account(ctx context.Context, id string) (Account, error)
	// ListAccounts returns up to limit accounts with ID > after, by ID.
	ListAccounts(ctx context.Context, after string, limit int) ([]Account, error)
	// SetQuota changes an account's limits; existing mail is kept even if
	// it is now over the limit.
	SetQuota(ctx context.Context, id string, q Quota) error
	// Usage returns what the account holds and its limits.
	Usage(ctx context.Context, id string) (Usage, Quota, error)
	// DeleteAccount removes the account and everything it owns.
	DeleteAccount(ctx context.Context, id string) error
}

// SpecialUse is a mailbox special-use attribute (RFC 6154 §2).
type SpecialUse string

// Special-use attributes. INBOX is not a special-use attribute in RFC 6154;
// it is identified by its name.
const (
	SpecialNone    SpecialUse = ""
	SpecialSent    SpecialUse = `\Sent`
	SpecialDrafts  SpecialUse = `\Drafts`
	SpecialTrash   SpecialUse = `\Trash`
	SpecialJunk    SpecialUse = `\Junk`
	SpecialArchive SpecialUse = `\Archive`
	SpecialAll     SpecialUse = `\All`
	SpecialFlagged SpecialUse = `\Flagged`
)

// Separator is the mailbox hierarchy separator.
const Separator = "/"

// Inbox is the canonical name of the inbox.
const Inbox = "INBOX"

// Mailbox describes one mailbox and its counters.
type Mailbox struct {
	ID         int64
	Name       string // full path, "/"-separated; INBOX is always "INBOX"
	SpecialUse SpecialUse
	// Subscribed reports whether Name is on the account's subscription
	// list (see [Mailboxes.SetSubscribed]).
	Subscribed bool
	// UIDValidity is fixed for the life of the mailbox (RFC 9051 §2.3.1.1).
	UIDValidity uint32
	// UIDNext is the UID the next message will get.
	UIDNext uint32
	// HighestModSeq is the highest MODSEQ given out in this mailbox
	// (RFC 7162 §3.1.1); it starts at 1 for an empty new mailbox.
	HighestModSeq uint64
}

// MailboxStatus is Mailbox plus counts (IMAP STATUS).
type MailboxStatus struct {
	Mailbox
	Messages int64 // number of messages
	Unseen   int64 // messages without \Seen
	Deleted  int64 // messages with \Deleted
	Size     int64 // sum of message sizes (RFC 8438 STATUS=SIZE)
}

// Mailboxes manages an account's mailboxes. A named mailbox that does
// not exist is ErrNoMailbox, here and in [Messages]; a missing account
// is ErrNotFound.
type Mailboxes interface {
	// CreateMailbox creates a mailbox. Missing parents are created too
	// (RFC 9051 §6.3.4). ErrExists if it exists; ErrInvalid for empty
	// names, empty path segments or names over 1024 bytes.
	CreateMailbox(ctx context.Context, account, name string, use SpecialUse) (Mailbox, error)
	// Mailbox returns one mailbox by name.
	Mailbox(ctx context.Context, account, name string) (Mailbox, error)
	// ListMailboxes returns every mailbox of the account, by name.
	ListMailboxes(ctx context.Context, account string) ([]Mailbox, error)
	// Status returns a mailbox with its counts.
	Status(ctx context.Context, account, name string) (MailboxStatus, error)
	// RenameMailbox renames a mailbox and all its children ("a" -> "b"
	// also renames "a/x" -> "b/x"), keeping UIDVALIDITY and messages.
	// Renaming INBOX is ErrInvalid here (RFC 9051 §6.3.6 gives INBOX
	// special semantics; the imap package implements them with Move).
	RenameMailbox(ctx context.Context, account, oldName, newName string) error
	// DeleteMailbox deletes a mailbox and its messages; children stay.
	// Deleting INBOX is ErrInvalid. The name stays subscribed if it was
	// (RFC 3501 §6.3.6, RFC 9051 §6.3.7: the server must not remove a
	// name from the subscription list because the mailbox went away).
	DeleteMailbox(ctx context.Context, account, name string) error
	// SetSubscribed adds name to the account's subscription list or
	// removes it (IMAP SUBSCRIBE, UNSUBSCRIBE). The list holds names, not
	// mailboxes: a name may be subscribed whether or not a mailbox of
	// that name exists (RFC 9051 §6.3.7 lets the server accept it), and
	// unsubscribing a name that is not subscribed does nothing. Only
	// RenameMailbox changes the list by itself: the subscribed names of
	// the renamed mailbox and its children move to their new names.
	// ErrInvalid for a malformed name; ErrNotFound for a missing account.
	SetSubscribed(ctx context.Context, account, name string, subscribed bool) error
	// Subscriptions returns the account's subscribed names, sorted, also
	// those for which no mailbox exists (RFC 5258 §3.1 lists them
	// \NonExistent).
	Subscriptions(ctx context.Context, account string) ([]string, error)
}

// System flags (RFC 9051 §2.3.2). Keywords are any other atom without a
// leading backslash. Flags are case-insensitive on the wire; the store keeps
// system flags in this canonical form and keywords as first given.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// Message is the metadata of one message in a mailbox. The body is read
// with [Messages.OpenBody].
type Message struct {
	UID    uint32
	ModSeq uint64
	Flags  []string // sorted; system flags canonical
	// InternalDate is the time the message was received or the date
	// given to Append, in the zone it was given in (a fixed zone with
	// its UTC offset; UTC for messages stored before zones were kept):
	// IMAP shows it with that zone and compares its calendar date there
	// (RFC 9051 §2.3.3, §6.4.4).
	InternalDate time.Time
	Size         int64
	// BlobID names the stored body; several index rows may share it.
	BlobID string
	// SaveDate is when the message was put in this mailbox: by delivery,
	// Append, Copy or Move (RFC 8514: a copy or a moved message gets
	// the time of the COPY or MOVE, while its InternalDate stays). The
	// zero time means unknown: messages stored before the backend kept
	// it, or imported without one (IMAP SAVEDATE answers NIL).
	SaveDate time.Time
}

// UIDRange is an inclusive range of UIDs. Stop == 0 means "to the end"
// (the IMAP "*").
type UIDRange struct{ Start, Stop uint32 }

// UIDSet is a union of ranges. A nil UIDSet means "all messages".
type UIDSet []UIDRange

// Contains reports whether uid is in the set.
func (s UIDSet) Contains(uid uint32) bool {
	if s == nil {
		return true
	}
	for _, r := range s {
		if uid >= r.Start && (r.Stop == 0 || uid <= r.Stop) {
			return true
		}
	}
	return false
}

// AppendOptions are the optional attributes of an appended message.
type AppendOptions struct {
	Flags        []string
	InternalDate time.Time // zero means now; its zone is kept
	// DeferTextIndex is a hint for bulk imports (migrations): nobody
	// waits to search the message soon, so the backend may fill its
	// full-text entry (TextSearcher) later than a live message's (store/
	// sqlite: when the store is idle rather than within a second).
	// Searches stay exact meanwhile: a message without an entry is a
	// candidate of every text search and the caller reads its body.
	// Backends that index in the transaction ignore it.
	DeferTextIndex bool
}

// FlagOp says how StoreFlags combines flags.
type FlagOp int

// Flag operations (IMAP STORE FLAGS, +FLAGS, -FLAGS).
const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// StoreFlagsRequest is one flag update (RFC 9051 §6.4.6, RFC 7162 §3.1.3).
type StoreFlagsRequest struct {
	UIDs  UIDSet
	Op    FlagOp
	Flags []string
	// UnchangedSince, if non-zero, applies the change only to messages
	// whose MODSEQ is <= UnchangedSince; the UIDs of the others are
	// returned in StoreFlagsResult.Modified (RFC 7162 §3.1.3).
	UnchangedSince uint64
}

// StoreFlagsResult reports what StoreFlags did.
type StoreFlagsResult struct {
	// Updated holds every message in the set after the operation (also
	// those whose flags did not change, which keep their MODSEQ).
	Updated []Message
	// Modified lists UIDs that failed the UnchangedSince test.
	Modified []uint32
	// ModSeq is the MODSEQ the call gave the messages whose flags it
	// changed, which no other write to the mailbox has; 0 when it changed
	// none, or when the backend does not say (the field is optional). A
	// caller that knew the mailbox up to ModSeq-1 knows it up to ModSeq
	// once it applied Updated.
	ModSeq uint64
}

// UIDPair maps a source UID to the UID its copy got (RFC 4315 COPYUID).
type UIDPair struct{ Src, Dst uint32 }

// SearchCriteria selects messages by metadata only; header and body
// searches are the caller's business (they read the blobs). All set fields
// must hold (AND). Zero fields do not restrict.
type SearchCriteria struct {
	UIDs         UIDSet
	WithFlags    []string
	WithoutFlags []string
	// Since and Before compare wall-clock times: INTERNALDATE read in
	// its own zone against Since and Before read in theirs. So midnight
	// UTC of a date selects by the calendar date of INTERNALDATE in the
	// zone it was stored with, as IMAP SINCE and BEFORE do (RFC 9051
	// §6.4.4: "disregarding time and timezone"). For UTC dates and
	// messages stored in UTC this is the plain instant comparison.
	Since         time.Time // INTERNALDATE >= Since
	Before        time.Time // INTERNALDATE < Before
	Larger        int64     // Size > Larger
	Smaller       int64     // Size < Smaller (0 = no limit)
	ModSeqAtLeast uint64    // MODSEQ >= ModSeqAtLeast (RFC 7162 §3.1.5)
}

// ChangeSet is what changed in a mailbox after a MODSEQ (RFC 7162 QRESYNC).
type ChangeSet struct {
	// Changed holds messages whose MODSEQ is greater than the given one.
	Changed []Message
	// Vanished lists UIDs expunged with a MODSEQ greater than the given one.
	Vanished []uint32
}

// Messages reads and changes messages in one mailbox. Every mutating call
// commits durably and publishes to [Feed] before returning.
type Messages interface {
	// Append adds a message read from r. Quota is enforced
	// (*QuotaError). The body is streamed to a blob, never held whole.
	Append(ctx context.Context, account, mailbox string, r io.Reader, opts AppendOptions) (Message, error)
	// ListMessages returns the metadata of the messages in uids, by UID.
	ListMessages(ctx context.Context, account, mailbox string, uids UIDSet) ([]Message, error)
	// Search returns the UIDs matching c, ascending.
	Search(ctx context.Context, account, mailbox string, c SearchCriteria) ([]uint32, error)
	// OpenBody opens a message's raw RFC 5322 body. Once open it reads
	// whole even if the message is expunged meanwhile; a message not (or
	// no longer) in the mailbox is ErrNoMessage.
	OpenBody(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, error)
	// StoreFlags changes flags; each changed message gets a new MODSEQ.
	StoreFlags(ctx context.Context, account, mailbox string, req StoreFlagsRequest) (StoreFlagsResult, error)
	// Expunge removes messages flagged \Deleted; if uids is non-nil only
	// those among them (RFC 4315 UID EXPUNGE). Returns the UIDs removed.
	Expunge(ctx context.Context, account, mailbox string, uids UIDSet) ([]uint32, error)
	// Copy copies messages to dst, sharing the blobs. Quota is enforced.
	Copy(ctx context.Context, account, src, dst string, uids UIDSet) ([]UIDPair, error)
	// Move moves messages to dst atomically (RFC 6851): the copies exist
	// and the originals are expunged in one transaction. dst may be src:
	// the messages then get new UIDs and MODSEQs, and their old UIDs are
	// expunged (RFC 6851 §3: MOVE is COPY, STORE \Deleted and EXPUNGE).
	Move(ctx context.Context, account, src, dst string, uids UIDSet) ([]UIDPair, error)
	// Changes reports what changed after sinceModSeq (RFC 7162).
	Changes(ctx context.Context, account, mailbox string, sinceModSeq uint64) (ChangeSet, error)
}

// Recipient is one local delivery target.
type Recipient struct {
	Account string
	Mailbox string // empty means INBOX; a missing mailbox falls back to INBOX
	Flags   []string
}

// Delivery describes one message for several local recipients.
type Delivery struct {
	Recipients   []Recipient
	InternalDate time.Time // zero means now (the server's local zone); its zone is kept
}

// Delivered is the UID one recipient's copy got.
type Delivered struct {
	Recipient
	Mailbox string // where it was stored (after INBOX fallback)
	UID     uint32
}

// Deliverer stores one incoming message for many recipients.
type Deliverer interface {
	// Deliver stores the body once and indexes it for every recipient,
	// atomically and durably. If any recipient is over quota nothing is
	// stored and a *QuotaError names them. Concurrent calls share fsyncs
	// (group commit). Duplicate accounts in Recipients get one copy each
	// per distinct (account, mailbox).
	Deliver(ctx context.Context, d Delivery, body io.Reader) ([]Delivered, error)
}

// CollectionKind distinguishes calendars from address books.
type CollectionKind string

// Collection kinds.
const (
	KindCalendar    CollectionKind = "calendar"
	KindAddressBook CollectionKind = "addressbook"
)

// Collection is a CalDAV calendar or CardDAV address book.
type Collection struct {
	ID          int64
	Account     string
	Kind        CollectionKind
	Name        string // one path segment, unique per account and kind
	DisplayName string
	Description string
	Color       string // calendar colour, e.g. "#3a87adff"; may be empty
	// Components restricts a calendar to these iCalendar components
	// (VEVENT, VTODO, ...); empty means any.
	Components []string
	// SyncToken increases with every change to the collection's objects
	// (RFC 6578); it is also the CTag.
	SyncToken uint64
}

// Object is one calendar object resource or vCard.
type Object struct {
	Name        string // resource name in the collection, e.g. "abc.ics"
	UID         string // iCalendar/vCard UID; unique per collection
	ETag        string // strong ETag, quoted form not included
	ContentType string
	Data        []byte // filled by GetObject, ObjectByUID and QueryObjects
	Size        int64
	Modified    time.Time

	// Component is the object's main component: "VEVENT", "VTODO",
	// "VJOURNAL", "VFREEBUSY" for calendar objects, "VCARD" for contacts;
	// empty if unknown. The store keeps it in upper case (component names
	// are case-insensitive, RFC 5545 §2) and refuses anything but letters,
	// digits and "-" (an iana-token or x-name, RFC 5545 §3.1) with
	// ErrInvalid.
	Component string
	// Start and End bound every instance of a calendar object over its
	// whole recurrence set, as RFC 4791 §9.9 defines an instance's extent:
	// Start is the earliest instance start, End the latest instance end.
	// A zero Start means unbounded in the past, a zero End unbounded in
	// the future (an RRULE with no UNTIL or COUNT). An object with no time
	// at all (a VTODO without dates) has both zero and so is in every
	// range.
	//
	// The caller of PutObject sets them (the store only indexes them, it
	// does not parse Data). The store keeps them as [IndexBounds] returns
	// them: in UTC, to whole seconds, Start rounded down and End rounded
	// up, bounds beyond the years 1 to 9999 widened, so that the stored
	// bounds still hold every instance. An End before Start (both set) is
	// ErrInvalid.
	Start, End time.Time
}

// MaxObjectQueryLimit is the most objects one QueryObjects call returns.
const MaxObjectQueryLimit = 1000

// ObjectQuery selects objects of a collection for QueryObjects.
type ObjectQuery struct {
	// Component, if not empty, is the component objects must have
	// (compared without regard to case, like Object.Component). An object
	// whose Component is empty (unknown, as for objects stored before
	// the store kept components) matches any Component.
	Component string
	// From and To are the time range [From, To) objects must overlap; a
	// zero From or To is unbounded on that side.
	From, To time.Time
	// After is the name of the last object of the previous page; only
	// objects whose name sorts after it (byte-wise) are returned.
	After string
	// Limit is the page size: <= 0 means MaxObjectQueryLimit, and no
	// more than MaxObjectQueryLimit are returned.
	Limit int
	// Contains, if not empty, narrows the query to objects whose data
	// satisfies every clause (see ContainsClause and ContainsMatches):
	// a prefilter that spares the caller reading objects that cannot
	// match its own test. A backend returns every object that satisfies
	// it and may return some others (the caller tests again); storetest
	// holds backends to leaving out data that does not satisfy it when
	// the data is UTF-8 without zero bytes and backslashes. Paging is over the objects it selects, so a
	// page shorter than Limit is still the last.
	Contains []ContainsClause
}

// ObjectChange is one entry of a collection's change log.
type ObjectChange struct {
	Name    string
	Deleted bool
}

// PutOptions are the preconditions of PutObject (RFC 7232).
type PutOptions struct {
	IfMatch     string // non-empty: the current ETag must equal it
	IfNoneMatch bool   // true: the object must not exist (If-None-Match: *)
}

// Collections stores calendars and address books.
type Collections interface {
	CreateCollection(ctx context.Context, c Collection) (Collection, error)
	Collection(ctx context.Context, account string, kind CollectionKind, name string) (Collection, error)
	ListCollections(ctx context.Context, account string, kind CollectionKind) ([]Collection, error)
	// UpdateCollection changes display name, description, colour and
	// components; it does not change the sync token.
	UpdateCollection(ctx context.Context, c Collection) error
	DeleteCollection(ctx context.Context, account string, kind CollectionKind, name string) error
	// PutObject creates or replaces an object and returns it as stored
	// (with its new ETag, its Component in upper case and its bounds as
	// IndexBounds keeps them). ErrPreconditionFailed if opts do not hold;
	// ErrExists if another object in the collection has the same UID;
	// ErrInvalid for a bad name, UID, Component or bounds.
	PutObject(ctx context.Context, collectionID int64, o Object, opts PutOptions) (Object, error)
	// GetObject returns an object with its data.
	GetObject(ctx context.Context, collectionID int64, name string) (Object, error)
	// ObjectByUID returns an object (with data) by its UID.
	ObjectByUID(ctx context.Context, collectionID int64, uid string) (Object, error)
	// ListObjects returns every object of a collection without data.
	ListObjects(ctx context.Context, collectionID int64) ([]Object, error)
	// DeleteObject deletes an object; ifMatch as in PutOptions.
	DeleteObject(ctx context.Context, collectionID int64, name, ifMatch string) error
	// QueryObjects returns, ordered by Name, up to q.Limit objects of a
	// collection with their data whose Name > q.After, whose Component
	// equals q.Component (an empty q.Component matches any, an empty
	// Component matches any q.Component) and whose [Start, End) overlaps
	// [q.From, q.To) (see Object.Overlaps; a zero From or To is
	// unbounded). Paging with After lets a REPORT stream any collection in
	// bounded memory: the next page starts after the last name returned,
	// and a page shorter than the limit is the last. Limit <= 0 means
	// MaxObjectQueryLimit, and at most MaxObjectQueryLimit are returned.
	// ErrNotFound if the collection does not exist; ErrInvalid if
	// q.Component is not a component name or q.To is not after q.From.
	QueryObjects(ctx context.Context, collectionID int64, q ObjectQuery) ([]Object, error)
	// ChangesSince returns the names changed or deleted after token and the
	// current token (RFC 6578). Token 0 returns every current object.
	// ErrSyncTokenInvalid if the log no longer reaches back to token.
	ChangesSince(ctx context.Context, collectionID int64, token uint64) ([]ObjectChange, uint64, error)
}

// Record is one entry in a keyed namespace of [Records]. The store gives a
// record no meaning: its namespace's owner (see "Records" in the package
// documentation) defines what the key and value hold.
type Record struct {
	Namespace string
	Key       string
	Value     []byte
	// Version increases with every write of this key (optimistic locking).
	Version int64
}

// RecordTx is a set of record reads and writes committed atomically.
type RecordTx interface {
	Get(namespace, key string) (Record, error)
	// Put writes the value. If expectVersion >= 0 the current version must
	// equal it (0: must not exist), else ErrPreconditionFailed.
	Put(namespace, key string, value []byte, expectVersion int64) error
	Delete(namespace, key string) error
	// List returns up to limit records with Key > after, by key.
	List(namespace, after string, limit int) ([]Record, error)
}

// Records is a small transactional key-value space for higher layers. A
// namespace is an opaque non-empty string; the package that owns it
// declares it and documents its layout, and no other package writes it.
type Records interface {
	// GetRecord reads one record (ErrNotFound if absent).
	GetRecord(ctx context.Context, namespace, key string) (Record, error)
	// ListRecords returns up to limit records with Key > after, by key.
	ListRecords(ctx context.Context, namespace, after string, limit int) ([]Record, error)
	// UpdateRecords runs fn in one transaction; if fn returns an error
	// nothing is written. fn may be called more than once on conflicts.
	// fn must not call other Store methods (a backend may run it on its
	// single writer, where such a call would deadlock) and should be quick.
	UpdateRecords(ctx context.Context, fn func(tx RecordTx) error) error
}

// ChangeKind says what a Change is about.
type ChangeKind int

// Change kinds.
const (
	// ChangeOverflow: the subscriber missed changes and must resync.
	ChangeOverflow ChangeKind = iota
	ChangeMessagesAdded
	ChangeFlags
	ChangeExpunged
	ChangeMailboxCreated
	ChangeMailboxDeleted
	ChangeMailboxRenamed
	ChangeCollection
	ChangeAccountDeleted
)

// Change is one committed change, published on the feed.
type Change struct {
	Kind    ChangeKind
	Account string
	Mailbox string // mailbox name, or new name for renames
	OldName string // for ChangeMailboxRenamed
	// UIDs affected (added, flag-changed or expunged).
	UIDs   []uint32
	ModSeq uint64 // mailbox HIGHESTMODSEQ after the change
	// Collection ID and new sync token for ChangeCollection.
	CollectionID int64
	SyncToken    uint64
}

// Subscription delivers the changes of one account.
type Subscription interface {
	// C delivers changes in commit order. It is closed by Close or when
	// the store closes.
	C() <-chan Change
	// Close stops the subscription. Safe to call more than once.
	Close() error
}

// Feed publishes committed changes per account.
type Feed interface {
	Subscribe(ctx context.Context, account string) (Subscription, error)
}

// Problem is one inconsistency found by Check.
type Problem struct {
	Kind   string // "orphan-blob", "missing-blob", "orphan-row", "size-mismatch", "counter"
	Detail string
}

// Checker verifies the integrity of a backend.
type Checker interface {
	// Check reports orphan blobs (no index row), index rows whose blob is
	// missing or has the wrong size, and counters (UIDNEXT, usage) that
	// disagree with the rows. It changes nothing.
	Check(ctx context.Context) ([]Problem, error)
}
