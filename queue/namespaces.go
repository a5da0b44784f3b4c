package queue

// Namespace is the store.Records namespace of the queue format before
// schema v4: one JSON record per (message, recipient), keyed "MSGID/NNNN".
// The queue no longer writes it; see [Options].Records.
const Namespace = "queue"

// Namespaces returns the store.Records namespaces the queue package owns,
// for a check that no two owners claim one.
func Namespaces() []string { return []string{Namespace} }
