package ews

import (
	"errors"
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// prodID is the PRODID of the objects this package writes.
const prodID = "-//Mailyard//migration/ews//EN"

// sensitivity maps EWS Sensitivity to iCalendar CLASS (RFC 5545
// §3.8.1.3); Personal has no CLASS of its own and becomes PRIVATE.
var sensitivity = map[string]string{"Normal": "PUBLIC", "Personal": "PRIVATE", "Private": "PRIVATE", "Confidential": "CONFIDENTIAL"}

// partstat maps EWS ResponseType to PARTSTAT (RFC 5545 §3.2.12).
var partstat = map[string]string{
	"Accept": "ACCEPTED", "Organizer": "ACCEPTED", "Tentative": "TENTATIVE",
	"Decline": "DECLINED", "NoResponseReceived": "NEEDS-ACTION", "Unknown": "NEEDS-ACTION",
}

// busyStatus maps LegacyFreeBusyStatus to Outlook's
// X-MICROSOFT-CDO-BUSYSTATUS, which keeps the distinctions TRANSP loses.
var busyStatus = map[string]string{"Free": "FREE", "Tentative": "TENTATIVE", "Busy": "BUSY", "OOF": "OOF", "WorkingElsewhere": "WORKINGELSEWHERE", "NoData": "BUSY"}

// zoneRef is a time zone as an event uses it: the location and the TZID
// written for it.
type zoneRef struct {
	loc  *time.Location
	tzid string
}

func (z zoneRef) utc() bool { return z.loc == time.UTC }

// timeProp writes t as name: a DATE for all-day events, UTC for UTC, else
// local time with TZID (RFC 5545 §3.3.5 forms 1-3).
func timeProp(name string, t time.Time, z zoneRef, allDay bool) *ical.Prop {
	p := &ical.Prop{Name: name, Params: ical.Params{}}
	switch {
	case allDay:
		p.Params.Set(ical.ParamValue, string(ical.ValueDate))
		p.Value = t.In(z.loc).Format("20060102")
	case z.utc():
		p.Value = t.UTC().Format("20060102T150405Z")
	default:
		p.Params.Set(ical.ParamTimezoneID, z.tzid)
		p.Value = t.In(z.loc).Format("20060102T150405")
	}
	return p
}

// ToICalendar maps a calendar item to an iCalendar object (RFC 5545): a
// VEVENT with its recurrence (RRULE, EXDATE for deleted occurrences, an
// overriding VEVENT with RECURRENCE-ID for each modified occurrence) and a
// VTIMEZONE for each zone it uses. exceptions are the full items of the
// modified occurrences, where the caller fetched them (matched by
// OriginalStart); an occurrence without one keeps the master's
// properties at its new time.
func ToICalendar(ci *CalendarItem, exceptions []*CalendarItem) (*ical.Calendar, error) {
	if ci.Start == nil || ci.End == nil {
		return nil, errors.New("ews: calendar item without start or end")
	}
	start, err := zoneOf(ci.StartTimeZone)
	if err != nil {
		return nil, err
	}
	end := start
	if ci.EndTimeZone != nil && ci.EndTimeZone.ID != "" && (ci.StartTimeZone == nil || ci.EndTimeZone.ID != ci.StartTimeZone.ID) {
		if end, err = zoneOf(ci.EndTimeZone); err != nil {
			return nil, err
		}
	}
	allDay := ci.IsAllDayEvent != nil && *ci.IsAllDayEvent
	uid := ci.UID
	if uid == "" && ci.ItemID != nil {
		uid = ci.ItemID.ID
	}
	if uid == "" {
		return nil, errors.New("ews: calendar item without UID or ItemId")
	}

	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, prodID)
	var rule string
	if ci.Recurrence != nil {
		if rule, err = RRule(ci.Recurrence, ci.Start.In(start.loc), allDay); err != nil {
			return nil, err
		}
		ci = seriesStart(ci, rule, start.loc)
	}
	master := eventOf(ci, uid, start, end, allDay)
	if ci.Recurrence != nil {
		master.Props.Set(&ical.Prop{Name: ical.PropRecurrenceRule, Params: ical.Params{}, Value: rule})
		if ci.DeletedOccurrences != nil {
			for _, d := range ci.DeletedOccurrences.DeletedOccurrence {
				master.Props.Add(timeProp(ical.PropExceptionDates, d.Start, start, allDay))
			}
		}
	}
	cal.Children = append(cal.Children, master)
	if ci.Recurrence != nil && ci.ModifiedOccurrences != nil {
		for _, o := range ci.ModifiedOccurrences.Occurrence {
			cal.Children = append(cal.Children, override(ci, o, exceptions, uid, start, end, allDay))
		}
	}
	if !allDay {
		for _, z := range []zoneRef{start, end} {
			if !z.utc() && !hasZone(cal, z.tzid) {
				cal.Children = append([]*ical.Component{VTimezone(z.loc, z.tzid, *ci.Start)}, cal.Children...)
			}
		}
	}
	return cal, nil
}

// seriesStart returns ci with its start moved to the series' first
// occurrence. EWS counts a series' occurrences from the first day its
// pattern matches on or after Start, which need not be Start itself (a
// "second Tuesday" series entered on a Wednesday), while iCalendar's
// DTSTART is always the first instance (RFC 5545 §3.8.5.3) and counts
// towards COUNT; so DTSTART must be that first match. rule is
// evaluated in loc's wall time, as EWS expands a series.
func seriesStart(ci *CalendarItem, rule string, loc *time.Location) *CalendarItem {
	opt, err := rrule.StrToROption(rule)
	if err != nil {
		return ci
	}
	opt.Dtstart = ci.Start.In(loc)
	r, err := rrule.NewRRule(*opt)
	if err != nil {
		return ci
	}
	first := r.After(opt.Dtstart, true)
	if first.IsZero() || first.Equal(*ci.Start) {
		return ci
	}
	moved := *ci
	s, e := first, first.Add(ci.End.Sub(*ci.Start))
	moved.Start, moved.End = &s, &e
	return &moved
}

func hasZone(cal *ical.Calendar, tzid string) bool {
	for _, c := range cal.Children {
		if c.Name == ical.CompTimezone && c.Props.Get(ical.PropTimezoneID).Value == tzid {
			return true
		}
	}
	return false
}

func zoneOf(def *TimeZoneDefinition) (zoneRef, error) {
	loc, tzid, err := Location(def)
	if err != nil {
		return zoneRef{}, err
	}
	if tzid == "UTC" || tzid == "Etc/UTC" {
		loc = time.UTC
	}
	return zoneRef{loc: loc, tzid: tzid}, nil
}

// override is the VEVENT of a modified occurrence: the full exception
// item when there is one, else the master's properties at the new time.
func override(ci *CalendarItem, o Occurrence, exceptions []*CalendarItem, uid string, start, end zoneRef, allDay bool) *ical.Component {
	src := *ci
	for _, e := range exceptions {
		if e.OriginalStart != nil && e.OriginalStart.Equal(o.OriginalStart) {
			src = *e
		}
	}
	src.Start, src.End = &o.Start, &o.End
	ev := eventOf(&src, uid, start, end, allDay)
	ev.Props.Set(timeProp(ical.PropRecurrenceID, o.OriginalStart, start, allDay))
	return ev
}

// eventOf is a VEVENT with ci's properties, without recurrence.
func eventOf(ci *CalendarItem, uid string, start, end zoneRef, allDay bool) *ical.Component {
	ev := ical.NewComponent(ical.CompEvent)
	ev.Props.SetText(ical.PropUID, uid)
	stamp := *ci.Start
	if ci.LastModifiedTime != nil {
		stamp = *ci.LastModifiedTime
		ev.Props.SetDateTime(ical.PropLastModified, stamp.UTC())
	}
	ev.Props.SetDateTime(ical.PropDateTimeStamp, stamp.UTC())
	ev.Props.Set(timeProp(ical.PropDateTimeStart, *ci.Start, start, allDay))
	ev.Props.Set(timeProp(ical.PropDateTimeEnd, *ci.End, end, allDay))
	setText(ev, ical.PropSummary, ci.Subject)
	setText(ev, ical.PropLocation, ci.Location)
	if ci.Body != nil && strings.TrimSpace(ci.Body.Text) != "" {
		if strings.EqualFold(ci.Body.Type, "HTML") {
			setText(ev, ical.PropDescription, htmlText(ci.Body.Text))
			alt := &ical.Prop{Name: "X-ALT-DESC", Params: ical.Params{}, Value: ci.Body.Text}
			alt.Params.Set(ical.ParamFormatType, "text/html")
			ev.Props.Set(alt)
		} else {
			setText(ev, ical.PropDescription, ci.Body.Text)
		}
	}
	if c, ok := sensitivity[ci.Sensitivity]; ok {
		ev.Props.SetText(ical.PropClass, c)
	}
	if b, ok := busyStatus[ci.LegacyFreeBusyStatus]; ok {
		ev.Props.Set(&ical.Prop{Name: "X-MICROSOFT-CDO-BUSYSTATUS", Params: ical.Params{}, Value: b})
		transp := "OPAQUE"
		if b == "FREE" {
			transp = "TRANSPARENT"
		}
		ev.Props.SetText(ical.PropTransparency, transp)
	}
	if ci.IsCancelled != nil && *ci.IsCancelled {
		ev.Props.SetText(ical.PropStatus, "CANCELLED")
	}
	if ci.Categories != nil && len(ci.Categories.String) > 0 {
		p := &ical.Prop{Name: ical.PropCategories, Params: ical.Params{}}
		p.SetTextList(ci.Categories.String)
		ev.Props.Set(p)
	}
	if ci.Organizer != nil && ci.Organizer.Mailbox.EmailAddress != "" {
		ev.Props.Set(calAddress(ical.PropOrganizer, ci.Organizer.Mailbox))
	}
	for _, a := range attendeeProps(ci) {
		ev.Props.Add(a)
	}
	if ci.ReminderIsSet != nil && *ci.ReminderIsSet && ci.ReminderMinutesBeforeStart != nil {
		ev.Children = append(ev.Children, alarm(*ci.ReminderMinutesBeforeStart))
	}
	return ev
}

func setText(c *ical.Component, name, v string) {
	if v != "" {
		c.Props.SetText(name, v)
	}
}

func calAddress(name string, m EmailAddress) *ical.Prop {
	p := &ical.Prop{Name: name, Params: ical.Params{}, Value: "mailto:" + m.EmailAddress}
	if m.Name != "" {
		p.Params.Set(ical.ParamCommonName, m.Name)
	}
	return p
}

func attendeeProps(ci *CalendarItem) []*ical.Prop {
	var out []*ical.Prop
	add := func(list *Attendees, role, cutype string) {
		if list == nil {
			return
		}
		for _, a := range list.Attendee {
			if a.Mailbox.EmailAddress == "" {
				continue
			}
			p := calAddress(ical.PropAttendee, a.Mailbox)
			p.Params.Set(ical.ParamRole, role)
			if cutype != "" {
				p.Params.Set(ical.ParamCalendarUserType, cutype)
			}
			ps, ok := partstat[a.ResponseType]
			if !ok {
				ps = "NEEDS-ACTION"
			}
			p.Params.Set(ical.ParamParticipationStatus, ps)
			out = append(out, p)
		}
	}
	add(ci.RequiredAttendees, "REQ-PARTICIPANT", "")
	add(ci.OptionalAttendees, "OPT-PARTICIPANT", "")
	add(ci.Resources, "NON-PARTICIPANT", "RESOURCE")
	return out
}

// alarm is a display reminder minutes before the start (RFC 5545 §3.6.6).
func alarm(minutes int) *ical.Component {
	a := ical.NewComponent(ical.CompAlarm)
	a.Props.SetText(ical.PropAction, "DISPLAY")
	a.Props.SetText(ical.PropDescription, "Reminder")
	// RFC 5545 §3.3.6 dur-minute; go-ical would write seconds.
	a.Props.Set(&ical.Prop{Name: ical.PropTrigger, Params: ical.Params{}, Value: fmt.Sprintf("-PT%dM", minutes)})
	return a
}

// htmlText is the text of an HTML body: tags dropped, entities decoded,
// block ends as line breaks.
func htmlText(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			break
		}
		tag := strings.ToLower(strings.TrimLeft(s[i+1:i+j], "/ "))
		if strings.HasPrefix(tag, "br") || strings.HasPrefix(tag, "p") || strings.HasPrefix(tag, "div") {
			b.WriteByte('\n')
		}
		s = s[i+j+1:]
	}
	return strings.TrimSpace(html.UnescapeString(b.String()))
}

// FromICalendar maps an iCalendar object back to a calendar item for
// CreateItem or UpdateItem: the master VEVENT's properties, its RRULE as
// a recurrence pattern (ErrNotRepresentable where EWS has none), EXDATEs
// as deleted and overriding VEVENTs as modified occurrences. Time zones
// are IANA names or Windows ids; the item names the Windows zone.
func FromICalendar(cal *ical.Calendar) (*CalendarItem, error) {
	var master *ical.Component
	var overrides []*ical.Component
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		if c.Props.Get(ical.PropRecurrenceID) != nil {
			overrides = append(overrides, c)
		} else if master == nil {
			master = c
		}
	}
	if master == nil {
		return nil, errors.New("ews: no VEVENT without RECURRENCE-ID")
	}
	start, z, allDay, err := readTime(master.Props.Get(ical.PropDateTimeStart))
	if err != nil {
		return nil, fmt.Errorf("ews: DTSTART: %w", err)
	}
	end, err := endOf(master, start, allDay)
	if err != nil {
		return nil, err
	}
	ci := &CalendarItem{Start: &start, End: &end, IsAllDayEvent: &allDay}
	if uid := master.Props.Get(ical.PropUID); uid != nil {
		ci.UID = uid.Value
	}
	win, ok := WindowsZone(z, start.Year())
	if !ok {
		return nil, fmt.Errorf("%w: no Windows zone for %s", ErrUnknownZone, z)
	}
	ci.StartTimeZone, ci.EndTimeZone = &TimeZoneDefinition{ID: win}, &TimeZoneDefinition{ID: win}
	readProps(master, ci)
	if rr := master.Props.Get(ical.PropRecurrenceRule); rr != nil {
		if ci.Recurrence, err = RecurrenceOf(rr.Value, start.In(z)); err != nil {
			return nil, err
		}
		if err := readExceptions(master, overrides, ci); err != nil {
			return nil, err
		}
	}
	return ci, nil
}

func endOf(ev *ical.Component, start time.Time, allDay bool) (time.Time, error) {
	if p := ev.Props.Get(ical.PropDateTimeEnd); p != nil {
		end, _, _, err := readTime(p)
		if err != nil {
			return time.Time{}, fmt.Errorf("ews: DTEND: %w", err)
		}
		return end, nil
	}
	if p := ev.Props.Get(ical.PropDuration); p != nil {
		d, err := p.Duration()
		if err != nil {
			return time.Time{}, fmt.Errorf("ews: DURATION: %w", err)
		}
		return start.Add(d), nil
	}
	if allDay {
		return start.AddDate(0, 0, 1), nil
	}
	return start, nil
}

func readExceptions(master *ical.Component, overrides []*ical.Component, ci *CalendarItem) error {
	for _, p := range master.Props.Values(ical.PropExceptionDates) {
		for _, v := range strings.Split(p.Value, ",") {
			q := p
			q.Value = v
			t, _, _, err := readTime(&q)
			if err != nil {
				return fmt.Errorf("ews: EXDATE: %w", err)
			}
			if ci.DeletedOccurrences == nil {
				ci.DeletedOccurrences = &DeletedOccurrences{}
			}
			ci.DeletedOccurrences.DeletedOccurrence = append(ci.DeletedOccurrences.DeletedOccurrence, DeletedOccurrence{Start: t})
		}
	}
	for _, o := range overrides {
		rid, _, _, err := readTime(o.Props.Get(ical.PropRecurrenceID))
		if err != nil {
			return fmt.Errorf("ews: RECURRENCE-ID: %w", err)
		}
		s, _, allDay, err := readTime(o.Props.Get(ical.PropDateTimeStart))
		if err != nil {
			return fmt.Errorf("ews: override DTSTART: %w", err)
		}
		e, err := endOf(o, s, allDay)
		if err != nil {
			return err
		}
		if ci.ModifiedOccurrences == nil {
			ci.ModifiedOccurrences = &Occurrences{}
		}
		ci.ModifiedOccurrences.Occurrence = append(ci.ModifiedOccurrences.Occurrence, Occurrence{Start: s, End: e, OriginalStart: rid})
	}
	return nil
}

// readTime reads a DATE or DATE-TIME property: its instant, the zone it
// is in (UTC for UTC and floating times and dates) and whether it is a
// DATE. A TZID is an IANA name or a Windows id.
func readTime(p *ical.Prop) (time.Time, *time.Location, bool, error) {
	if p == nil {
		return time.Time{}, nil, false, errors.New("missing")
	}
	loc := time.UTC
	if tzid := p.Params.Get(ical.ParamTimezoneID); tzid != "" {
		if iana, ok := IANAZone(tzid); ok {
			tzid = iana
		}
		l, err := time.LoadLocation(tzid)
		if err != nil {
			return time.Time{}, nil, false, fmt.Errorf("%w: TZID %q", ErrUnknownZone, tzid)
		}
		loc = l
	}
	v := strings.TrimSpace(p.Value)
	switch {
	case len(v) == 8:
		t, err := time.ParseInLocation("20060102", v, loc)
		return t, loc, true, err
	case strings.HasSuffix(v, "Z"):
		t, err := time.Parse("20060102T150405Z", v)
		return t, time.UTC, false, err
	}
	t, err := time.ParseInLocation("20060102T150405", v, loc)
	return t, loc, false, err
}

// readProps reads the descriptive properties of ev into ci.
func readProps(ev *ical.Component, ci *CalendarItem) {
	text := func(name string) string {
		if p := ev.Props.Get(name); p != nil {
			if s, err := p.Text(); err == nil {
				return s
			}
		}
		return ""
	}
	ci.Subject, ci.Location = text(ical.PropSummary), text(ical.PropLocation)
	if alt := ev.Props.Get("X-ALT-DESC"); alt != nil && alt.Params.Get(ical.ParamFormatType) == "text/html" {
		ci.Body = &Body{Type: "HTML", Text: alt.Value}
	} else if d := text(ical.PropDescription); d != "" {
		ci.Body = &Body{Type: "Text", Text: d}
	}
	switch text(ical.PropClass) {
	case "PUBLIC":
		ci.Sensitivity = "Normal"
	case "PRIVATE":
		ci.Sensitivity = "Private"
	case "CONFIDENTIAL":
		ci.Sensitivity = "Confidential"
	}
	ci.LegacyFreeBusyStatus = "Busy"
	if text(ical.PropTransparency) == "TRANSPARENT" {
		ci.LegacyFreeBusyStatus = "Free"
	}
	for ews, x := range busyStatus {
		if x == text("X-MICROSOFT-CDO-BUSYSTATUS") && ews != "NoData" {
			ci.LegacyFreeBusyStatus = ews
		}
	}
	if p := ev.Props.Get(ical.PropCategories); p != nil {
		if list, err := p.TextList(); err == nil && len(list) > 0 {
			ci.Categories = &Strings{String: list}
		}
	}
	if p := ev.Props.Get(ical.PropOrganizer); p != nil {
		ci.Organizer = &Recipient{Mailbox: addressOf(p)}
	}
	readAttendees(ev, ci)
	for _, a := range ev.Children {
		if a.Name != ical.CompAlarm {
			continue
		}
		if tr := a.Props.Get(ical.PropTrigger); tr != nil {
			if d, err := tr.Duration(); err == nil && d <= 0 {
				set, minutes := true, int(-d/time.Minute)
				ci.ReminderIsSet, ci.ReminderMinutesBeforeStart = &set, &minutes
				break
			}
		}
	}
}

func addressOf(p *ical.Prop) EmailAddress {
	addr := p.Value
	if len(addr) > 7 && strings.EqualFold(addr[:7], "mailto:") {
		addr = addr[7:]
	}
	return EmailAddress{Name: p.Params.Get(ical.ParamCommonName), EmailAddress: addr, RoutingType: "SMTP"}
}

func readAttendees(ev *ical.Component, ci *CalendarItem) {
	for _, p := range ev.Props.Values(ical.PropAttendee) {
		a := Attendee{Mailbox: addressOf(&p)}
		for ews, ps := range partstat {
			if ps == p.Params.Get(ical.ParamParticipationStatus) && ews != "Organizer" && ews != "Unknown" {
				a.ResponseType = ews
			}
		}
		list := &ci.RequiredAttendees
		switch {
		case p.Params.Get(ical.ParamCalendarUserType) == "RESOURCE":
			list = &ci.Resources
		case p.Params.Get(ical.ParamRole) == "OPT-PARTICIPANT":
			list = &ci.OptionalAttendees
		}
		if *list == nil {
			*list = &Attendees{}
		}
		(*list).Attendee = append((*list).Attendee, a)
	}
}

// Encode renders cal as iCalendar text.
func Encode(cal *ical.Calendar) ([]byte, error) {
	var b strings.Builder
	if err := ical.NewEncoder(&b).Encode(cal); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}
