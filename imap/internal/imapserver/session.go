package imapserver

import (
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

var errAuthFailed = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeAuthenticationFailed,
	Text: "Authentication failed",
}

// ErrAuthFailed is returned by Session.Login on authentication failure.
var ErrAuthFailed = errAuthFailed

// GreetingData is the data associated with an IMAP greeting.
type GreetingData struct {
	PreAuth bool
}

// NumKind describes how a number should be interpreted: either as a sequence
// number, either as a UID.
type NumKind int

const (
	NumKindSeq = NumKind(imapwire.NumKindSeq)
	NumKindUID = NumKind(imapwire.NumKindUID)
)

// String implements fmt.Stringer.
func (kind NumKind) String() string {
	switch kind {
	case NumKindSeq:
		return "seq"
	case NumKindUID:
		return "uid"
	default:
		return fmt.Sprintf("NumKind(%d)", kind) // mailyard: upstream panicked
	}
}

func (kind NumKind) wire() imapwire.NumKind {
	return imapwire.NumKind(kind)
}

// errNoData is the internal error (NO [SERVERBUG]) of a command whose
// session method returned neither data nor an error.
//
// mailyard: added.
func errNoData(cmd string) error {
	return fmt.Errorf("imapserver: session returned no %s data and no error", cmd)
}

// Session is an IMAP session.
type Session interface {
	Close() error

	// Not authenticated state
	Login(username, password string) error

	// Authenticated state
	Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error)
	Create(mailbox string, options *imap.CreateOptions) error
	Delete(mailbox string) error
	Rename(mailbox, newName string, options *imap.RenameOptions) error
	Subscribe(mailbox string) error
	Unsubscribe(mailbox string) error
	List(w *ListWriter, ref string, patterns []string, options *imap.ListOptions) error
	Status(mailbox string, options *imap.StatusOptions) (*imap.StatusData, error)
	Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error)
	Poll(w *UpdateWriter, allowExpunge bool) error
	// mailyard: IDLE (RFC 2177) without a goroutine per idling client.
	// IdleStart is called once the continuation request is written; from
	// then on the session may write updates to w from any goroutine, one
	// at a time, until IdleStop, which is called when the client ends the
	// IDLE (or the connection fails) and must return only when nothing
	// writes to w any more. An error from IdleStart ends the IDLE command
	// at once; one from IdleStop is the command's result.
	IdleStart(w *UpdateWriter) error
	IdleStop() error

	// Selected state
	Unselect() error
	Expunge(w *ExpungeWriter, uids *imap.UIDSet) error
	Search(kind NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error)
	Fetch(w *FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error
	Store(w *FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error
	Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error)
}

// SessionNamespace is an IMAP session which supports NAMESPACE.
type SessionNamespace interface {
	Session

	// Authenticated state
	Namespace() (*imap.NamespaceData, error)
}

// SessionMove is an IMAP session which supports MOVE.
type SessionMove interface {
	Session

	// Selected state
	Move(w *MoveWriter, numSet imap.NumSet, dest string) error
}

// SessionIMAP4rev2 is an IMAP session which supports IMAP4rev2.
type SessionIMAP4rev2 interface {
	Session
	SessionNamespace
	SessionMove
}

// SessionSASL is an IMAP session which supports its own set of SASL
// authentication mechanisms.
type SessionSASL interface {
	Session
	AuthenticateMechanisms() []string
	Authenticate(mech string) (sasl.Server, error)
}

// SessionUnauthenticate is an IMAP session which supports UNAUTHENTICATE.
type SessionUnauthenticate interface {
	Session

	// Authenticated state
	Unauthenticate() error
}

// SessionAppendLimit is an IMAP session which has the same APPEND limit for
// all mailboxes.
type SessionAppendLimit interface {
	Session

	// AppendLimit returns the maximum size in bytes that can be uploaded to
	// this server in an APPEND command.
	AppendLimit() uint32
}

// mailyard: CONDSTORE and QRESYNC (RFC 7162).

// SessionCondStore is an IMAP session which supports CONDSTORE and
// QRESYNC (RFC 7162). The connection parses the extension's parameters
// into imap.SelectOptions, imap.FetchOptions (ModSeq, ChangedSince),
// imap.StoreOptions (UnchangedSince, see UnchangedSinceZero) and
// imap.SearchCriteria (ModSeq), and tracks which are enabled
// (Conn.Enabled); the session writes MODSEQ items and VANISHED responses
// through the writers it is given.
type SessionCondStore interface {
	Session

	// HighestModSeq returns the HIGHESTMODSEQ of the selected mailbox as
	// far as the client has been told about its changes.
	HighestModSeq() uint64
	// QResync is called for SELECT/EXAMINE with the QRESYNC parameter
	// when the UIDVALIDITY the client gave is the mailbox's, after the
	// mailbox's data and HIGHESTMODSEQ are written: it writes VANISHED
	// (EARLIER) for messages expunged since params.ModSeq, then FETCH
	// (UID FLAGS MODSEQ) for messages changed since (RFC 7162 §3.2.5.1).
	QResync(w *UpdateWriter, params *QResyncParams) error
}

// QResyncParams is the QRESYNC parameter of SELECT/EXAMINE (RFC 7162
// §3.2.5).
type QResyncParams struct {
	UIDValidity uint32
	ModSeq      uint64
	// KnownUIDs restricts what is reported; nil means every message.
	KnownUIDs imap.UIDSet
	// SeqMatchSeqs and SeqMatchUIDs are the seq-match-data (RFC 7162
	// §3.2.5.2): the client's message sequence numbers and the UIDs it
	// believes they have, pairwise, ascending. Both nil if not given;
	// otherwise they hold the same number of messages and no "*".
	SeqMatchSeqs imap.SeqSet
	SeqMatchUIDs imap.UIDSet
}

// UnchangedSinceZero is the imap.StoreOptions.UnchangedSince given for
// "UNCHANGEDSINCE 0", which fails for every message (RFC 7162 §3.1.3);
// zero there means that the modifier was not given. It is not a valid
// mod-sequence (those have 63 bits).
const UnchangedSinceZero = ^uint64(0)
