// Package migration copies mailboxes from another IMAP server (Exchange,
// Dovecot, an old corporate system) into a Mailyard store while both
// systems run, and keeps the copies current until each user is cut over.
//
// A [Job] names one target mailbox and where and how to read its source. A
// pass ([Migrator.Sync]) connects to the source with go-imap/v2's client,
// discovers the folders, maps special folders, skips excluded ones and
// copies every message it has not copied before (bytes, flags, keywords and
// INTERNALDATE) straight into the store, then carries source flag changes
// over to the copies made earlier. Per-folder state is checkpointed in the
// store's records after each durable append, so a pass killed at any point
// resumes without duplicates. [Migrator.Collect] repeats passes on an
// interval until the mailbox is cut over ([Migrator.Disable]).
//
// A [Run] starts collectors for many mailboxes at once (from a CSV file or
// for every user of a domain) and is kept in the run history; a [Report]
// compares source and target per mailbox and folder. The engine returns
// these as data; package migration/report renders a report as CSV, as an
// HTML page, as a text summary or as a mail carrying all three.
//
// Mail collection is one-way: nothing is ever written to the source.
//
// # Collectors in detail
//
// Connections: every dial is checked against Options.Allowlist first (a
// refused host is ErrClassConfig and no connection is made; a host name
// that is not listed itself is resolved and every address must be in a
// listed block, and exactly those addresses are dialled). Connections to
// one host are bounded by Options.MaxConnsPerHost over all collectors,
// reads from all sources share Options.BandwidthLimit, and every read and
// write on a source connection has a deadline (DialTimeout until logged
// in, then CommandTimeout).
//
// Folders: NAMESPACE (RFC 2342) tells the personal prefix and the folders
// of other users and shared namespaces, which are skipped; LIST "" "*"
// with RETURN (SPECIAL-USE) (RFC 6154) lists the rest. Names are decoded
// from modified UTF-7 by go-imap, the personal prefix is dropped and the
// source's separator becomes "/" (a "/" inside a segment becomes "_").
// Exclusions (Job.Exclude, default [DefaultExclude]) match exactly and
// case-sensitively a folder's full name, one of its ancestors or one of
// its segments: "Drafts" also excludes "Drafts/Old" and "Work/Drafts".
// Mapping: Job.FolderMap (by "/"-separated source name, also for the
// folder's children), then INBOX, then special-use attributes, then
// well-known English and Russian names of top-level folders, each mapped
// to the target account's mailbox with that special use; children follow
// their parent ("Sent Items/2019" -> "Sent/2019"). Several source folders
// may feed one target mailbox. A folder's target is fixed when it is
// first copied (its checkpoint keeps it). \Noselect folders are created
// in the target but hold nothing.
//
// Copies: each message keeps its bytes, flags and keywords (\Recent and
// flags the store cannot keep are dropped) and INTERNALDATE. Messages
// over Options.MaxMessageSize are counted and never fetched. The source
// is only EXAMINEd and read with BODY.PEEK[], so even \Seen never changes
// there. Bodies stream from the connection into the store; one of up to
// 1 MiB is read off the connection first (at most 32 MiB of them at once
// per Migrator), so that the FETCH goes on while the previous bodies are
// written and synced. Where the store takes batches
// (store.BatchAppender), those bodies are appended up to 64 messages or
// 4 MiB at a time, each batch one durable write and one commit; larger
// bodies stream into appends of their own.
//
// One mailbox, one copier: a pass holds a lease on its target in the
// store ("migration.lease": host, process, expiry, renewed while the pass
// runs), so a second process asked to copy the same mailbox meanwhile
// fails with ErrBusy instead of racing the first past its checkpoints. A
// holder on this host whose process is gone (SIGKILL) is taken over at
// once; one on another host when its lease expires.
//
// Checkpoints: each durable append is followed by its checkpoint: the
// message's record (source UID -> target UID, size, INTERNALDATE,
// Message-ID hash, flags last seen) and the folder's record (UIDVALIDITY,
// highest copied UID, the target mailbox's UIDNEXT bound), written in one
// record transaction (with those of other appends that finished
// meanwhile: Options.AppendParallel appends or batches of a folder
// overlap), in the "migration.collector", "migration.folder" and
// "migration.msg" namespaces, one small record per message. The append and its record
// are two commits: after a crash between them, the next pass finds the
// copy among the target messages at or above the recorded UIDNEXT bound
// by size, INTERNALDATE and its first 64 KiB (byte for byte) and records
// it instead of copying again. A changed source UIDVALIDITY re-pairs the
// records by size, INTERNALDATE and Message-ID (for a message without
// one, by size, INTERNALDATE and its first 64 KiB).
//
// Later passes carry flag changes over: the source's flags are compared
// with the flags last seen there (not with the copy), and only what the
// source changed is added to or removed from the copy, so flags the user
// changed in Mailyard stay. Where the source offers CONDSTORE (RFC 7162),
// a folder's checkpoint keeps its HIGHESTMODSEQ, and a later pass reads
// only the new messages and the flags changed since then (UID FETCH
// 1:last (FLAGS) (CHANGEDSINCE n)) instead of every message's metadata;
// it reads everything when the checkpoint has no mod-sequence, the
// UIDVALIDITY changed, or the message count shows expunges.
//
// Instant collection: a continuous collector ([Migrator.Collect]) whose
// source announces IDLE keeps an IDLE connection on the source INBOX and
// copies new INBOX mail within seconds (an INBOX pass), while the other
// folders keep the interval (idle.go). Messages expunged on the source are not
// expunged in the target: the target is the user's new mailbox, a
// deletion in the old system during coexistence is usually a clean-up
// there, and a migration tool that deletes mail cannot be undone.
//
// The collector's record keeps the job with its password, in the store
// (which also holds the mail): continuous collection and resumed runs log
// in again with it. The password is sealed there with AES-256-GCM under a
// key derived by HKDF-SHA256 (RFC 5869) from Options.SecretKey, with the
// target address as associated data and a version prefix ("v1:"), so a
// copy of the store alone reveals no password; records from before
// sealing (plain text) are read and sealed when next written. Statuses,
// logs and errors never show it.
package migration

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// TLSMode says how a collector secures its connection to the source.
type TLSMode string

// TLS modes.
const (
	TLSImplicit TLSMode = "implicit" // TLS from the first byte (port 993)
	TLSStartTLS TLSMode = "starttls" // plain connect, then STARTTLS (port 143)
	TLSPlain    TLSMode = "plain"    // no TLS; for labs and loopback only
)

// Source is where a mailbox is read from.
type Source struct {
	Host string
	// Port 0 means 993 for TLSImplicit and 143 otherwise.
	Port int
	TLS  TLSMode
	// InsecureSkipVerify accepts any server certificate (labs only).
	InsecureSkipVerify bool
	// CAFile, if set, is a PEM file of CAs that sign the source's
	// certificate (instead of the system pool).
	CAFile string
}

// AuthMode says how a collector logs in to the source.
type AuthMode string

// Authentication modes.
const (
	// AuthUser logs in as the mailbox's own user: LOGIN Login Password.
	AuthUser AuthMode = "user"
	// AuthServicePlain authenticates as a service account and opens the
	// mailbox as the authorization identity: AUTHENTICATE PLAIN with
	// authzid=Login, authcid=Service (RFC 4616).
	AuthServicePlain AuthMode = "service-plain"
	// AuthServiceExchange logs in with the form Exchange uses for a
	// service account opening another mailbox:
	// LOGIN "domain\service\mailbox" Password, where Service is
	// "domain\service" and Login the mailbox alias.
	AuthServiceExchange AuthMode = "service-exchange"
)

// Secret is a password. It prints, logs and marshals as a mask; only
// [Secret.Reveal] returns the value.
type Secret string

// Mask is what a [Secret] shows instead of its value.
const Mask = "********"

// String returns the mask (or "" for an empty secret).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Mask
}

// GoString masks the secret in %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// LogValue masks the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText masks the secret in JSON, TOML and every other text encoding.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the password itself, for the source login only.
func (s Secret) Reveal() string { return string(s) }

// Credentials say who logs in to the source and as what.
type Credentials struct {
	Mode AuthMode
	// Login is the mailbox's login on the source (AuthUser), or the
	// mailbox to open (the authorization identity for AuthServicePlain,
	// the alias in "domain\service\mailbox" for AuthServiceExchange).
	Login string
	// Service is the service account (empty for AuthUser).
	Service  string
	Password Secret
}

// defaultExclude is the list behind [DefaultExclude], never handed out.
var defaultExclude = []string{"Черновики", "draft", "drafts", "Drafts", "Draft", "Контакты", "Contacts", "Задачи", "Tasks"}

// DefaultExclude returns the default list of source folders that are not
// copied: drafts, contacts and tasks in English and Russian, as the
// reference migration guide recommends. Names are matched exactly and
// case-sensitively against the source's full folder name and its last
// path segment.
// Each call returns a fresh slice the caller may change.
func DefaultExclude() []string { return slices.Clone(defaultExclude) }

// Job is one mailbox to migrate.
type Job struct {
	// Target is the target mailbox's address; it is resolved through the
	// directory to the account that receives the mail.
	Target      string
	Source      Source
	Credentials Credentials
	// Exclude lists source folders not to copy; nil means DefaultExclude,
	// an empty non-nil slice excludes nothing.
	Exclude []string
	// FolderMap maps source folder names to target mailbox names; it wins
	// over special-use and well-known-name mapping.
	FolderMap map[string]string
	// Protocol is the source's protocol: [ProtocolIMAP] for the IMAP
	// collectors, another name (e.g. [ProtocolEWS]) for a source whose
	// pass the run's [RunSpec].Pass makes, or "" for the run's own
	// (RunSpec.Protocol). One run may mix IMAP and other jobs.
	Protocol string `json:",omitempty"`
	// Endpoint is the URL of a non-IMAP source (the EWS URL); empty for
	// IMAP, whose server is Source.
	Endpoint string `json:",omitempty"`
}

// Source protocols of a [Job].
const (
	// ProtocolIMAP is the IMAP collectors' protocol.
	ProtocolIMAP = "IMAP"
	// ProtocolEWS is Exchange Web Services (migration/ews).
	ProtocolEWS = "EWS"
)

// isIMAP reports whether protocol p names IMAP ("" is the default).
func isIMAP(p string) bool { return p == "" || strings.EqualFold(p, ProtocolIMAP) }

// Masked returns a copy of j that is safe to show: the password is
// replaced by the mask. (Secret already masks itself when printed; Masked
// also protects code that reads the field with Reveal.)
func (j Job) Masked() Job {
	if j.Credentials.Password != "" {
		j.Credentials.Password = Mask
	}
	return j
}

// ErrorClass classifies why a pass failed.
type ErrorClass string

// Error classes.
const (
	ErrClassAuth       ErrorClass = "auth"       // the source refused the login
	ErrClassConnection ErrorClass = "connection" // dial, TLS, timeout, dropped connection
	ErrClassQuota      ErrorClass = "quota"      // the target account is over quota
	ErrClassTooLarge   ErrorClass = "too-large"  // a message exceeds the size limit
	ErrClassSource     ErrorClass = "source"     // the source answered NO/BAD or sent garbage
	ErrClassConfig     ErrorClass = "config"     // not allowed (allowlist), unknown target, bad job
	ErrClassTarget     ErrorClass = "target"     // the local store failed
	ErrClassCanceled   ErrorClass = "canceled"   // stopped by the caller (Ctrl-C, shutdown)
)

// Error is a classified migration error.
type Error struct {
	Class  ErrorClass
	Target string // target address, when known
	Folder string // source folder, when known
	Err    error
}

// Error implements error: "migration TARGET folder "F": CLASS: cause".
func (e *Error) Error() string {
	s := "migration"
	if e.Target != "" {
		s += " " + e.Target
	}
	if e.Folder != "" {
		s += " folder " + fmt.Sprintf("%q", e.Folder)
	}
	return s + ": " + string(e.Class) + ": " + e.Err.Error()
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err (ErrClassSource for an unclassified
// error, "" for nil).
func ClassOf(err error) ErrorClass {
	if err == nil {
		return ""
	}
	var me *Error
	if errors.As(err, &me) {
		return me.Class
	}
	return ErrClassSource
}

// ErrTwoWay is returned for a request to sync mail both ways: collection
// is one-way, from the source into Mailyard.
var ErrTwoWay = errors.New("migration: two-way mail sync is not supported: collection is one-way (source to Mailyard)")

// State is a collector's state.
type State string

// Collector states.
const (
	StateQueued   State = "queued"   // created by a run, no pass started yet
	StateRunning  State = "running"  // a pass is in progress
	StateOK       State = "ok"       // the last pass succeeded
	StateError    State = "error"    // the last pass failed (see LastError)
	StateDisabled State = "disabled" // cut over: no more passes
)

// FolderStatus is what the last pass saw and did in one source folder.
type FolderStatus struct {
	Source string // source folder name (decoded, with the source's separator replaced by "/")
	Target string // target mailbox name; empty if excluded
	// Excluded is true for folders skipped by the exclusion list.
	Excluded bool
	// SourceMessages and SourceBytes count the folder on the source.
	SourceMessages, SourceBytes int64
	// Copied and CopiedBytes count messages present in the target (over
	// all passes).
	Copied, CopiedBytes int64
	// SkippedTooLarge counts source messages over the size limit.
	SkippedTooLarge int64
	// Failed counts messages that failed in the last pass.
	Failed   int64
	LastSync time.Time
}

// MailboxStatus is the persisted state of one collector.
type MailboxStatus struct {
	Target string
	// Job is the collector's job, with the password masked.
	Job Job
	// RunID is the run that created or last updated the collector (0 if
	// it was started directly).
	RunID       int64
	State       State
	Created     time.Time
	Updated     time.Time
	LastSuccess time.Time
	// Passes counts successful passes.
	Passes int
	// LastMessage is a human summary of the last pass ("copied 120
	// messages (4.2 MiB) in 3 folders").
	LastMessage string
	LastError   string
	ErrorClass  ErrorClass
	Folders     []FolderStatus
}

// Progress is reported while a pass copies messages.
type Progress struct {
	Target string
	Folder string // source folder being copied, "" between folders
	// Done counts what this pass has copied so far; Total what it found
	// to copy (known once discovery has finished; grows as folders are
	// scanned).
	DoneMessages, DoneBytes   int64
	TotalMessages, TotalBytes int64
}

// ProgressFunc receives progress reports. It is called from the copying
// goroutines and must be quick and safe for concurrent use.
type ProgressFunc func(Progress)
