package ewstest

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// account is a login the server authenticates.
type account struct {
	Login, Password, SMTP string
	// Impersonate is the ApplicationImpersonation right: the account may
	// act for any mailbox through the ExchangeImpersonation header.
	Impersonate bool
	// Delegates are the mailboxes (SMTP addresses) the account may open
	// without impersonation (delegate access, full access permission).
	Delegates []string
	Throttle  *ThrottlePolicy
}

// mailbox holds one user's folders and items and the change counter the
// sync states and notification watermarks are made of.
type mailbox struct {
	smtp    string
	folders []*folder // in creation order
	byID    map[string]*folder
	byDist  map[string]*folder
	items   map[string]*item
	cn      uint64 // last change number
	tombs   []tomb // deleted items and folders, for sync
	subs    map[string]*subscription
	atts    map[string]*attachment // by AttachmentId
}

// folder is a mail, calendar, contacts or tasks folder.
type folder struct {
	id, name, class, dist string
	parent                *folder
	created, changed      uint64 // change numbers
	ck                    uint64 // change key counter
}

// item is a message, calendar item, contact or task: its properties as
// the element tree the client sent, plus what the server computes.
type item struct {
	id               string
	seq              uint64 // creation order
	ck               uint64
	folder           *folder
	props            *node // e.g. t:CalendarItem
	created, changed uint64
	// readOnly marks a last change that only touched IsRead (a
	// ReadFlagChange in SyncFolderItems).
	readOnly bool
	// history is the field names each recent change key's successor
	// changed, for AutoResolve conflict checks.
	history []fieldChange
	cal     *calState // calendar items only
	atts    []*attachment
}

type fieldChange struct {
	ck     uint64
	fields []string
}

// tomb records a deletion for SyncFolderItems/SyncFolderHierarchy.
type tomb struct {
	id       string
	parent   *folder
	cn       uint64
	created  uint64
	isFolder bool
}

// Well-known folders and where they live ([MS-OXWSCDATA]
// DistinguishedFolderIdNameType). "root" is the root of the mailbox,
// msgfolderroot the top of the IPM subtree.
var wellKnown = []struct{ dist, parent, name, class string }{
	{"root", "", "", ""},
	{"msgfolderroot", "root", "Top of Information Store", "IPF.Note"},
	{"inbox", "msgfolderroot", "Inbox", "IPF.Note"},
	{"sentitems", "msgfolderroot", "Sent Items", "IPF.Note"},
	{"drafts", "msgfolderroot", "Drafts", "IPF.Note"},
	{"deleteditems", "msgfolderroot", "Deleted Items", "IPF.Note"},
	{"junkemail", "msgfolderroot", "Junk Email", "IPF.Note"},
	{"outbox", "msgfolderroot", "Outbox", "IPF.Note"},
	{"calendar", "msgfolderroot", "Calendar", "IPF.Appointment"},
	{"contacts", "msgfolderroot", "Contacts", "IPF.Contact"},
	{"tasks", "msgfolderroot", "Tasks", "IPF.Task"},
	{"notes", "msgfolderroot", "Notes", "IPF.StickyNote"},
}

func (s *Server) newMailbox(smtp string) *mailbox {
	mb := &mailbox{smtp: smtp, byID: map[string]*folder{}, byDist: map[string]*folder{}, items: map[string]*item{}, subs: map[string]*subscription{},
		atts: map[string]*attachment{}}
	for _, w := range wellKnown {
		f := s.addFolder(mb, mb.byDist[w.parent], w.name, w.class)
		f.dist = w.dist
		mb.byDist[w.dist] = f
	}
	return mb
}

// newID makes an opaque base64 id that names its mailbox, so an id from
// another mailbox is recognised (and refused without a right).
func (s *Server) newID(mb *mailbox, kind string) string {
	s.nextID++
	return encodeID(mb.smtp, kind, strconv.FormatUint(s.nextID, 10))
}

func encodeID(parts ...string) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

func decodeID(id string) []string {
	b, err := base64.StdEncoding.DecodeString(id)
	if err != nil {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

func changeKey(prefix string, ck uint64) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s%d", prefix, ck)))
}

func (s *Server) addFolder(mb *mailbox, parent *folder, name, class string) *folder {
	mb.cn++
	f := &folder{id: s.newID(mb, "F"), name: name, class: class, parent: parent, created: mb.cn, changed: mb.cn, ck: 1}
	mb.folders = append(mb.folders, f)
	mb.byID[f.id] = f
	return f
}

// children returns f's direct subfolders in creation order.
func (mb *mailbox) children(f *folder) []*folder {
	var out []*folder
	for _, c := range mb.folders {
		if c.parent == f {
			out = append(out, c)
		}
	}
	return out
}

// descendants returns every folder below f, depth first.
func (mb *mailbox) descendants(f *folder) []*folder {
	var out []*folder
	for _, c := range mb.children(f) {
		out = append(out, c)
		out = append(out, mb.descendants(c)...)
	}
	return out
}

// under reports whether f is below anc (or is anc).
func under(f, anc *folder) bool {
	for ; f != nil; f = f.parent {
		if f == anc {
			return true
		}
	}
	return false
}

// mailboxFor resolves which mailbox a folder or item reference means:
// the impersonated one, an explicit t:Mailbox, the one an id names, or
// the caller's own; then checks the caller may open it.
func (s *Server) mailboxFor(req *request, smtp string) (*mailbox, *ewsError) {
	if req.mbx != nil {
		if smtp != "" && !strings.EqualFold(smtp, req.mbx.smtp) {
			return nil, errf("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
		}
		return req.mbx, nil
	}
	if smtp == "" {
		smtp = req.auth.SMTP
	}
	mb := s.mailboxes[strings.ToLower(smtp)]
	if mb == nil {
		return nil, errf("ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.")
	}
	if strings.EqualFold(smtp, req.auth.SMTP) {
		return mb, nil
	}
	for _, d := range req.auth.Delegates {
		if strings.EqualFold(d, smtp) {
			return mb, nil
		}
	}
	return nil, errf("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
}

// resolveFolder finds the folder a t:FolderId or t:DistinguishedFolderId
// names ([MS-OXWSCDATA] BaseFolderIdType).
func (s *Server) resolveFolder(req *request, ref *node) (*mailbox, *folder, *ewsError) {
	var owner string
	var find func(mb *mailbox) *folder
	switch ref.Local {
	case "DistinguishedFolderId":
		owner = ref.path("Mailbox").text("EmailAddress")
		find = func(mb *mailbox) *folder { return mb.byDist[ref.get("Id")] }
	case "FolderId":
		parts := decodeID(ref.get("Id"))
		if len(parts) != 3 || parts[1] != "F" {
			return nil, nil, errf("ErrorInvalidIdMalformed", "Id is malformed.")
		}
		owner = parts[0]
		find = func(mb *mailbox) *folder { return mb.byID[ref.get("Id")] }
	default:
		return nil, nil, errf("ErrorInvalidRequest", "The request is invalid: %s is not a folder id.", ref.Local)
	}
	mb, err := s.mailboxFor(req, owner)
	if err != nil {
		return nil, nil, err
	}
	f := find(mb)
	if f == nil {
		return nil, nil, errf("ErrorFolderNotFound", "The specified folder could not be found in the store.")
	}
	return mb, f, nil
}

// resolveItem finds the item a t:ItemId names; occurrence ids resolve to
// their master and an instance index.
func (s *Server) resolveItem(req *request, ref *node) (*mailbox, *item, int, *ewsError) {
	id := ref.get("Id")
	index := 0
	if ref.Local == "OccurrenceItemId" {
		id = ref.get("RecurringMasterId")
		n, err := strconv.Atoi(ref.get("InstanceIndex"))
		if err != nil || n < 1 {
			return nil, nil, 0, errf("ErrorInvalidIdMalformed", "InstanceIndex is invalid.")
		}
		index = n
	}
	parts := decodeID(id)
	if len(parts) == 4 && parts[1] == "O" {
		n, err := strconv.Atoi(parts[3])
		if err != nil {
			return nil, nil, 0, errf("ErrorInvalidIdMalformed", "Id is malformed.")
		}
		index = n
		id = encodeID(parts[0], "I", parts[2])
		parts = []string{parts[0], "I", parts[2]}
	}
	if len(parts) != 3 || parts[1] != "I" {
		return nil, nil, 0, errf("ErrorInvalidIdMalformed", "Id is malformed.")
	}
	mb, err := s.mailboxFor(req, parts[0])
	if err != nil {
		return nil, nil, 0, err
	}
	it := mb.items[id]
	if it == nil {
		return nil, nil, 0, errf("ErrorItemNotFound", "The specified object was not found in the store.")
	}
	if index > 0 {
		if it.cal == nil || it.cal.rule == nil {
			return nil, nil, 0, errf("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange", "Occurrence index is out of recurrence range.")
		}
		if _, ok := it.cal.occurrenceStart(index); !ok {
			return nil, nil, 0, errf("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange", "Occurrence index is out of recurrence range.")
		}
		if it.cal.deleted[index] {
			return nil, nil, 0, errf("ErrorCalendarOccurrenceIsDeletedFromRecurrence", "Occurrence with this index was previously deleted from the recurrence.")
		}
	}
	return mb, it, index, nil
}

func occurrenceID(it *item, index int) string {
	p := decodeID(it.id)
	return encodeID(p[0], "O", p[2], strconv.Itoa(index))
}
