package dav

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// syncCollection answers sync-collection (RFC 6578 §3) on a calendar or
// address book with sync-level 1: an empty token lists every object, a
// token from an earlier answer lists what changed since (deleted
// objects as 404 responses), and every answer ends with the new token.
// A client limit smaller than the answer refuses the request with 507
// and DAV:number-of-matches-within-limits (§3.6): the store's change log
// cannot hand out a token in the middle of a change set.
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
	var tokenText string
	if tok := body.child(nsDAV, "sync-token"); tok != nil {
		tokenText = strings.TrimSpace(tok.Text)
	}
	if rq.t.coll == galName && h.opts.GAL != nil {
		return h.galSync(rq, rp, tokenText)
	}
	token, ok := parseSyncToken(tokenText)
	if !ok {
		return invalidSyncToken()
	}
	c, err := h.collection(rq, rq.t)
	if err != nil {
		return err
	}
	changes, now, err := h.opts.Store.ChangesSince(rq.ctx, c.ID, token)
	if errors.Is(err, store.ErrSyncTokenInvalid) {
		return invalidSyncToken()
	}
	if err != nil {
		return err
	}
	if limit > 0 && len(changes) > limit {
		return precondition(http.StatusInsufficientStorage, nsDAV, "number-of-matches-within-limits", "more changes than the limit")
	}
	ms := newMultistatus(rq.w)
	if err := h.syncResponses(rq, ms, c, token, changes, rp); err != nil {
		if !ms.started {
			return err
		}
		rq.log.Error("sync-collection stopped", "err", err)
		return nil
	}
	ms.extra(textEl(nsDAV, "sync-token", syncTokenURI(now)))
	_ = ms.close()
	return nil
}

// syncResponses writes the changed objects: for the initial sync a page
// at a time from the store, else one by one from the change list.
func (h *Handler) syncResponses(rq *request, ms *multistatus, c store.Collection, token uint64, changes []store.ObjectChange, rp reportProps) error {
	k := kindCalObject
	if c.Kind == store.KindAddressBook {
		k = kindCard
	}
	respond := func(o *store.Object) error {
		t := target{kind: k, user: rq.t.user, coll: rq.t.coll, name: o.Name}
		return h.objectResponse(rq, ms, &resource{t: t, coll: &c, obj: o}, rp, nil)
	}
	if token == 0 {
		return h.pageObjects(rq.ctx, c.ID, store.ObjectQuery{}, respond)
	}
	for _, ch := range changes {
		t := target{kind: k, user: rq.t.user, coll: rq.t.coll, name: ch.Name}
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
		if err := respond(&o); err != nil {
			return err
		}
	}
	return nil
}

// parseSyncToken reads a token this server issued; "" is the initial
// sync (0).
func parseSyncToken(s string) (uint64, bool) {
	if s == "" {
		return 0, true
	}
	rest, ok := strings.CutPrefix(s, syncTokenPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil && n > 0
}

// invalidSyncToken is RFC 6578 §3.2's refusal of a token the server does
// not (or no longer) know: the client starts over with an empty one.
func invalidSyncToken() error {
	return precondition(http.StatusForbidden, nsDAV, "valid-sync-token", "unknown or expired sync token")
}
