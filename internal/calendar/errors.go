package calendar

import (
	"errors"
	"fmt"
)

// ErrTooManyInstances means that answering would take more recurrence
// instances than the caller allowed (maxInstances). A CalDAV server
// answers it with the CALDAV:max-instances precondition or 403 (RFC 4791
// §5.2.8).
var ErrTooManyInstances = errors.New("calendar: too many recurrence instances")

// Precondition names of RFC 4791 that Parse reports.
const (
	// CondValidData: not valid iCalendar (RFC 4791 §5.3.2.1).
	CondValidData = "valid-calendar-data"
	// CondValidObject: valid iCalendar that breaks RFC 4791 §4.1.
	CondValidObject = "valid-calendar-object-resource"
	// CondSupportedComponent: a component type this package does not hold.
	CondSupportedComponent = "supported-calendar-component"
	// CondMaxSize: larger than Limits.MaxSize (RFC 4791 §5.2.5).
	CondMaxSize = "max-resource-size"
	// CondMaxAttendees: more ATTENDEEs in one component than
	// Limits.MaxAttendees (RFC 4791 §5.2.9).
	CondMaxAttendees = "max-attendees-per-instance"
)

// PreconditionError says which CalDAV precondition (RFC 4791 §5.3.2.1)
// an object resource fails, and why.
type PreconditionError struct {
	// Name is the CALDAV precondition element, one of the Cond constants.
	Name string
	// Err is the reason, for logs and the response's description.
	Err error
}

// Error implements error.
func (e *PreconditionError) Error() string {
	return fmt.Sprintf("calendar: %s: %v", e.Name, e.Err)
}

// Unwrap returns the reason.
func (e *PreconditionError) Unwrap() error { return e.Err }

func precondition(name, format string, args ...any) error {
	return &PreconditionError{Name: name, Err: fmt.Errorf(format, args...)}
}

func invalidData(err error) error {
	return &PreconditionError{Name: CondValidData, Err: err}
}
