package dav

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

// NamespaceProps is the store.Records namespace of the properties of
// calendars and address books that store.Collection has no field for:
// CALDAV:calendar-timezone (RFC 4791 §5.2.2) and dead properties (RFC
// 4918 §4.2), such as the order and colours clients keep in their own
// namespaces. One JSON record per collection, under the key
//
//	<account>/<kind>/<collection>
//
// written by PROPPATCH, MKCALENDAR and extended MKCOL and deleted with
// the collection.
const NamespaceProps = "dav.props"

// Bounds of the properties one collection keeps in NamespaceProps.
const (
	maxDeadProps    = 32       // dead properties per collection
	maxDeadPropSize = 4 << 10  // one dead property, as stored
	maxTimezoneSize = 64 << 10 // the calendar-timezone value
)

// collProps is the record of NamespaceProps for one collection.
type collProps struct {
	Timezone string  `json:"timezone,omitempty"`
	Dead     []*node `json:"dead,omitempty"`
}

func (cp *collProps) empty() bool { return cp.Timezone == "" && len(cp.Dead) == 0 }

// dead returns the dead property named name, or nil.
func (cp *collProps) dead(name xml.Name) *node {
	if cp == nil {
		return nil
	}
	for _, n := range cp.Dead {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func propsKey(c store.Collection) string {
	return c.Account + "/" + string(c.Kind) + "/" + c.Name
}

// collProps loads the record of c; a store without records, or a
// collection without one, has none.
func (h *Handler) collProps(ctx context.Context, c store.Collection) (*collProps, error) {
	recs, _ := h.records()
	return loadCollProps(ctx, recs, c)
}

// loadCollProps loads the record of c from recs (nil: a store without
// records).
func loadCollProps(ctx context.Context, recs store.Records, c store.Collection) (*collProps, error) {
	if recs == nil {
		return &collProps{}, nil
	}
	r, err := recs.GetRecord(ctx, NamespaceProps, propsKey(c))
	if errors.Is(err, store.ErrNotFound) {
		return &collProps{}, nil
	}
	if err != nil {
		return nil, err
	}
	var cp collProps
	if err := store.DecodeJSON(r, &cp); err != nil {
		return nil, err
	}
	return &cp, nil
}

// putCollProps writes cp as the record of c in tx, or deletes the
// record when cp holds nothing.
func putCollProps(tx store.RecordTx, c store.Collection, cp *collProps) error {
	if cp.empty() {
		if err := tx.Delete(NamespaceProps, propsKey(c)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	}
	return store.PutJSON(tx, NamespaceProps, propsKey(c), cp, -1)
}

// dropCollProps deletes the record of a deleted collection, so that a
// new collection of the same name starts without its properties.
func (h *Handler) dropCollProps(ctx context.Context, c store.Collection) error {
	recs, err := h.records()
	if err != nil {
		return nil
	}
	return recs.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return putCollProps(tx, c, &collProps{})
	})
}

// timezone returns the calendar-timezone of c, or nil.
func (h *Handler) timezone(ctx context.Context, c store.Collection) (*calendar.Timezone, error) {
	recs, _ := h.records()
	return readTimezone(ctx, recs, c)
}

// readTimezone returns the calendar-timezone of c kept in recs, or nil.
func readTimezone(ctx context.Context, recs store.Records, c store.Collection) (*calendar.Timezone, error) {
	if c.Kind != store.KindCalendar {
		return nil, nil
	}
	cp, err := loadCollProps(ctx, recs, c)
	if err != nil || cp.Timezone == "" {
		return nil, err
	}
	tz, err := calendar.ParseTimezone([]byte(cp.Timezone))
	if err != nil {
		return nil, nil // checked when set; a bad one is as none
	}
	return tz, nil
}

// recordProp reports whether the property p of a collection lives in
// NamespaceProps: calendar-timezone of a calendar, and any property
// outside the DAV:, CalDAV and CardDAV namespaces that is not a live
// property of the collection (those are stored in store.Collection or
// computed, and protected).
func (h *Handler) recordProp(k kind, p *node) bool {
	if k == kindCalendar && p.is(nsCalDAV, "calendar-timezone") {
		return true
	}
	switch p.Name.Space {
	case nsDAV, nsCalDAV, nsCardDAV:
		return false
	}
	_, live := findProp(h.propDefs[k], p.Name)
	return !live
}

// applyRecordUpdate applies one update of a property recordProp accepts
// to cp, returning its status (RFC 4918 §9.2.1): 200; 409 for a
// calendar-timezone that is not one VTIMEZONE (RFC 4791 §5.2.2
// valid-calendar-data); 507 beyond the bounds; 403 if the store keeps
// no records.
func applyRecordUpdate(cp *collProps, u propUpdate) int {
	if cp == nil {
		return http.StatusForbidden
	}
	p := u.prop
	if p.is(nsCalDAV, "calendar-timezone") {
		if u.remove {
			cp.Timezone = ""
			return http.StatusOK
		}
		if len(p.Text) > maxTimezoneSize {
			return http.StatusInsufficientStorage
		}
		if _, err := calendar.ParseTimezone([]byte(p.Text)); err != nil {
			return http.StatusConflict
		}
		cp.Timezone = p.Text
		return http.StatusOK
	}
	i := -1
	for j, n := range cp.Dead {
		if n.Name == p.Name {
			i = j
		}
	}
	if u.remove {
		if i >= 0 {
			cp.Dead = append(cp.Dead[:i], cp.Dead[i+1:]...)
		}
		return http.StatusOK // RFC 4918 §14.23: removing an absent property is no error
	}
	v := deadValue(p)
	if b, err := json.Marshal(v); err != nil || len(b) > maxDeadPropSize {
		return http.StatusInsufficientStorage
	}
	if i >= 0 {
		cp.Dead[i] = v
		return http.StatusOK
	}
	if len(cp.Dead) >= maxDeadProps {
		return http.StatusInsufficientStorage
	}
	cp.Dead = append(cp.Dead, v)
	return http.StatusOK
}

// deadValue is the part of a dead property's element that is kept and
// returned: names, unqualified attributes, text and child elements
// (the request's depth and size limits bound them). Namespaced
// attributes, comments and the order of text between child elements
// are not kept.
func deadValue(p *node) *node {
	v := &node{Name: p.Name, Text: p.Text}
	for _, a := range p.Attrs {
		if a.Name.Space == "" && a.Name.Local != "xmlns" {
			v.Attrs = append(v.Attrs, xml.Attr{Name: xml.Name{Local: a.Name.Local}, Value: a.Value})
		}
	}
	for _, c := range p.Children {
		v.Children = append(v.Children, deadValue(c))
	}
	return v
}
