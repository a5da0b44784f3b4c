package smtp

// Record namespaces of the smtp package.
const (
	// QuarantineNamespace is the [store.Records] namespace of the
	// quarantine ([Quarantine]): one record per held message, keyed by its
	// id.
	QuarantineNamespace = "quarantine"
)

// Namespaces returns the [store.Records] namespaces the smtp package owns,
// for a check that no two owners claim one.
func Namespaces() []string { return []string{QuarantineNamespace} }
