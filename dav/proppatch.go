package dav

import (
	"encoding/xml"
	"errors"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mailyard/mailyard/store"
)

// Bounds of writable collection properties.
const (
	maxDisplayName = 255
	maxDescription = 4096
	maxColor       = 32
)

// propUpdate is one DAV:set or DAV:remove of one property.
type propUpdate struct {
	prop   *node
	remove bool
}

// parseUpdates reads the set and remove instructions, in document order,
// of a DAV:propertyupdate (RFC 4918 §14.19) or of the DAV:set of an
// MKCALENDAR or extended MKCOL body.
func parseUpdates(instructions []*node) []propUpdate {
	var out []propUpdate
	for _, in := range instructions {
		remove := in.is(nsDAV, "remove")
		if !remove && !in.is(nsDAV, "set") {
			continue
		}
		for _, p := range in.Children {
			if !p.is(nsDAV, "prop") {
				continue
			}
			for _, prop := range p.Children {
				out = append(out, propUpdate{prop: prop, remove: remove})
			}
		}
	}
	return out
}

// applyUpdates applies updates to c and, for the properties kept in
// NamespaceProps, to cp (nil when the store keeps no records), in
// memory. It returns, for each update in order, the status it gets: 200
// when every one succeeded; otherwise the failures keep their status
// and the rest get 424 Failed Dependency, and the caller stores nothing
// (RFC 4918 §9.2: all or nothing).
func (h *Handler) applyUpdates(k kind, c *store.Collection, cp *collProps, updates []propUpdate, creating bool) ([]int, bool) {
	statuses := make([]int, len(updates))
	ok := true
	for i, u := range updates {
		if h.recordProp(k, u.prop) {
			statuses[i] = applyRecordUpdate(cp, u)
		} else {
			statuses[i] = applyUpdate(c, u, creating)
		}
		ok = ok && statuses[i] == http.StatusOK
	}
	if !ok {
		for i, s := range statuses {
			if s == http.StatusOK {
				statuses[i] = http.StatusFailedDependency
			}
		}
	}
	return statuses, ok
}

// applyUpdate applies one update; resourcetype is accepted only when
// creating (the caller checks it).
func applyUpdate(c *store.Collection, u propUpdate, creating bool) int {
	p := u.prop
	value := p.Text
	if u.remove {
		value = ""
	}
	cal := c.Kind == store.KindCalendar
	switch {
	case p.is(nsDAV, "displayname"):
		return setText(&c.DisplayName, value, maxDisplayName)
	case cal && p.is(nsCalDAV, "calendar-description"), !cal && p.is(nsCardDAV, "addressbook-description"):
		return setText(&c.Description, value, maxDescription)
	case cal && p.is(nsApple, "calendar-color"):
		return setColor(c, value)
	case cal && p.is(nsCalDAV, "supported-calendar-component-set"):
		// RFC 4791 §5.2.3: set at creation only.
		if !creating || u.remove {
			return http.StatusForbidden
		}
		return setComponents(c, p)
	case creating && p.is(nsDAV, "resourcetype"):
		return http.StatusOK
	}
	// Protected or unknown properties of the DAV:, CalDAV and CardDAV
	// namespaces (RFC 4918 §9.2.1: cannot-modify-protected-property).
	return http.StatusForbidden
}

func setText(dst *string, v string, max int) int {
	v = strings.TrimSpace(v)
	if len(v) > max || !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' }) {
		return http.StatusConflict
	}
	*dst = v
	return http.StatusOK
}

// setColor accepts the #RRGGBB and #RRGGBBAA forms clients send.
func setColor(c *store.Collection, v string) int {
	v = strings.TrimSpace(v)
	if v != "" && !validColor(v) {
		return http.StatusConflict
	}
	c.Color = v
	return http.StatusOK
}

func validColor(v string) bool {
	if len(v) > maxColor || len(v) < 2 || v[0] != '#' {
		return false
	}
	for _, r := range v[1:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return len(v) == 7 || len(v) == 9
}

// setComponents reads a supported-calendar-component-set (RFC 4791
// §5.2.3).
func setComponents(c *store.Collection, p *node) int {
	var comps []string
	for _, comp := range p.Children {
		name, _ := comp.attr("name")
		name = strings.ToUpper(name)
		if !comp.is(nsCalDAV, "comp") || !slices.Contains(calendarComponents(), name) {
			return http.StatusConflict
		}
		if !slices.Contains(comps, name) {
			comps = append(comps, name)
		}
	}
	if len(comps) == 0 {
		return http.StatusConflict
	}
	c.Components = comps
	return http.StatusOK
}

// propstats groups updated property names by status.
func propstats(updates []propUpdate, statuses []int) []propstat {
	var out []propstat
	for i, u := range updates {
		j := slices.IndexFunc(out, func(p propstat) bool { return p.status == statuses[i] })
		if j < 0 {
			out = append(out, propstat{status: statuses[i]})
			j = len(out) - 1
		}
		out[j].props = append(out[j].props, &node{Name: xml.Name{Space: u.prop.Name.Space, Local: u.prop.Name.Local}})
	}
	return out
}

// proppatch answers PROPPATCH (RFC 4918 §9.2) on a calendar or an
// address book, or a proxy principal's group-member-set (proxy.go):
// every instruction or none is applied.
func (h *Handler) proppatch(rq *request) error {
	if rq.t.kind == kindProxy {
		return h.proppatchProxy(rq)
	}
	if rq.t.kind != kindCalendar && rq.t.kind != kindBook {
		return precondition(http.StatusForbidden, nsDAV, "cannot-modify-protected-property", "only calendars and address books have writable properties")
	}
	if readOnly(rq.t) {
		return needPrivileges(h.hrefOf(rq.t), "write-properties")
	}
	body, err := h.readXML(rq.w, rq.r)
	if err != nil {
		return err
	}
	if !body.is(nsDAV, "propertyupdate") {
		return &httpError{status: http.StatusBadRequest, msg: "PROPPATCH body must be DAV:propertyupdate"}
	}
	c, err := h.collection(rq, rq.t)
	if err != nil {
		return err
	}
	updates := parseUpdates(body.Children)
	statuses, _, err := h.patchCollection(rq, c, updates)
	if err != nil {
		return err
	}
	h.writePatchResult(rq, updates, statuses)
	return nil
}

// errNotApplied stops a records transaction whose updates failed.
var errNotApplied = errors.New("property updates not applied")

// patchCollection applies updates to c: the properties kept in
// NamespaceProps in one records transaction (read, changed and written
// together, so concurrent PROPPATCHes do not lose each other's
// properties), then the collection's own fields. ok is false, and
// nothing is written, if any update failed.
func (h *Handler) patchCollection(rq *request, c store.Collection, updates []propUpdate) (statuses []int, ok bool, err error) {
	orig := c
	apply := func(cp *collProps) {
		c = orig
		statuses, ok = h.applyUpdates(rq.t.kind, &c, cp, updates, false)
	}
	recs, rerr := h.records()
	needRecord := slices.ContainsFunc(updates, func(u propUpdate) bool { return h.recordProp(rq.t.kind, u.prop) })
	if !needRecord || rerr != nil {
		apply(nil)
	} else {
		err = recs.UpdateRecords(rq.ctx, func(tx store.RecordTx) error {
			cp := &collProps{}
			r, err := tx.Get(NamespaceProps, propsKey(orig))
			if err == nil {
				err = store.DecodeJSON(r, cp)
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			apply(cp)
			if !ok {
				return errNotApplied
			}
			return putCollProps(tx, orig, cp)
		})
		if errors.Is(err, errNotApplied) {
			err = nil
		}
		if err != nil {
			return nil, false, err
		}
	}
	if ok && !collectionEqual(c, orig) {
		if err := h.opts.Store.UpdateCollection(rq.ctx, c); err != nil {
			return nil, false, err
		}
	}
	return statuses, ok, nil
}

// collectionEqual reports whether PROPPATCH left c's own fields as they
// were.
func collectionEqual(a, b store.Collection) bool {
	return a.DisplayName == b.DisplayName && a.Description == b.Description && a.Color == b.Color &&
		slices.Equal(a.Components, b.Components)
}

// needPrivileges refuses a write to a read-only resource (RFC 3744 §7.1.1).
func needPrivileges(href, privilege string) error {
	return precondition(http.StatusForbidden, nsDAV, "need-privileges", "read-only resource",
		el(nsDAV, "resource", textEl(nsDAV, "href", href), el(nsDAV, "privilege", el(nsDAV, privilege))))
}

// writePatchResult answers a PROPPATCH with one response holding each
// property's status (RFC 4918 §9.2.1). A failed write is the client
// gone; nothing is left to answer.
func (h *Handler) writePatchResult(rq *request, updates []propUpdate, statuses []int) {
	ms := newMultistatus(rq.w)
	if err := ms.response(h.hrefOf(rq.t), propstats(updates, statuses)...); err != nil {
		return
	}
	_ = ms.close()
}
