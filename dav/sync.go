package dav

import (
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// syncCollection answers sync-collection (RFC 6578 §3) on a calendar or
// address book with sync-level 1: an empty token lists every object, a
// token from an earlier answer lists what changed since (deleted
// objects as 404 responses), and every answer ends with the new token.
// A token older than the store's change log gets the valid-sync-token
// precondition (§3.2), after which the client starts over.
//
// An answer holds at most Limits.MaxSyncChanges responses, or the
// client's DAV:limit if smaller. A longer change set is truncated
// (§3.6): the answer carries the first members by name, a 507 response
// for the request-URI with DAV:number-of-matches-within-limits, and a
// token the client continues from (see [syncPos]); continuing until an
// answer is not truncated yields every change, and, when nothing
// changes meanwhile, every member exactly once.
func (h *Handler) syncCollection(rq *request, body *node) error {
	if rq.t.kind != kindCalendar && rq.t.kind != kindBook {
		return precondition(http.StatusForbidden, nsDAV, "supported-report", "sync-collection applies to a calendar or an address book")
	}
	if lvl := body.child(nsDAV, "sync-level"); lvl == nil || strings.TrimSpace(lvl.Text) != "1" {
		return precondition(http.StatusForbidden, nsDAV, "sync-traversal-supported", "only sync-level 1 is supported")
	}
	rp, err := parseReportProps(body)
	if err != nil {
		return err
	}
	limit, err := parseLimit(body.child(nsDAV, "limit"), nsDAV)
	if err != nil {
		return err
	}
	if limit <= 0 || limit > h.opts.Limits.MaxSyncChanges {
		limit = h.opts.Limits.MaxSyncChanges
	}
	var tokenText string
	if tok := body.child(nsDAV, "sync-token"); tok != nil {
		tokenText = strings.TrimSpace(tok.Text)
	}
	if rq.t.coll == galName && h.opts.GAL != nil {
		return h.galSync(rq, rp, tokenText)
	}
	pos, ok := parseSyncToken(tokenText)
	if !ok {
		return invalidSyncToken()
	}
	c, err := h.collection(rq, rq.t)
	if err != nil {
		return err
	}
	pending, now, err := h.pendingChanges(rq, c.ID, pos)
	if err != nil {
		return err
	}
	ms := newMultistatus(rq.w)
	var next syncPos
	if pos.base == 0 && pos.after == "" && len(pending) <= limit {
		// The initial sync in one answer: stream the objects a page at
		// a time rather than loading each one.
		err = h.syncAll(rq, ms, c, rp)
		next = syncPos{base: now}
	} else {
		next = syncPos{base: now}
		if len(pending) > limit {
			pending = pending[:limit]
			next = syncPos{base: pos.base, upTo: now, after: pending[limit-1].Name}
		}
		err = h.syncResponses(rq, ms, c, pending, rp)
	}
	if err != nil {
		if !ms.started {
			return err
		}
		rq.log.Error("sync-collection stopped", "err", err)
		return nil
	}
	if next.after != "" {
		if err := ms.status(h.hrefOf(rq.t), http.StatusInsufficientStorage, el(nsDAV, "number-of-matches-within-limits")); err != nil {
			return nil
		}
	}
	ms.extra(textEl(nsDAV, "sync-token", next.String()))
	_ = ms.close()
	return nil
}

// pendingChanges returns, sorted by name, the members whose changes a
// client at pos has not seen, and the token up to which the list is
// complete.
func (h *Handler) pendingChanges(rq *request, collID int64, pos syncPos) ([]store.ObjectChange, uint64, error) {
	changes, now, err := h.opts.Store.ChangesSince(rq.ctx, collID, pos.base)
	if errors.Is(err, store.ErrSyncTokenInvalid) {
		return nil, 0, invalidSyncToken()
	}
	if err != nil {
		return nil, 0, err
	}
	if pos.after != "" {
		// Members up to after were sent as of upTo: only their later
		// changes are pending.
		changes = slices.DeleteFunc(changes, func(ch store.ObjectChange) bool { return ch.Name <= pos.after })
		later, upNow, err := h.opts.Store.ChangesSince(rq.ctx, collID, pos.upTo)
		if errors.Is(err, store.ErrSyncTokenInvalid) {
			return nil, 0, invalidSyncToken()
		}
		if err != nil {
			return nil, 0, err
		}
		for _, ch := range later {
			if ch.Name <= pos.after {
				changes = append(changes, ch)
			}
		}
		// Both lists are complete up to the older of their tokens.
		now = min(now, upNow)
	}
	slices.SortFunc(changes, func(a, b store.ObjectChange) int { return strings.Compare(a.Name, b.Name) })
	return changes, now, nil
}

// syncAll writes every member, a page at a time from the store.
func (h *Handler) syncAll(rq *request, ms *multistatus, c store.Collection, rp reportProps) error {
	return h.pageObjects(rq.ctx, c.ID, store.ObjectQuery{}, func(o *store.Object) error {
		return h.objectResponse(rq, ms, &resource{t: h.memberTarget(rq, c, o.Name), coll: &c, obj: o}, rp, nil)
	})
}

// syncResponses writes the changed members one by one: the object as
// it is now, or 404 if it is gone.
func (h *Handler) syncResponses(rq *request, ms *multistatus, c store.Collection, changes []store.ObjectChange, rp reportProps) error {
	for _, ch := range changes {
		t := h.memberTarget(rq, c, ch.Name)
		o, err := h.opts.Store.GetObject(rq.ctx, c.ID, ch.Name)
		if ch.Deleted || errors.Is(err, store.ErrNotFound) {
			if err := ms.status(h.hrefOf(t), http.StatusNotFound, nil); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := h.objectResponse(rq, ms, &resource{t: t, coll: &c, obj: &o}, rp, nil); err != nil {
			return err
		}
	}
	return nil
}

// memberTarget is the target of the member name of c, under the
// request's path (the user's own or a shared collection).
func (h *Handler) memberTarget(rq *request, c store.Collection, name string) target {
	k := kindCalObject
	if c.Kind == store.KindAddressBook {
		k = kindCard
	}
	return target{kind: k, user: rq.t.user, coll: rq.t.coll, name: name}
}

// syncPos is where a client stands in a collection's change log, as its
// sync token says: it has seen every change up to base and, when after
// is set (an answer was truncated), every change up to upTo of the
// members whose names sort up to after. A plain token is
// syncTokenPrefix + base; a continuation is
// syncTokenPrefix + "base.upTo." + base64url(after).
type syncPos struct {
	base, upTo uint64
	after      string
}

// String returns the token for p.
func (p syncPos) String() string {
	if p.after == "" {
		return syncTokenURI(p.base)
	}
	return syncTokenPrefix + strconv.FormatUint(p.base, 10) + "." + strconv.FormatUint(p.upTo, 10) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(p.after))
}

// parseSyncToken reads a token this server issued; "" is the initial
// sync (base 0).
func parseSyncToken(s string) (syncPos, bool) {
	if s == "" {
		return syncPos{}, true
	}
	rest, ok := strings.CutPrefix(s, syncTokenPrefix)
	if !ok {
		return syncPos{}, false
	}
	parts := strings.Split(rest, ".")
	num := func(s string) (uint64, bool) {
		n, err := strconv.ParseUint(s, 10, 64)
		return n, err == nil
	}
	switch len(parts) {
	case 1:
		n, ok := num(parts[0])
		return syncPos{base: n}, ok && n > 0
	case 3:
		base, ok1 := num(parts[0])
		upTo, ok2 := num(parts[1])
		after, err := base64.RawURLEncoding.DecodeString(parts[2])
		return syncPos{base: base, upTo: upTo, after: string(after)}, ok1 && ok2 && err == nil && len(after) > 0 && upTo > 0 && upTo >= base
	}
	return syncPos{}, false
}

// invalidSyncToken is RFC 6578 §3.2's refusal of a token the server does
// not (or no longer) know: the client starts over with an empty one.
func invalidSyncToken() error {
	return precondition(http.StatusForbidden, nsDAV, "valid-sync-token", "unknown or expired sync token")
}
