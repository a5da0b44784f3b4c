package ewstest

import (
	"strconv"
	"time"
)

// Limits of pull subscriptions.
const (
	maxSubsPerMailbox = 100
	maxQueuedEvents   = 5000
	maxEventsPerCall  = 50
)

// subscription is a pull subscription ([MS-OXWSNTIF] §3.1.4.3 Subscribe,
// §3.1.4.1 GetEvents): the events of its folders (or all), queued until the
// client acknowledges them by passing a later watermark.
type subscription struct {
	id       string
	mb       *mailbox
	all      bool
	folders  map[*folder]bool
	types    map[string]bool
	timeout  time.Duration
	lastPoll time.Time
	seq      uint64
	queue    []event
	overflow bool
	// streaming: a StreamingSubscriptionRequest's, read only by
	// GetStreamingEvents.
	streaming bool
}

type event struct {
	wm   uint64
	node *node // the event element without its Watermark
}

func watermark(sub *subscription, n uint64) string {
	return encodeID("W", sub.id, strconv.FormatUint(n, 10))
}

// subscribe implements Subscribe with PullSubscriptionRequest or
// StreamingSubscriptionRequest ([MS-OXWSNTIF] §3.1.4.3). Push requests
// are refused.
func (s *Server) subscribe(req *request) (*node, *ewsError) {
	fail := func(err *ewsError) (*node, *ewsError) {
		return operationResponse("Subscribe", responseMessage("Subscribe", err)), nil
	}
	pr := req.op.child("PullSubscriptionRequest")
	streaming := false
	if pr == nil {
		if pr = req.op.child("StreamingSubscriptionRequest"); pr == nil {
			return fail(errf("ErrorInvalidRequest", "Only pull and streaming subscriptions are supported by this server."))
		}
		streaming = true
	}
	sub := &subscription{folders: map[*folder]bool{}, types: map[string]bool{}, all: pr.get("SubscribeToAllFolders") == "true",
		lastPoll: req.now, streaming: streaming}
	var mb *mailbox
	for _, ref := range pr.child("FolderIds").kids() {
		m, f, err := s.resolveFolder(req, ref)
		if err != nil {
			return fail(err)
		}
		mb = m
		sub.folders[f] = true
	}
	if mb == nil {
		m, err := s.mailboxFor(req, "")
		if err != nil {
			return fail(err)
		}
		mb = m
	}
	for _, t := range pr.child("EventTypes").kids() {
		sub.types[t.Text] = true
	}
	if len(sub.types) == 0 {
		return fail(errf("ErrorInvalidRequest", "EventTypes is required."))
	}
	if streaming {
		// A streaming subscription lives 30 minutes after its last
		// connection ([MS-OXWSNTIF] §3.1.4.2).
		sub.timeout = 30 * time.Minute
	} else {
		minutes, err := atoiPositive(pr.text("Timeout"))
		if err != nil || minutes > 1440 {
			return fail(errf("ErrorInvalidSubscriptionRequest", "Timeout must be 1 to 1440 minutes."))
		}
		sub.timeout = time.Duration(minutes) * time.Minute
	}
	if len(mb.subs) >= maxSubsPerMailbox {
		return fail(errf("ErrorExceededSubscriptionCount", "You have exceeded the available subscriptions for your account."))
	}
	sub.mb = mb
	sub.id = s.newID(mb, "S")
	mb.subs[sub.id] = sub
	s.subs[sub.id] = sub
	kids := []*node{{Space: nsMessages, Local: "SubscriptionId", Text: sub.id}}
	if !streaming {
		kids = append(kids, &node{Space: nsMessages, Local: "Watermark", Text: watermark(sub, 0)})
	}
	return operationResponse("Subscribe", responseMessage("Subscribe", nil, kids...)), nil
}

// findSub returns a live subscription the caller may read.
func (s *Server) findSub(req *request, id string, now time.Time) (*subscription, *ewsError) {
	sub := s.subs[id]
	if sub == nil {
		return nil, errf("ErrorSubscriptionNotFound", "The specified subscription was not found.")
	}
	if _, err := s.mailboxFor(req, sub.mb.smtp); err != nil {
		return nil, errf("ErrorSubscriptionAccessDenied", "A subscription can only be used by the account that created it.")
	}
	if now.Sub(sub.lastPoll) > sub.timeout {
		s.dropSub(sub)
		return nil, errf("ErrorExpiredSubscription", "The subscription has expired.")
	}
	return sub, nil
}

func (s *Server) dropSub(sub *subscription) {
	delete(s.subs, sub.id)
	delete(sub.mb.subs, sub.id)
}

// getEvents implements GetEvents ([MS-OXWSNTIF] §3.1.4.1): events after
// the watermark (those at or before it are acknowledged and dropped), or
// a StatusEvent when there are none.
func (s *Server) getEvents(req *request) (*node, *ewsError) {
	fail := func(err *ewsError) (*node, *ewsError) {
		return operationResponse("GetEvents", responseMessage("GetEvents", err)), nil
	}
	sub, err := s.findSub(req, req.op.text("SubscriptionId"), req.now)
	if err != nil {
		return fail(err)
	}
	if sub.streaming {
		return fail(errf("ErrorInvalidPullSubscriptionId", "The subscription is a streaming subscription: use GetStreamingEvents."))
	}
	prev := req.op.text("Watermark")
	p := decodeID(prev)
	if len(p) != 3 || p[0] != "W" || p[1] != sub.id {
		return fail(errf("ErrorInvalidWatermark", "The watermark used for creating this subscription was not recognized."))
	}
	ack, perr := strconv.ParseUint(p[2], 10, 64)
	if perr != nil || ack > sub.seq {
		return fail(errf("ErrorInvalidWatermark", "The watermark used for creating this subscription was not recognized."))
	}
	sub.lastPoll = req.now
	if sub.overflow {
		s.dropSub(sub)
		return fail(errf("ErrorMissedNotificationEvents", "Events were dropped: more than %d were not fetched.", maxQueuedEvents))
	}
	i := 0
	for i < len(sub.queue) && sub.queue[i].wm <= ack {
		i++
	}
	sub.queue = sub.queue[i:]
	n := min(len(sub.queue), maxEventsPerCall)
	notif := mel("Notification", tel("SubscriptionId", sub.id), tel("PreviousWatermark", prev),
		tel("MoreEvents", boolText(len(sub.queue) > n)))
	notif.Kids = append(notif.Kids, renderEvents(sub, sub.queue[:n])...)
	if n == 0 {
		notif.Kids = append(notif.Kids, el("StatusEvent", tel("Watermark", watermark(sub, sub.seq))))
	}
	return operationResponse("GetEvents", responseMessage("GetEvents", nil, notif)), nil
}

// renderEvents are the event elements of a Notification, each with its
// Watermark.
func renderEvents(sub *subscription, events []event) []*node {
	var out []*node
	for _, e := range events {
		ev := &node{Space: nsTypes, Local: e.node.Local, Attr: e.node.Attr}
		ev.Kids = append([]*node{tel("Watermark", watermark(sub, e.wm))}, e.node.Kids...)
		out = append(out, ev)
	}
	return out
}

// unsubscribe implements Unsubscribe ([MS-OXWSNTIF] §3.1.4.4).
func (s *Server) unsubscribe(req *request) (*node, *ewsError) {
	sub, err := s.findSub(req, req.op.text("SubscriptionId"), req.now)
	if err == nil {
		s.dropSub(sub)
	}
	return operationResponse("Unsubscribe", responseMessage("Unsubscribe", err)), nil
}

// emit queues an event on every subscription of mb that wants it.
func (s *Server) emit(mb *mailbox, kind string, where, oldWhere *folder, body func() []*node) {
	now := ewsTime(s.opts.Now())
	for _, sub := range mb.subs {
		if !sub.types[kind] || !(sub.all || sub.folders[where] || (oldWhere != nil && sub.folders[oldWhere])) {
			continue
		}
		if len(sub.queue) >= maxQueuedEvents {
			sub.overflow = true
			continue
		}
		sub.seq++
		sub.queue = append(sub.queue, event{wm: sub.seq, node: el(kind, append([]*node{tel("TimeStamp", now)}, body()...)...)})
		if sub.streaming {
			close(s.wake)
			s.wake = make(chan struct{})
		}
	}
}

func (s *Server) emitItem(mb *mailbox, kind string, it *item) {
	s.emit(mb, kind, it.folder, nil, func() []*node {
		return []*node{itemIDNode("ItemId", it), folderIDNode("ParentFolderId", it.folder)}
	})
}

func (s *Server) emitFolder(mb *mailbox, kind string, f *folder) {
	if f.parent == nil {
		return
	}
	s.emit(mb, kind, f.parent, nil, func() []*node {
		return []*node{folderIDNode("FolderId", f), folderIDNode("ParentFolderId", f.parent)}
	})
}
