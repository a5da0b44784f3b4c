package dkim

// recordNamespace is the [store.Records] namespace holding the keys ([Keys]),
// keyed "domain/selector".
const recordNamespace = "dkim"

// Namespaces returns the [store.Records] namespaces the DKIM key store
// owns, for a check that no two owners claim one.
func Namespaces() []string { return []string{recordNamespace} }
