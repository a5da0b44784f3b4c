package calendar

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-ical"
)

// Object is a parsed, validated calendar object resource (RFC 4791 §4.1):
// one VCALENDAR holding the components of one UID (a master and the
// instances it overrides), of one type, and the VTIMEZONEs they use.
//
// An Object is not modified by its methods and may be used from several
// goroutines at once; the *ical.Calendar that Calendar returns must not
// be modified.
type Object struct {
	cal       *ical.Calendar
	uid       string
	comp      string
	master    *timing   // nil when the object holds only overridden instances
	overrides []*timing // components with a RECURRENCE-ID
	vtz       map[string]*vtimezone
	floating  zone
	// hasFloating: some time of the object is floating or a DATE.
	hasFloating bool
	lim         Limits
	bounds      *boundsCache
}

type boundsCache struct {
	once       sync.Once
	start, end time.Time
}

// Parse decodes an iCalendar object resource with go-ical and checks it
// against RFC 4791 §4.1 and lim: exactly one VCALENDAR with VERSION:2.0
// and no METHOD; one component type (VEVENT, VTODO, VJOURNAL or
// VFREEBUSY) besides VTIMEZONEs; one UID shared by the master and its
// overridden instances, whose RECURRENCE-IDs differ; valid dates, times,
// durations and recurrence rules; every TZID resolvable. Any failure is
// a *PreconditionError naming the CalDAV precondition.
func Parse(data []byte, lim Limits) (*Object, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxSize {
		return nil, precondition(CondMaxSize, "%d bytes, more than %d", len(data), lim.MaxSize)
	}
	if err := checkSyntaxLimits(data); err != nil {
		return nil, invalidData(err)
	}
	cal, err := decodeOne(data)
	if err != nil {
		return nil, err
	}
	o := &Object{cal: cal, vtz: map[string]*vtimezone{}, floating: utcZone, lim: lim, bounds: &boundsCache{}}
	if err := o.checkCalendar(); err != nil {
		return nil, err
	}
	if err := o.readComponentsSafely(); err != nil {
		return nil, err
	}
	return o, nil
}

// readComponentsSafely turns a panic in rrule-go, which has panicked on
// dates it does not expect, into invalid data.
func (o *Object) readComponentsSafely() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = invalidData(fmt.Errorf("recurrence rule: %v", r))
		}
	}()
	return o.readComponents()
}

// decodeOne decodes exactly one VCALENDAR. go-ical panics on some
// malformed content lines (a parameter with nothing after its "=", as in
// "X;A="); such data is invalid, not a crash.
func decodeOne(data []byte) (cal *ical.Calendar, err error) {
	defer func() {
		if r := recover(); r != nil {
			cal, err = nil, invalidData(fmt.Errorf("malformed content line: %v", r))
		}
	}()
	dec := ical.NewDecoder(bytes.NewReader(data))
	if cal, err = dec.Decode(); err != nil {
		return nil, invalidData(err)
	}
	switch _, err := dec.Decode(); {
	case errors.Is(err, io.EOF):
		return cal, nil
	case err == nil:
		return nil, precondition(CondValidObject, "more than one VCALENDAR")
	default:
		return nil, invalidData(fmt.Errorf("after the VCALENDAR: %w", err))
	}
}

func (o *Object) checkCalendar() error {
	props := o.cal.Props
	if v := props.Get(ical.PropVersion); v == nil || strings.TrimSpace(v.Value) != "2.0" {
		return precondition(CondValidData, "VERSION:2.0 missing")
	}
	if props.Get(ical.PropMethod) != nil {
		return precondition(CondValidObject, "METHOD is not allowed in a stored object (RFC 4791 §4.1)")
	}
	if n := len(o.cal.Children); n > o.lim.MaxComponents {
		return precondition(CondValidObject, "%d components, more than %d", n, o.lim.MaxComponents)
	}
	return nil
}

// readComponents reads the VTIMEZONEs first (the others refer to them),
// then the components of the object's one type.
func (o *Object) readComponents() error {
	var main []*ical.Component
	for _, c := range o.cal.Children {
		switch c.Name {
		case ical.CompTimezone:
			v, err := o.lim.Zones.zone(c)
			if err != nil {
				return invalidData(err)
			}
			if _, dup := o.vtz[v.id]; dup {
				return precondition(CondValidObject, "two VTIMEZONEs with TZID %q", v.id)
			}
			o.vtz[v.id] = v
		case ical.CompEvent, ical.CompToDo, ical.CompJournal, ical.CompFreeBusy:
			if o.comp != "" && o.comp != c.Name {
				return precondition(CondValidObject, "both %s and %s in one object", o.comp, c.Name)
			}
			o.comp = c.Name
			main = append(main, c)
		default:
			return precondition(CondSupportedComponent, "component %s is not supported", c.Name)
		}
	}
	if len(main) == 0 {
		return precondition(CondValidObject, "no VEVENT, VTODO, VJOURNAL or VFREEBUSY")
	}
	resolve := o.parseResolver()
	seen := map[int64]bool{}
	for _, c := range main {
		if err := o.checkIdentity(c); err != nil {
			return err
		}
		t, err := readTiming(c, resolve)
		if err != nil {
			return invalidData(err)
		}
		o.hasFloating = o.hasFloating || t.floating
		if !t.hasRID {
			if o.master != nil {
				return precondition(CondValidObject, "two %s components without RECURRENCE-ID", c.Name)
			}
			o.master = t
			continue
		}
		key := o.instant(t.rid).Unix()
		if seen[key] {
			return precondition(CondValidObject, "two components with RECURRENCE-ID %s", t.rid.wall.Format(time.DateTime))
		}
		seen[key] = true
		o.overrides = append(o.overrides, t)
	}
	return nil
}

// checkIdentity: one UID, the same in every component (RFC 4791 §4.1),
// and no more attendees than allowed (RFC 4791 §5.2.9).
func (o *Object) checkIdentity(c *ical.Component) error {
	uids := c.Props.Values(ical.PropUID)
	if len(uids) != 1 || uids[0].Value == "" {
		return precondition(CondValidObject, "%s needs exactly one UID", c.Name)
	}
	if o.uid == "" {
		o.uid = uids[0].Value
	} else if uids[0].Value != o.uid {
		return precondition(CondValidObject, "UIDs %q and %q in one object", o.uid, uids[0].Value)
	}
	if n := len(c.Props.Values(ical.PropAttendee)); n > o.lim.MaxAttendees {
		return precondition(CondMaxAttendees, "%d attendees, more than %d", n, o.lim.MaxAttendees)
	}
	return nil
}

// parseResolver resolves a TZID while parsing: the object's VTIMEZONE,
// else an IANA name.
func (o *Object) parseResolver() resolver {
	iana := map[string]zone{}
	return func(tzid string) (zone, error) {
		if v, ok := o.vtz[tzid]; ok {
			return v, nil
		}
		if z, ok := iana[tzid]; ok {
			return z, nil
		}
		z, err := loadIANA(tzid)
		if err != nil {
			return nil, err
		}
		iana[tzid] = z
		return z, nil
	}
}

// resolve is the resolver for later lookups (prop-filter time-ranges).
func (o *Object) resolve(tzid string) (zone, error) {
	if v, ok := o.vtz[tzid]; ok {
		return v, nil
	}
	return loadIANA(tzid)
}

func loadIANA(tzid string) (zone, error) {
	if tzid == "" || tzid == "Local" {
		return nil, fmt.Errorf("unknown time zone %q", tzid)
	}
	loc, err := time.LoadLocation(tzid)
	if err != nil {
		return nil, fmt.Errorf("time zone %q is neither in a VTIMEZONE nor an IANA name", tzid)
	}
	return locZone{loc}, nil
}

// UID returns the object's UID.
func (o *Object) UID() string { return o.uid }

// Component returns the object's component type: VEVENT, VTODO, VJOURNAL
// or VFREEBUSY.
func (o *Object) Component() string { return o.comp }

// Calendar returns the decoded calendar. It must not be modified.
func (o *Object) Calendar() *ical.Calendar { return o.cal }

// InZone returns the object with floating times and DATE values read in
// loc (nil: UTC), for a calendar whose CALDAV:calendar-timezone is loc
// (RFC 4791 §9.9). The receiver is unchanged; Bounds is the same for
// both, since it holds in every zone.
func (o *Object) InZone(loc *time.Location) *Object {
	if loc == nil {
		loc = time.UTC
	}
	c := *o
	c.floating = locZone{loc}
	return &c
}

// HasFloating reports whether some time of the object is floating or a
// DATE (an all-day value), so that where it falls depends on the zone
// InZone or InTimezone gives it.
func (o *Object) HasFloating() bool { return o.hasFloating }

// instant places a value on the time line.
func (o *Object) instant(v dtValue) time.Time {
	return toInstant(o.zoneOf(v), v.wall)
}

// zoneOf is the zone a value's wall time is read in.
func (o *Object) zoneOf(v dtValue) zone {
	switch v.kind {
	case kindUTC:
		return utcZone
	case kindZoned:
		return v.zone
	}
	return o.floating
}
