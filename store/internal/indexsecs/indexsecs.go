// Package indexsecs encodes the time-range index's bounds (store.Object's
// Start and End) as the integer columns the SQL backends keep: Unix
// seconds (store.IndexBounds has made them whole seconds within the years
// 1 to 9999), with an unbounded side as the extreme int64 rather than
// NULL, so that the overlap test is two plain comparisons an index can
// answer: first_start < to AND last_end > from.
package indexsecs

import (
	"math"
	"time"
)

// Sentinels of an unbounded start and end.
const (
	UnboundedStart = math.MinInt64
	UnboundedEnd   = math.MaxInt64
)

// Start is the first_start column for an object's Start.
func Start(t time.Time) int64 {
	if t.IsZero() {
		return UnboundedStart
	}
	return t.Unix()
}

// End is the last_end column for an object's End.
func End(t time.Time) int64 {
	if t.IsZero() {
		return UnboundedEnd
	}
	return t.Unix()
}

// Time reads first_start or last_end back: a sentinel is the zero time
// (unbounded).
func Time(s int64) time.Time {
	if s == UnboundedStart || s == UnboundedEnd {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}
