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
// (RFC 9051 §2.3.1.1, RFC 7162 §3.1), and with the collections' sync
// tokens, so that CalDAV and CardDAV clients need none either. It is not part of [Store]: only a
// copy into a store that no client uses yet needs it. store/postgres and
// store/memstore implement it; find it by type assertion.
//
// Both calls are idempotent for a resumed copy: ImportMailbox again with
// the same values changes nothing, and ImportMessage of a UID already
// there is ErrExists with nothing written.
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
	// m.ModSeq, m.Flags and m.InternalDate (its zone kept); the mailbox's
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
	// client syncs in full once). ErrInvalid for token 0 or a token below
	// the collection's current one (a token is never issued twice);
	// ErrNotFound for a missing collection. Subscribers of the feed see
	// ChangeCollection.
	ImportSyncToken(ctx context.Context, collectionID int64, token uint64) error
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
