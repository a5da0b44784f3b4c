package dav

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/mailyard/mailyard/dav/internal/contact"
	"github.com/mailyard/mailyard/store"
)

// errLimitReached stops a query that found more matches than the
// client's limit.
var errLimitReached = errors.New("limit reached")

// addressbookQuery answers addressbook-query (RFC 6352 §8.6), a page of
// objects at a time. With CARDDAV:limit, matches beyond nresults are not
// returned and the request-URI gets a 507 response with
// DAV:number-of-matches-within-limits (RFC 6352 §8.6.1).
func (h *Handler) addressbookQuery(rq *request, body *node) error {
	rp, err := parseReportProps(body)
	if err != nil {
		return err
	}
	f, err := parseCardFilter(body.child(nsCardDAV, "filter"))
	if err != nil {
		return err
	}
	limit, err := parseLimit(body.child(nsCardDAV, "limit"), nsCardDAV)
	if err != nil {
		return err
	}
	if rq.t.coll == galName && h.opts.GAL != nil {
		return h.galQuery(rq, rp, f, limit)
	}
	if rq.t.kind != kindBook {
		return &httpError{status: http.StatusForbidden, msg: "addressbook-query applies to an address book"}
	}
	c, err := h.collection(rq, rq.t)
	if err != nil {
		return err
	}
	ms := newMultistatus(rq.w)
	n := 0
	// The store reads only the cards that may hold the filter's texts
	// (contact.ContainsClauses); each is then matched as before.
	err = h.pageObjects(rq.ctx, c.ID, store.ObjectQuery{Contains: contact.ContainsClauses(f)}, func(o *store.Object) error {
		if contact.CannotMatch(o.Data, f) {
			// Decided on the raw text: no parse for a card that lacks
			// the text the filter needs (most cards of a search).
			return nil
		}
		card, err := contact.Parse(o.Data, contact.Limits{MaxSize: len(o.Data) + 1})
		if err != nil {
			rq.log.Warn("stored vCard does not parse", "object", o.Name, "err", err)
			return nil
		}
		if !card.Match(f) {
			return nil
		}
		if limit > 0 && n == limit {
			return errLimitReached
		}
		n++
		t := target{kind: kindCard, user: rq.t.user, coll: rq.t.coll, name: o.Name}
		return h.objectResponse(rq, ms, &resource{t: t, coll: &c, obj: o}, rp, nil)
	})
	return h.endQuery(rq, ms, err)
}

// endQuery closes a query's multistatus: a reached limit (of matches or
// of expanded instances) adds the 507 response for the request-URI; another error before anything was
// written is the answer, after that only logged.
func (h *Handler) endQuery(rq *request, ms *multistatus, err error) error {
	switch {
	case errors.Is(err, errLimitReached), errors.Is(err, errInstanceLimit):
		_ = ms.status(h.hrefOf(rq.t), http.StatusInsufficientStorage, el(nsDAV, "number-of-matches-within-limits"))
	case err != nil && !ms.started:
		return err
	case err != nil:
		rq.log.Error("query stopped", "err", err)
		return nil
	}
	_ = ms.close()
	return nil
}

// parseLimit reads a limit element's nresults (RFC 6352 §10.6, RFC 5323
// §5.17); 0 means none.
func parseLimit(n *node, space string) (int, error) {
	if n == nil {
		return 0, nil
	}
	nr := n.child(space, "nresults")
	if nr == nil {
		return 0, nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(nr.Text))
	if err != nil || v < 1 {
		return 0, &httpError{status: http.StatusBadRequest, msg: "nresults must be a positive number"}
	}
	return v, nil
}

// parseCardFilter reads a CARDDAV:filter (RFC 6352 §10.5); no filter
// matches every card.
func parseCardFilter(n *node) (contact.Filter, error) {
	var f contact.Filter
	if n == nil {
		return f, nil
	}
	test, _ := n.attr("test")
	f.AllOf = test == "allof"
	for _, c := range n.Children {
		if !c.is(nsCardDAV, "prop-filter") {
			continue
		}
		pf, err := parseCardPropFilter(c)
		if err != nil {
			return f, err
		}
		f.Props = append(f.Props, pf)
	}
	return f, nil
}

func parseCardPropFilter(n *node) (contact.PropFilter, error) {
	name, ok := n.attr("name")
	if !ok || name == "" {
		return contact.PropFilter{}, precondition(http.StatusForbidden, nsCardDAV, "valid-filter", "prop-filter without a name")
	}
	test, _ := n.attr("test")
	pf := contact.PropFilter{Name: name, AllOf: test == "allof"}
	for _, c := range n.Children {
		switch {
		case c.is(nsCardDAV, "is-not-defined"):
			pf.IsNotDefined = true
		case c.is(nsCardDAV, "text-match"):
			m, err := textMatch(c, nsCardDAV)
			if err != nil {
				return pf, err
			}
			pf.TextMatches = append(pf.TextMatches, m)
		case c.is(nsCardDAV, "param-filter"):
			pname, ok := c.attr("name")
			if !ok || pname == "" {
				return pf, precondition(http.StatusForbidden, nsCardDAV, "valid-filter", "param-filter without a name")
			}
			p := contact.ParamFilter{Name: pname, IsNotDefined: c.child(nsCardDAV, "is-not-defined") != nil}
			if tm := c.child(nsCardDAV, "text-match"); tm != nil {
				m, err := textMatch(tm, nsCardDAV)
				if err != nil {
					return pf, err
				}
				p.TextMatch = m
			}
			pf.Params = append(pf.Params, p)
		}
	}
	return pf, nil
}
