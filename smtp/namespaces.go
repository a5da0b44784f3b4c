package smtp

// Record namespaces of the smtp package.
const (
	// QueueNamespace is the [store.Records] namespace that holds the
	// outbound queue ([Queue]): one record per (message, recipient), keyed
	// "MSGID/NNNN".
	QueueNamespace = "queue"
	// QuarantineNamespace is the [store.Records] namespace of the
	// quarantine ([Quarantine]): one record per held message, keyed by its
	// id.
	QuarantineNamespace = "quarantine"
)

// Namespaces returns the [store.Records] namespaces the smtp package owns,
// for a check that no two owners claim one.
func Namespaces() []string { return []string{QueueNamespace, QuarantineNamespace} }
