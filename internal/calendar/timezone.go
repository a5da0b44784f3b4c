package calendar

import "github.com/emersion/go-ical"

// Timezone is a calendar collection's time zone, its
// CALDAV:calendar-timezone (RFC 4791 §5.2.2): where the floating times
// and DATE values of its objects are read when a query names no zone
// (§7.3).
type Timezone struct {
	id string
	z  zone
}

// ParseTimezone reads a calendar-timezone value: an iCalendar object
// holding exactly one VTIMEZONE and no other component (RFC 4791
// §5.2.2). Any failure is a *PreconditionError (valid-calendar-data).
// The caller bounds len(data).
func ParseTimezone(data []byte) (*Timezone, error) {
	if err := checkSyntaxLimits(data); err != nil {
		return nil, invalidData(err)
	}
	cal, err := decodeOne(data)
	if err != nil {
		return nil, err
	}
	if len(cal.Children) != 1 || cal.Children[0].Name != ical.CompTimezone {
		return nil, precondition(CondValidData, "calendar-timezone must hold exactly one VTIMEZONE")
	}
	v, err := parseVTimezone(cal.Children[0])
	if err != nil {
		return nil, invalidData(err)
	}
	return &Timezone{id: v.id, z: v}, nil
}

// ID returns the VTIMEZONE's TZID.
func (tz *Timezone) ID() string { return tz.id }

// InTimezone is [Object.InZone] for a calendar-timezone.
func (o *Object) InTimezone(tz *Timezone) *Object {
	c := *o
	c.floating = tz.z
	return &c
}
