package calendar

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// Free/busy types (RFC 5545 §3.2.9).
const (
	Busy            = "BUSY"
	BusyTentative   = "BUSY-TENTATIVE"
	BusyUnavailable = "BUSY-UNAVAILABLE"
	Free            = "FREE"
)

// Period is a span of busy time [Start, End) in UTC and its FBTYPE.
type Period struct {
	Start, End time.Time
	Type       string
}

// Busy returns the object's busy time within [from, to) (RFC 4791
// §7.10): each VEVENT instance that overlaps the range and is neither
// TRANSP:TRANSPARENT nor STATUS:CANCELLED, as BUSY-TENTATIVE when
// STATUS:TENTATIVE and BUSY otherwise, and the FREEBUSY periods of a
// VFREEBUSY other than FBTYPE=FREE. Periods are clipped to the range and
// in UTC; instances of no duration give none. Other component types have
// no busy time.
func (o *Object) Busy(from, to time.Time, maxInstances int) ([]Period, error) {
	var out []Period
	add := func(s, e time.Time, typ string) {
		if !from.IsZero() && s.Before(from) {
			s = from
		}
		if !to.IsZero() && e.After(to) {
			e = to
		}
		if e.After(s) {
			out = append(out, Period{Start: s.UTC(), End: e.UTC(), Type: typ})
		}
	}
	switch o.comp {
	case ical.CompEvent:
		err := o.each(from, to, newBudget(maxInstances), false, func(in *instance) bool {
			if typ := eventBusyType(in.t.c); typ != "" {
				add(in.start, in.end, typ)
			}
			return true
		})
		return out, err
	case ical.CompFreeBusy:
		for _, t := range o.timings() {
			for _, fb := range t.freebusy {
				if fb.typ != Free {
					s, e := o.periodSpan(fb.p)
					add(s, e, fb.typ)
				}
			}
		}
	}
	return out, nil
}

// eventBusyType is the FBTYPE of a VEVENT, or "" if it takes no time.
func eventBusyType(c *ical.Component) string {
	if p := c.Props.Get(ical.PropTransparency); p != nil && strings.EqualFold(p.Value, "TRANSPARENT") {
		return ""
	}
	status := ""
	if p := c.Props.Get(ical.PropStatus); p != nil {
		status = strings.ToUpper(p.Value)
	}
	switch status {
	case "CANCELLED":
		return ""
	case "TENTATIVE":
		return BusyTentative
	}
	return Busy
}

// MergeBusy sorts periods by start and joins those of the same type that
// overlap or touch. The result is a new slice.
func MergeBusy(periods []Period) []Period {
	ps := append([]Period(nil), periods...)
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Type != ps[j].Type {
			return ps[i].Type < ps[j].Type
		}
		return ps[i].Start.Before(ps[j].Start)
	})
	var out []Period
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Type == p.Type && !p.Start.After(out[n-1].End) {
			if p.End.After(out[n-1].End) {
				out[n-1].End = p.End
			}
			continue
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// FreeBusyInfo describes the VFREEBUSY that FreeBusyCalendar builds.
type FreeBusyInfo struct {
	// From and To are the queried range (DTSTART, DTEND).
	From, To time.Time
	// Stamp is DTSTAMP, from the caller's clock.
	Stamp time.Time
	// UID is the component's UID; empty: one derived from the others.
	UID string
	// Organizer and Attendee are calendar-user addresses (mailto:...).
	// With either, the calendar is an iTIP REPLY (METHOD:REPLY, RFC 5546
	// §3.3.2), as a schedule-outbox POST answers (RFC 6638 §5).
	Organizer, Attendee string
}

// FreeBusyCalendar builds the VCALENDAR of a free-busy-query answer (RFC
// 4791 §7.10) or a free/busy REPLY: one VFREEBUSY with a FREEBUSY
// property per period (merged first), FBTYPE given unless BUSY.
func FreeBusyCalendar(periods []Period, info FreeBusyInfo) *ical.Calendar {
	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, "-//Mailyard//DAV//EN")
	fb := ical.NewComponent(ical.CompFreeBusy)
	uid := info.UID
	if uid == "" {
		sum := sha256.Sum256([]byte(info.Organizer + "\x00" + info.Attendee + "\x00" + info.From.String() + "\x00" + info.To.String() + "\x00" + info.Stamp.String()))
		uid = hex.EncodeToString(sum[:12]) + "@freebusy"
	}
	fb.Props.SetText(ical.PropUID, uid)
	fb.Props.SetDateTime(ical.PropDateTimeStamp, info.Stamp.UTC())
	fb.Props.SetDateTime(ical.PropDateTimeStart, info.From.UTC())
	fb.Props.SetDateTime(ical.PropDateTimeEnd, info.To.UTC())
	if info.Organizer != "" || info.Attendee != "" {
		cal.Props.SetText(ical.PropMethod, "REPLY")
	}
	if info.Organizer != "" {
		fb.Props.Set(&ical.Prop{Name: ical.PropOrganizer, Params: ical.Params{}, Value: info.Organizer})
	}
	if info.Attendee != "" {
		fb.Props.Set(&ical.Prop{Name: ical.PropAttendee, Params: ical.Params{}, Value: info.Attendee})
	}
	for _, p := range MergeBusy(periods) {
		prop := ical.NewProp(ical.PropFreeBusy)
		if p.Type != Busy {
			prop.Params.Set(ical.ParamFreeBusyType, p.Type)
		}
		prop.Value = utcText(p.Start) + "/" + utcText(p.End)
		fb.Props.Add(prop)
	}
	cal.Children = append(cal.Children, fb)
	return cal
}

// utcText formats a UTC DATE-TIME with go-ical.
func utcText(t time.Time) string {
	p := ical.NewProp(ical.PropDateTimeStart)
	p.SetDateTime(t.UTC())
	return p.Value
}
