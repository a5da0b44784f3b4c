package contact

import "errors"

// Precondition names of RFC 6352 §6.3.2.1, the CARDDAV: elements a server
// puts in the DAV:error body of a refused PUT, COPY or MOVE.
const (
	// ValidAddressData: the resource is not valid vCard data.
	ValidAddressData = "valid-address-data"
	// SupportedAddressData: the resource is vCard of a version the server
	// does not store (only 3.0 and 4.0 are supported).
	SupportedAddressData = "supported-address-data"
	// MaxResourceSize: the resource is larger than the server accepts.
	MaxResourceSize = "max-resource-size"
)

// Causes wrapped by a [*PreconditionError]; match them with errors.Is.
var (
	// ErrTooLarge: the data exceeds Limits.MaxSize.
	ErrTooLarge = errors.New("contact: vCard larger than the size limit")
	// ErrTooManyProperties: the card has more than Limits.MaxProperties
	// properties.
	ErrTooManyProperties = errors.New("contact: vCard has too many properties")
	// ErrNoUID: the card has no UID, or an empty one (RFC 6352 §5.1).
	ErrNoUID = errors.New("contact: vCard without UID")
	// ErrVersion: VERSION is missing, repeated, or not 3.0 or 4.0.
	ErrVersion = errors.New("contact: unsupported vCard VERSION")
)

// PreconditionError is a refusal of an address object resource. Name is
// one of [ValidAddressData], [SupportedAddressData] or [MaxResourceSize];
// the server reports it as <CARDDAV:Name/> inside DAV:error with 403
// Forbidden (413 is also allowed for max-resource-size, RFC 6352 §6.3.2.1).
type PreconditionError struct {
	Name string
	Err  error
}

// Error reports the precondition and its cause.
func (e *PreconditionError) Error() string {
	return "contact: " + e.Name + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *PreconditionError) Unwrap() error { return e.Err }

func precondition(name string, err error) error {
	return &PreconditionError{Name: name, Err: err}
}
