package imapserver

// mailyard: this file is ours, not upstream's: the NOTIFY command (RFC
// 5465) and the hooks that let a session write notifications while the
// connection waits for the client's next command.

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// NotifyEvent is an event name of RFC 5465 §5 (and RFC 5423 §4), as the
// client spelled it when the server does not know it.
type NotifyEvent string

// The events of RFC 5465 §5.
const (
	NotifyMessageNew            NotifyEvent = "MessageNew"
	NotifyMessageExpunge        NotifyEvent = "MessageExpunge"
	NotifyFlagChange            NotifyEvent = "FlagChange"
	NotifyAnnotationChange      NotifyEvent = "AnnotationChange"
	NotifyMailboxName           NotifyEvent = "MailboxName"
	NotifySubscriptionChange    NotifyEvent = "SubscriptionChange"
	NotifyMailboxMetadataChange NotifyEvent = "MailboxMetadataChange"
	NotifyServerMetadataChange  NotifyEvent = "ServerMetadataChange"
)

// notifyEvents are the events RFC 5465 names, for matching the client's
// spelling case-insensitively (§8).
var notifyEvents = []NotifyEvent{
	NotifyMessageNew, NotifyMessageExpunge, NotifyFlagChange, NotifyAnnotationChange,
	NotifyMailboxName, NotifySubscriptionChange, NotifyMailboxMetadataChange, NotifyServerMetadataChange,
}

// messageEvent reports whether e is a message-event (RFC 5465 §8).
func (e NotifyEvent) messageEvent() bool {
	switch e {
	case NotifyMessageNew, NotifyMessageExpunge, NotifyFlagChange, NotifyAnnotationChange:
		return true
	}
	return false
}

// NotifyFilter is a filter-mailboxes of RFC 5465 §6.
type NotifyFilter int

// The mailbox filters (RFC 5465 §6.1 to §6.6).
const (
	NotifySelected NotifyFilter = iota
	NotifySelectedDelayed
	NotifyInboxes
	NotifyPersonal
	NotifySubscribed
	NotifySubtree
	NotifyMailboxes
)

var notifyFilters = map[string]NotifyFilter{
	"SELECTED": NotifySelected, "SELECTED-DELAYED": NotifySelectedDelayed,
	"INBOXES": NotifyInboxes, "PERSONAL": NotifyPersonal, "SUBSCRIBED": NotifySubscribed,
	"SUBTREE": NotifySubtree, "MAILBOXES": NotifyMailboxes,
}

// Selected reports whether f is about the selected mailbox (RFC 5465
// §6.1).
func (f NotifyFilter) Selected() bool { return f == NotifySelected || f == NotifySelectedDelayed }

// NotifyGroup is one event-group of NOTIFY SET (RFC 5465 §8).
type NotifyGroup struct {
	Filter NotifyFilter
	// Mailboxes are the names of "subtree" and "mailboxes", decoded.
	Mailboxes []string
	// Events is nil for NONE.
	Events []NotifyEvent
	// Fetch holds MessageNew's fetch attributes (selected filters only),
	// nil without them.
	Fetch *imap.FetchOptions
}

// NotifyOptions is NOTIFY SET (RFC 5465 §3.1).
type NotifyOptions struct {
	// Status is the STATUS indicator: STATUS responses for the watched
	// mailboxes before the tagged OK.
	Status bool
	Groups []NotifyGroup
}

// SessionNotify is a session that supports NOTIFY (RFC 5465).
type SessionNotify interface {
	Session

	// Notify replaces the session's notifications (NOTIFY SET), or ends
	// them (NOTIFY NONE: options is nil). The connection has checked the
	// syntax and the rules of RFC 5465 §5 and §6.1 on the events of each
	// group; unsupported events are the session's to refuse (NO
	// [BADEVENT ...]). The STATUS responses of options.Status go to w.
	Notify(w *UpdateWriter, options *NotifyOptions) error
	// WaitStart is called whenever the connection starts waiting for the
	// client's next command (not in IDLE: IdleStart is). Until WaitStop
	// the session may write notifications to w from any goroutine, one
	// at a time. WaitStop is called once the client has sent something
	// (or the connection failed) and returns when nothing writes to w any
	// more; its error ends the connection.
	WaitStart(w *UpdateWriter)
	WaitStop() error
}

// notifySession returns the session as a SessionNotify when NOTIFY is
// announced to it, else nil.
func (c *Conn) notifySession() SessionNotify {
	ns, ok := c.session.(SessionNotify)
	if !ok || !c.server.options.caps().Has(imap.CapNotify) {
		return nil
	}
	return ns
}

// handleNotify reads a NOTIFY command (RFC 5465 §8):
//
//	notify           = "NOTIFY" SP (notify-set / notify-none)
//	notify-none      = "NONE"
//	notify-set       = "SET" [status-indicator] SP event-groups
//	status-indicator = SP "STATUS"
//	event-groups     = event-group *(SP event-group)
func (c *Conn) handleNotify(dec *imapwire.Decoder) error {
	ns := c.notifySession()
	if ns == nil {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown command"}
	}
	var verb string
	if !dec.ExpectSP() || !dec.ExpectAtom(&verb) {
		return dec.Err()
	}
	var options *NotifyOptions
	var fetchOpts fetchWriterOptions
	switch strings.ToUpper(verb) {
	case "NONE":
	case "SET":
		options = &NotifyOptions{}
		if !dec.ExpectSP() {
			return dec.Err()
		}
		var word string
		if dec.Atom(&word) {
			if !strings.EqualFold(word, "STATUS") || !dec.ExpectSP() {
				return newClientBugError("Expected STATUS or an event group")
			}
			options.Status = true
		}
		for {
			g, err := c.readEventGroup(dec, &fetchOpts)
			if err != nil {
				return err
			}
			options.Groups = append(options.Groups, g)
			if !dec.SP() {
				break
			}
		}
	default:
		return newClientBugError("Expected NOTIFY SET or NOTIFY NONE")
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	if options != nil {
		if err := checkNotifyGroups(options.Groups); err != nil {
			return err
		}
	}
	// The attributes' writer options stay with the connection as long
	// as the NOTIFY does (UpdateWriter.NotifyFetchWriter).
	if err := ns.Notify(&UpdateWriter{conn: c, allowExpunge: true}, options); err != nil {
		return err
	}
	c.notifyFetch = fetchOpts
	return nil
}

// readEventGroup reads one event-group (RFC 5465 §8):
//
//	event-group         = "(" filter-mailboxes SP events ")"
//	filter-mailboxes    = "selected" / "selected-delayed" / "inboxes" /
//	                      "personal" / "subscribed" /
//	                      ("subtree" SP one-or-more-mailbox) /
//	                      ("mailboxes" SP one-or-more-mailbox)
//	one-or-more-mailbox = mailbox / "(" [mailbox *(SP mailbox)] ")"
//	events              = ("(" event *(SP event) ")") / "NONE"
func (c *Conn) readEventGroup(dec *imapwire.Decoder, fetchOpts *fetchWriterOptions) (NotifyGroup, error) {
	var g NotifyGroup
	var filter string
	if !dec.ExpectSpecial('(') || !dec.ExpectAtom(&filter) || !dec.ExpectSP() {
		return g, dec.Err()
	}
	f, ok := notifyFilters[strings.ToUpper(filter)]
	if !ok {
		return g, newClientBugError("Unknown NOTIFY mailbox filter " + printableAtom(filter))
	}
	g.Filter = f
	if f == NotifySubtree || f == NotifyMailboxes {
		isList, err := dec.List(func() error {
			var name string
			if !dec.ExpectMailbox(&name) {
				return dec.Err()
			}
			g.Mailboxes = append(g.Mailboxes, name)
			return nil
		})
		if err != nil {
			return g, err
		}
		if !isList {
			var name string
			if !dec.ExpectMailbox(&name) {
				return g, dec.Err()
			}
			g.Mailboxes = append(g.Mailboxes, name)
		}
		if len(g.Mailboxes) == 0 {
			return g, newClientBugError("NOTIFY " + filter + " needs at least one mailbox")
		}
		if !dec.ExpectSP() {
			return g, dec.Err()
		}
	}
	var none string
	if dec.Atom(&none) {
		if !strings.EqualFold(none, "NONE") {
			return g, newClientBugError("Expected NONE or a list of events")
		}
	} else {
		err := dec.ExpectList(func() error {
			e, err := c.readEvent(dec, &g, fetchOpts)
			if err != nil {
				return err
			}
			g.Events = append(g.Events, e)
			return nil
		})
		if err != nil {
			return g, err
		}
		if len(g.Events) == 0 {
			return g, newClientBugError("Empty NOTIFY event list")
		}
	}
	if !dec.ExpectSpecial(')') {
		return g, dec.Err()
	}
	return g, nil
}

// readEvent reads one event (RFC 5465 §8):
//
//	event         = message-event / mailbox-event / user-event / event-ext
//	message-event = ("MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"]) /
//	                "MessageExpunge" / "FlagChange" / "AnnotationChange"
//	event-ext     = atom
//
// An event the server does not know is returned as spelled: it is the
// session's to refuse with BADEVENT (a NO, §3.1, not a BAD).
func (c *Conn) readEvent(dec *imapwire.Decoder, g *NotifyGroup, fetchOpts *fetchWriterOptions) (NotifyEvent, error) {
	var name string
	if !dec.ExpectAtom(&name) {
		return "", dec.Err()
	}
	e := NotifyEvent(name)
	for _, known := range notifyEvents {
		if strings.EqualFold(name, string(known)) {
			e = known
		}
	}
	if e != NotifyMessageNew || !dec.SPList() {
		return e, nil
	}
	// RFC 5465 §5.2: the attributes of the FETCH sent with each new
	// message of the selected mailbox; only with a selected filter.
	if !g.Filter.Selected() {
		return "", newClientBugError("MessageNew fetch attributes are only allowed with SELECTED or SELECTED-DELAYED")
	}
	opts, wo, err := c.readFetchAttList(dec)
	if err != nil {
		return "", err
	}
	g.Fetch, *fetchOpts = opts, wo
	return e, nil
}

// readFetchAttList reads "(" fetch-att *(SP fetch-att) ")", the
// attributes of NOTIFY's MessageNew (RFC 5465 §5.2) and of UPDATE
// (§7). UID is always among them.
func (c *Conn) readFetchAttList(dec *imapwire.Decoder) (*imap.FetchOptions, fetchWriterOptions, error) {
	opts := &imap.FetchOptions{UID: true}
	wo := fetchWriterOptions{obsolete: make(map[*imap.FetchItemBodySection]string)}
	n := 0
	err := dec.ExpectList(func() error {
		n++
		att, err := readFetchAttName(dec)
		if err != nil {
			return err
		}
		switch att {
		case "ALL", "FAST", "FULL":
			return newClientBugError("FETCH macros are not allowed in a list")
		}
		if ok, err := c.handleFetchExtra(dec, att, &wo); ok {
			return err
		}
		return handleFetchAtt(dec, att, opts, &wo)
	})
	if err != nil {
		return nil, wo, err
	}
	if n == 0 {
		return nil, wo, newClientBugError("Empty fetch attribute list")
	}
	return opts, wo, nil
}

// UpdateFetch is the fetch attributes of a SEARCH or SORT UPDATE return
// option (RFC 5465 §7): the FETCH sent for each new message that joins
// the context's result, before its ADDTO.
type UpdateFetch struct {
	Options *imap.FetchOptions
	writer  fetchWriterOptions
}

// FetchWriter returns the writer of the FETCH responses of u on the
// connection of w.
func (u *UpdateFetch) FetchWriter(w *UpdateWriter) *FetchWriter {
	return &FetchWriter{conn: w.conn, options: u.writer}
}

// checkNotifyGroups applies the rules whose breach is BAD (RFC 5465):
// one selected filter at most (§6.1), only message events with it
// (§6.1), MessageNew and MessageExpunge together, and FlagChange or
// AnnotationChange only with both (§5).
func checkNotifyGroups(groups []NotifyGroup) error {
	selected := 0
	for _, g := range groups {
		has := make(map[NotifyEvent]bool, len(g.Events))
		for _, e := range g.Events {
			has[e] = true
			if g.Filter.Selected() && !e.messageEvent() {
				return newClientBugError("Only message events are allowed with SELECTED or SELECTED-DELAYED")
			}
		}
		if g.Filter.Selected() {
			selected++
		}
		if has[NotifyMessageNew] != has[NotifyMessageExpunge] {
			return newClientBugError("MessageNew and MessageExpunge must be given together")
		}
		if (has[NotifyFlagChange] || has[NotifyAnnotationChange]) && !has[NotifyMessageNew] {
			return newClientBugError("FlagChange and AnnotationChange need MessageNew and MessageExpunge")
		}
	}
	if selected > 1 {
		return newClientBugError("Only one of SELECTED and SELECTED-DELAYED may be given")
	}
	return nil
}

// printableAtom caps an atom from the client for a response text.
func printableAtom(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// NotifyFetchWriter returns a FetchWriter for the FETCH responses that
// go with MessageNew's attributes (RFC 5465 §5.2).
func (w *UpdateWriter) NotifyFetchWriter() *FetchWriter {
	return &FetchWriter{conn: w.conn, options: w.conn.notifyFetch}
}

// WriteStatus writes an unsolicited STATUS response with the items
// options asks for (RFC 5465 §5.2, §5.3).
func (w *UpdateWriter) WriteStatus(data *imap.StatusData, options *imap.StatusOptions) error {
	if err := checkStatusData(data, options); err != nil {
		return err
	}
	return w.conn.writeStatus(data, options, nil)
}

// WriteList writes an unsolicited LIST response, with OLDNAME when
// data.OldName is set (RFC 5465 §5.4, §5.5).
func (w *UpdateWriter) WriteList(data *imap.ListData) error {
	return w.conn.writeList(data)
}

// WriteMetadataChanged writes an unsolicited METADATA response naming
// the entries that changed (RFC 5464 §4.4.2):
//
//	metadata-resp = "METADATA" SP mailbox SP entry-list
func (w *UpdateWriter) WriteMetadataChanged(mailbox string, names []string) error {
	enc := newResponseEncoder(w.conn)
	defer enc.end()
	enc.Atom("*").SP().Atom("METADATA").SP().Mailbox(mailbox).SP()
	enc.List(len(names), func(i int) {
		if isAtom(names[i]) {
			enc.Atom(names[i])
		} else {
			enc.String(names[i])
		}
	})
	return enc.CRLF()
}

// WriteOK writes an untagged OK with a response code, such as the
// NOTIFICATIONOVERFLOW of RFC 5465 §5.8.
func (w *UpdateWriter) WriteOK(code imap.ResponseCode, text string) error {
	return w.conn.writeStatusResp("", &imap.StatusResponse{Type: imap.StatusResponseTypeOK, Code: code, Text: text})
}

// waitStart lets a session with NOTIFY write while the connection waits
// for the client (RFC 5465 §1: the client listens for notifications
// "all the time (even when no command is in progress)").
func (c *Conn) waitStart() SessionNotify {
	if c.idleTag != "" || (c.state != imap.ConnStateAuthenticated && c.state != imap.ConnStateSelected) {
		return nil
	}
	ns := c.notifySession()
	if ns != nil {
		c.waitW = UpdateWriter{conn: c, allowExpunge: true}
		ns.WaitStart(&c.waitW)
	}
	return ns
}
