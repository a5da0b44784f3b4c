package store

import (
	"fmt"
	"strings"
	"time"
)

// maxComponentLen is the longest component name the store accepts.
const maxComponentLen = 64

// The years the store keeps bounds in: iCalendar's DATE and DATE-TIME
// have four-digit years (RFC 5545 §3.3.4, §3.3.5), so an instance outside
// them only comes from a recurrence running off the calendar.
var (
	minBound = time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)
	maxBound = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// CanonicalComponent validates a component name and returns the form the
// store keeps: upper case (RFC 5545 §2: names are case-insensitive). An
// empty name stays empty (unknown component). Anything but ASCII letters,
// digits and "-" (RFC 5545 §3.1 iana-token, x-name), or more than 64
// bytes, is ErrInvalid.
func CanonicalComponent(c string) (string, error) {
	if len(c) > maxComponentLen {
		return "", fmt.Errorf("%w: component name of %d bytes (at most %d)", ErrInvalid, len(c), maxComponentLen)
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-') {
			return "", fmt.Errorf("%w: component name %q: only letters, digits and '-'", ErrInvalid, c)
		}
	}
	return strings.ToUpper(c), nil
}

// IndexBounds returns an object's Start and End as the store keeps them,
// widened, never narrowed, so that they still hold every instance:
//
//  1. in UTC and to whole seconds, Start rounded down and End rounded up;
//  2. a Start before the year 1 becomes zero (unbounded) and one after
//     the year 9999 its last second;
//  3. an End after the year 9999 becomes zero (unbounded) and one before
//     the first second of the year 1 that second.
//
// Zero bounds stay zero. An End before Start (both non-zero) is
// ErrInvalid.
func IndexBounds(start, end time.Time) (time.Time, time.Time, error) {
	if !start.IsZero() && !end.IsZero() && end.Before(start) {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: object ends (%v) before it starts (%v)", ErrInvalid, end, start)
	}
	if !start.IsZero() {
		switch {
		case start.Before(minBound):
			start = time.Time{}
		case start.After(maxBound):
			start = maxBound
		default:
			start = time.Unix(start.Unix(), 0).UTC()
		}
	}
	if !end.IsZero() {
		switch {
		case end.After(maxBound):
			end = time.Time{}
		case end.Before(minBound):
			end = minBound
		default:
			sec := end.Unix()
			if end.Nanosecond() != 0 {
				sec++
			}
			end = time.Unix(sec, 0).UTC()
		}
	}
	return start, end, nil
}

// CanonicalObject returns o with its Component and bounds in the form
// the store keeps (CanonicalComponent, IndexBounds), or ErrInvalid.
// Backends call it in PutObject.
func CanonicalObject(o Object) (Object, error) {
	comp, err := CanonicalComponent(o.Component)
	if err != nil {
		return o, err
	}
	start, end, err := IndexBounds(o.Start, o.End)
	if err != nil {
		return o, err
	}
	o.Component, o.Start, o.End = comp, start, end
	return o, nil
}

// CanonicalQuery returns q with its Component in the form the store keeps
// and its Limit in 1..MaxObjectQueryLimit, or ErrInvalid for a bad
// Component or a To not after From (both set; RFC 4791 §9.9 requires end
// after start). Its Contains clauses come back with their texts' ASCII
// letters in lower case and without those every object satisfies (a
// clause holding an empty text); a clause nothing satisfies or more than
// MaxContainsTexts texts is ErrInvalid. Backends call it in QueryObjects.
func CanonicalQuery(q ObjectQuery) (ObjectQuery, error) {
	comp, err := CanonicalComponent(q.Component)
	if err != nil {
		return q, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return q, fmt.Errorf("%w: time range ends (%v) before it starts (%v)", ErrInvalid, q.To, q.From)
	}
	q.Component = comp
	if q.Contains, err = canonicalContains(q.Contains); err != nil {
		return q, err
	}
	if q.Limit <= 0 || q.Limit > MaxObjectQueryLimit {
		q.Limit = MaxObjectQueryLimit
	}
	return q, nil
}

// ComponentMatches reports whether an object of component comp is
// selected by a query for component want: want is empty (any
// component), comp is empty (unknown: it may be any), or they are equal.
// Both are in the form CanonicalComponent returns.
func ComponentMatches(comp, want string) bool {
	return want == "" || comp == "" || comp == want
}

// Overlaps reports whether an object bounded by o.Start and o.End
// overlaps the range [from, to), a zero time being unbounded on its side:
// Start < to and End > from, each true when either of its two times is
// zero. A range that only touches the object (End == from, or
// Start == to) does not overlap it: RFC 4791 §9.9 compares instances
// with a half-open range.
func (o Object) Overlaps(from, to time.Time) bool {
	return (o.Start.IsZero() || to.IsZero() || o.Start.Before(to)) &&
		(o.End.IsZero() || from.IsZero() || o.End.After(from))
}
