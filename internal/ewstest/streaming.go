package ewstest

import (
	"bytes"
	"net/http"
	"strings"
	"time"
)

// Limits of streaming notifications.
const (
	// maxStreamsPerLogin bounds the GetStreamingEvents connections one
	// account holds open at once.
	maxStreamsPerLogin = 10
	// maxStreamSubs bounds the subscriptions one connection reads.
	maxStreamSubs = 200
)

// streamEvents implements GetStreamingEvents ([MS-OXWSNTIF] §3.1.4.2):
// one HTTP response holding a sequence of SOAP envelopes. The first
// comes at once; each later one carries the events queued since the
// previous one (ConnectionStatus OK), and the last says
// ConnectionStatus Closed when ConnectionTimeout minutes (1 to 30) have
// passed. Events sent are dropped from the queue: streaming has no
// acknowledgement by watermark.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, req *request) {
	const op = "GetStreamingEvents"
	fail := func(e *ewsError) {
		var b bytes.Buffer
		writeXML(&b, operationResponse(op, responseMessage(op, e)))
		s.writeRaw(w, http.StatusOK, req.version, b.Bytes())
	}
	s.mu.Lock()
	if err := s.impersonate(req); err != nil {
		s.mu.Unlock()
		s.writeFault(w, req.version, err, 0)
		return
	}
	minutes, aerr := atoiPositive(req.op.text("ConnectionTimeout"))
	ids := req.op.child("SubscriptionIds").kids()
	var subs []*subscription
	var bad *ewsError
	switch {
	case aerr != nil || minutes > 30:
		bad = errf("ErrorInvalidArgument", "ConnectionTimeout must be 1 to 30 minutes.")
	case len(ids) == 0 || len(ids) > maxStreamSubs:
		bad = errf("ErrorInvalidArgument", "SubscriptionIds must name 1 to %d subscriptions.", maxStreamSubs)
	case s.streams[strings.ToLower(req.auth.Login)] >= maxStreamsPerLogin:
		bad = errf("ErrorExceededConnectionCount", "You have exceeded the maximum number of streaming connections for your account.")
	}
	for _, id := range ids {
		if bad != nil {
			break
		}
		sub, err := s.findSub(req, id.Text, req.now)
		switch {
		case err != nil:
			bad = err
		case !sub.streaming:
			bad = errf("ErrorInvalidSubscription", "The subscription is a pull subscription: use GetEvents.")
		default:
			subs = append(subs, sub)
		}
	}
	if bad != nil {
		s.mu.Unlock()
		fail(bad)
		return
	}
	login := strings.ToLower(req.auth.Login)
	s.streams[login]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.streams[login]--
		s.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	deadline := time.NewTimer(time.Duration(minutes) * s.opts.StreamingMinute)
	defer deadline.Stop()
	first := true
	for {
		s.mu.Lock()
		body, any, lost := s.drainStreams(subs)
		wake := s.wake
		s.mu.Unlock()
		if lost {
			var b bytes.Buffer
			writeXML(&b, operationResponse(op, responseMessage(op, errf("ErrorMissedNotificationEvents",
				"Events were dropped: more than %d were not fetched.", maxQueuedEvents))))
			_, _ = w.Write(s.envelope(req.version, b.Bytes()))
			return
		}
		if any || first {
			if _, err := w.Write(s.envelope(req.version, body)); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			first = false
		}
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		case <-deadline.C:
			var b bytes.Buffer
			writeXML(&b, operationResponse(op, responseMessage(op, nil, connectionStatus("Closed"))))
			_, _ = w.Write(s.envelope(req.version, b.Bytes()))
			return
		}
	}
}

// drainStreams takes the queued events of subs (still live ones) into
// one GetStreamingEventsResponse with ConnectionStatus OK; any reports
// whether there were events. A subscription that lost events (its
// queue overflowed) is dropped and reported as lost.
func (s *Server) drainStreams(subs []*subscription) (body []byte, any, lost bool) {
	notifs := mel("Notifications")
	now := s.opts.Now()
	for _, sub := range subs {
		if s.subs[sub.id] != sub {
			continue // unsubscribed meanwhile
		}
		sub.lastPoll = now
		if sub.overflow {
			s.dropSub(sub)
			return nil, false, true
		}
		if len(sub.queue) == 0 {
			continue
		}
		n := mel("Notification", append([]*node{tel("SubscriptionId", sub.id)}, renderEvents(sub, sub.queue)...)...)
		notifs.Kids = append(notifs.Kids, n)
		sub.queue = nil
		any = true
	}
	kids := []*node{}
	if any {
		kids = append(kids, notifs)
	}
	kids = append(kids, connectionStatus("OK"))
	var b bytes.Buffer
	writeXML(&b, operationResponse("GetStreamingEvents", responseMessage("GetStreamingEvents", nil, kids...)))
	return b.Bytes(), any, false
}

func connectionStatus(v string) *node {
	return &node{Space: nsMessages, Local: "ConnectionStatus", Text: v}
}
