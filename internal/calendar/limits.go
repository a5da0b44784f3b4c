package calendar

// Defaults applied by Parse to zero Limits fields.
const (
	DefaultMaxSize         = 1 << 20
	DefaultMaxAttendees    = 1000
	DefaultMaxComponents   = 1000
	DefaultBoundsInstances = 1000
	// DefaultMaxInstances is what a method uses when its maxInstances
	// argument is zero or negative.
	DefaultMaxInstances = 10000
)

// The syntax limits Parse checks before go-ical sees the data: nesting
// depth and the length of a content line's name-and-parameters part
// (go-ical's parameter reader is quadratic in a parameter's length).
const (
	maxDepth        = 8
	maxParamSection = 8 << 10
	maxParamWork    = 1 << 27 // sum of squared parameter-section lengths
)

// Limits bound what Parse accepts. A zero field takes its default.
type Limits struct {
	// MaxSize is the largest object resource in bytes (RFC 4791 §5.2.5).
	MaxSize int
	// MaxAttendees is the most ATTENDEE properties one component may
	// have (RFC 4791 §5.2.9).
	MaxAttendees int
	// MaxComponents is the most components (overrides and VTIMEZONEs
	// included) an object may have.
	MaxComponents int
	// BoundsInstances is how many instances Bounds expands to find the
	// last one of a COUNT- or UNTIL-bounded series before it settles for
	// a wider bound (unbounded for COUNT, UNTIL plus the longest duration
	// for UNTIL).
	BoundsInstances int
	// Zones, if not nil, shares parsed VTIMEZONE definitions between
	// the objects parsed with it (see ZoneCache).
	Zones *ZoneCache
}

func (l Limits) withDefaults() Limits {
	if l.MaxSize <= 0 {
		l.MaxSize = DefaultMaxSize
	}
	if l.MaxAttendees <= 0 {
		l.MaxAttendees = DefaultMaxAttendees
	}
	if l.MaxComponents <= 0 {
		l.MaxComponents = DefaultMaxComponents
	}
	if l.BoundsInstances <= 0 {
		l.BoundsInstances = DefaultBoundsInstances
	}
	return l
}

// budget counts the instances a call may still generate.
type budget struct{ left int }

func newBudget(maxInstances int) *budget {
	if maxInstances <= 0 {
		maxInstances = DefaultMaxInstances
	}
	return &budget{left: maxInstances}
}

func (b *budget) take() error {
	if b.left <= 0 {
		return ErrTooManyInstances
	}
	b.left--
	return nil
}
