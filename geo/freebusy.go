package geo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailyard/mailyard/directory"
)

// BusyPeriod is a span [Start, End) of busy time and its free/busy type
// (RFC 5545 §3.2.9), as dav's free/busy function returns it.
type BusyPeriod struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Type  string    `json:"type"`
}

// FreeBusyQuery asks for the busy time of store accounts in [From, To).
type FreeBusyQuery struct {
	Accounts []string  `json:"accounts"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
}

// FreeBusyResponder answers free/busy for this site's accounts: dav's
// free/busy function over the site's store has this shape.
type FreeBusyResponder interface {
	FreeBusy(ctx context.Context, q FreeBusyQuery) (map[string][]BusyPeriod, error)
}

// FreeBusyFunc adapts a function to [FreeBusyResponder].
type FreeBusyFunc func(ctx context.Context, q FreeBusyQuery) (map[string][]BusyPeriod, error)

// FreeBusy calls f.
func (f FreeBusyFunc) FreeBusy(ctx context.Context, q FreeBusyQuery) (map[string][]BusyPeriod, error) {
	return f(ctx, q)
}

// MaxFreeBusyAccounts bounds the accounts of one request.
const MaxFreeBusyAccounts = 500

type fbReply struct {
	Busy  map[string][]BusyPeriod `json:"busy,omitempty"`
	Error string                  `json:"error,omitempty"`
}

// ErrNoFreeBusy is returned when a site cannot answer free/busy.
var ErrNoFreeBusy = errors.New("geo: free/busy unavailable")

// answerFreeBusy serves a peer's request. The subject names the asking
// site (its permissions allow no other), and only accounts this site
// published (users and resources) are answered.
func (n *Node) answerFreeBusy(m *nats.Msg) {
	reply := func(r fbReply) {
		b, _ := json.Marshal(r)
		_ = m.Respond(b)
	}
	if n.opts.FreeBusy == nil {
		reply(fbReply{Error: "no free/busy here"})
		return
	}
	var q FreeBusyQuery
	if err := json.Unmarshal(m.Data, &q); err != nil || len(q.Accounts) > MaxFreeBusyAccounts || !q.To.After(q.From) {
		reply(fbReply{Error: "invalid request"})
		return
	}
	n.mu.Lock()
	own := q.Accounts[:0]
	for _, a := range q.Accounts {
		if n.ownsAccount(a) {
			own = append(own, a)
		}
	}
	n.mu.Unlock()
	q.Accounts = own
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	busy, err := n.opts.FreeBusy.FreeBusy(ctx, q)
	if err != nil {
		n.log.Warn("geo: free/busy for a peer", "subject", m.Subject, "err", err)
		reply(fbReply{Error: "free/busy failed"})
		return
	}
	reply(fbReply{Busy: busy})
}

// ownsAccount reports whether this site published a user or resource
// with store account id. n.mu must be held.
func (n *Node) ownsAccount(id string) bool {
	for _, k := range []string{KindUser, KindResource} {
		if e, ok := n.view.get(n.opts.Site, k, id); ok && !e.Rec.Deleted {
			return true
		}
	}
	return false
}

// FreeBusy asks the sites that hold addresses for their busy time in
// [from, to), in parallel, each within ctx's deadline (or 5 s). The
// result maps each address to its periods; addresses that are local,
// unknown or in conflict are absent and reported in the error, as is a
// site that did not answer.
func (n *Node) FreeBusy(ctx context.Context, addresses []string, from, to time.Time) (map[string][]BusyPeriod, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	bySite := map[string]map[string][]string{} // site -> account -> addresses
	var errs []error
	for _, a := range addresses {
		loc, err := n.LocateSite(ctx, a)
		if err == nil && (loc.Local || loc.Account == "") {
			err = fmt.Errorf("geo: %s: not a remote user or resource: %w", a, directory.ErrNotFound)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if bySite[loc.Site] == nil {
			bySite[loc.Site] = map[string][]string{}
		}
		bySite[loc.Site][loc.Account] = append(bySite[loc.Site][loc.Account], a)
	}
	out := map[string][]BusyPeriod{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for site, accts := range bySite {
		wg.Add(1)
		go func() {
			defer wg.Done()
			busy, err := n.askFreeBusy(ctx, site, accts, from, to)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for acct, addrs := range accts {
				for _, a := range addrs {
					out[a] = busy[acct]
				}
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (n *Node) askFreeBusy(ctx context.Context, site string, accts map[string][]string, from, to time.Time) (map[string][]BusyPeriod, error) {
	l := n.links[site]
	l.mu.Lock()
	nc := l.conn
	l.mu.Unlock()
	if nc == nil {
		return nil, fmt.Errorf("%w: %s: not connected", ErrNoFreeBusy, site)
	}
	q := FreeBusyQuery{From: from, To: to}
	for a := range accts {
		q.Accounts = append(q.Accounts, a)
	}
	b, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	m, err := nc.RequestWithContext(ctx, fbSubject(site, n.opts.Site), b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoFreeBusy, site, err)
	}
	var r fbReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoFreeBusy, site, err)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("%w: %s: %s", ErrNoFreeBusy, site, strings.TrimSpace(r.Error))
	}
	return r.Busy, nil
}
