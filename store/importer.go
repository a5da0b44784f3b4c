package store

import (
	"context"
	"fmt"
	"io"
	"math"
)

// Importer is an optional interface of a backend: it writes mailboxes
// and messages with the UIDVALIDITY, UIDs and MODSEQs the caller gives,
// so that a store copied from another backend (mailserver store copy)
// looks the same to IMAP clients and they need no resynchronisation
// (RFC 9051 §2.3.1.1, RFC 7162 §3.1), with the expunge tombstones
// QRESYNC reports (RFC 7162 §3.2.10), and with the collections' sync
// tokens and change logs, so that CalDAV and CardDAV clients need none
// either (RFC 6578 §3.2). It is not part of [Store]: only a copy into
// a store that no client uses yet needs it. store/postgres and
// store/memstore implement it; find it by type assertion.
//
// Every call is idempotent for a resumed copy: ImportMailbox again with
// the same values changes nothing, ImportMessage of a UID already there
// is ErrExists with nothing written, ImportTombstones leaves the
// tombstones there alone, and ImportSyncToken and ImportChangeLog again
// with the same values write what is there already.
type Importer interface {
	// ImportMailbox makes the account's mailbox mb.Name exist with
	// mb.UIDValidity and mb.SpecialUse, its UIDNEXT at least mb.UIDNext
	// and its HIGHESTMODSEQ at least mb.HighestModSeq, and returns it. A
	// missing mailbox is created (its parents are not). An existing one
	// that never gave out a UID (UIDNEXT 1, as CreateAccount's default
	// mailboxes are) takes mb.UIDValidity; one with another UIDVALIDITY
	// that gave out UIDs is ErrExists. The subscription list is not
	// changed. ErrInvalid for a zero UIDValidity, a malformed name or an
	// invalid special use; ErrNotFound for a missing account. Later
	// mailboxes the store creates get larger UIDVALIDITYs than any
	// imported.
	ImportMailbox(ctx context.Context, account string, mb Mailbox) (Mailbox, error)
	// ImportMessage stores body as message m.UID of the mailbox, with
	// m.ModSeq, m.Flags, m.InternalDate (its zone kept) and m.SaveDate
	// (zero: unknown, as for messages stored before save dates); the mailbox's
	// UIDNEXT and HIGHESTMODSEQ are raised past them if needed, and the
	// account's usage grows, whatever its quota. m.UID may be below
	// UIDNEXT: the caller vouches that the mailbox never gave it to
	// another message under this UIDVALIDITY. ErrExists if the mailbox
	// has, or had (an expunge tombstone), that UID; ErrInvalid for a zero
	// UID or MODSEQ, a bad flag, or a body whose length is not m.Size
	// (when m.Size is not zero). m.BlobID is ignored. Subscribers of the
	// feed see ChangeMessagesAdded.
	ImportMessage(ctx context.Context, account, mailbox string, m Message, body io.Reader) error
	// ImportSyncToken makes the collection's sync token (its CTag too)
	// token, the one the copied collection had, so that a CalDAV or
	// CardDAV client that synced with it finds nothing changed (RFC 6578
	// §3.2; the objects' ETags, hashes of their data, are the same
	// already). The change log is not copied: it starts again at token,
	// and ChangesSince of an older token is ErrSyncTokenInvalid (that
	// client syncs in full once); ImportChangeLog copies the log too. ErrInvalid for token 0 or a token below
	// the collection's current one (a token is never issued twice);
	// ErrNotFound for a missing collection. Subscribers of the feed see
	// ChangeCollection.
	ImportSyncToken(ctx context.Context, collectionID int64, token uint64) error
	// ImportTombstones records that the mailbox's UIDs in ts were
	// expunged, each at its MODSEQ, as the copied mailbox recorded them,
	// so that a QRESYNC client whose MODSEQ is older learns of them in
	// VANISHED (EARLIER) (RFC 7162 §3.2.5.1, §3.2.10), and that the UIDs
	// are never given out again (RFC 9051 §2.3.1.1). The mailbox's
	// UIDNEXT and HIGHESTMODSEQ are raised past them if needed. A
	// tombstone the mailbox has already is left alone (a resumed copy);
	// one for a UID the mailbox holds a message under is ErrExists, with
	// nothing written. ErrInvalid for a zero UID or MODSEQ; ErrNoMailbox
	// or ErrNotFound for a missing mailbox or account. Subscribers of the
	// feed see nothing: no client of the target has seen these UIDs.
	ImportTombstones(ctx context.Context, account, mailbox string, ts []Tombstone) error
	// ImportChangeLog makes the collection's sync token log.SyncToken and
	// its change log log.Changes, reaching back to log.Pruned, as the
	// copied collection had them, so that a CalDAV or CardDAV client that
	// synced with any token the source still answered gets the same
	// changes from the target (RFC 6578 §3.2), and from the last one
	// none. What the log held is replaced. ErrInvalid for a token 0, a
	// token below the collection's current one, a Pruned past the token,
	// or changes not strictly ascending within (Pruned, SyncToken];
	// ErrNotFound for a missing collection. Subscribers of the feed see
	// ChangeCollection.
	ImportChangeLog(ctx context.Context, collectionID int64, log ChangeLog) error
}

// Tombstone is an expunged UID of a mailbox and the MODSEQ of its
// expunge (RFC 7162 §3.2.10: what VANISHED reports).
type Tombstone struct {
	UID    uint32
	ModSeq uint64
}

// LoggedChange is one entry of a collection's change log with the sync
// token its change produced.
type LoggedChange struct {
	Token uint64
	ObjectChange
}

// ChangeLog is a collection's sync state: its current token, the token
// its log reaches back to (ChangesSince of an older one is
// ErrSyncTokenInvalid) and the log's entries, ascending by token.
type ChangeLog struct {
	SyncToken uint64
	Pruned    uint64
	Changes   []LoggedChange
}

// Exporter is an optional interface of a backend: it reads the sync
// state that [Importer] writes and the rest of [Store] does not show
// whole: a mailbox's expunge tombstones with their MODSEQs and a
// collection's change log with its tokens. mailserver store copy reads
// them from the source and compares them with the target's.
// store/sqlite, store/postgres and store/memstore implement it.
type Exporter interface {
	// Tombstones returns the mailbox's expunge tombstones by UID.
	// ErrNoMailbox for a missing mailbox.
	Tombstones(ctx context.Context, account, mailbox string) ([]Tombstone, error)
	// ChangeLog returns the collection's sync token and change log.
	// ErrNotFound for a missing collection.
	ChangeLog(ctx context.Context, collectionID int64) (ChangeLog, error)
}

// CheckImportTombstones validates the arguments of
// [Importer.ImportTombstones] and returns the mailbox name in canonical
// form. Errors wrap ErrInvalid.
func CheckImportTombstones(mailbox string, ts []Tombstone) (string, error) {
	name, err := CleanMailboxName(mailbox)
	if err != nil {
		return "", err
	}
	for _, t := range ts {
		if t.UID == 0 || t.UID == math.MaxUint32 || t.ModSeq == 0 || t.ModSeq > math.MaxInt64 {
			return "", fmt.Errorf("%w: import of a tombstone for UID %d with MODSEQ %d", ErrInvalid, t.UID, t.ModSeq)
		}
	}
	return name, nil
}

// CheckChangeLog validates the argument of [Importer.ImportChangeLog].
// Errors wrap ErrInvalid.
func CheckChangeLog(log ChangeLog) error {
	if log.SyncToken == 0 || log.SyncToken > math.MaxInt64 || log.Pruned > log.SyncToken {
		return fmt.Errorf("%w: import of sync token %d with a log from %d", ErrInvalid, log.SyncToken, log.Pruned)
	}
	prev := log.Pruned
	for _, c := range log.Changes {
		if c.Token <= prev || c.Token > log.SyncToken || c.Name == "" {
			return fmt.Errorf("%w: import of change %d (%q) in a log (%d, %d]", ErrInvalid, c.Token, c.Name, log.Pruned, log.SyncToken)
		}
		prev = c.Token
	}
	return nil
}

// CheckImportMailbox validates the arguments of
// [Importer.ImportMailbox] and returns the mailbox name in canonical
// form. Errors wrap ErrInvalid.
func CheckImportMailbox(mb Mailbox) (string, error) {
	name, err := CleanMailboxName(mb.Name)
	if err != nil {
		return "", err
	}
	if err := CheckSpecialUse(mb.SpecialUse); err != nil {
		return "", err
	}
	if mb.UIDValidity == 0 {
		return "", fmt.Errorf("%w: import of mailbox %q with UIDVALIDITY 0", ErrInvalid, name)
	}
	return name, nil
}

// CheckImportMessage validates the arguments of
// [Importer.ImportMessage] and returns the mailbox name and the flags in
// canonical form. Errors wrap ErrInvalid.
func CheckImportMessage(mailbox string, m Message) (string, []string, error) {
	name, err := CleanMailboxName(mailbox)
	if err != nil {
		return "", nil, err
	}
	flags, err := NormalizeFlags(m.Flags)
	if err != nil {
		return "", nil, err
	}
	// UIDNEXT must stay a valid nz-number (RFC 9051 §2.3.1.1).
	if m.UID == 0 || m.UID == math.MaxUint32 || m.ModSeq == 0 {
		return "", nil, fmt.Errorf("%w: import of UID %d with MODSEQ %d", ErrInvalid, m.UID, m.ModSeq)
	}
	return name, flags, nil
}
