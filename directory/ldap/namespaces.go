package ldap

// nsStatus is the [store.Records] namespace of sync statuses, one record
// per connection name, so that an admin command in another process sees
// the server's last run. The entries a sync writes live in the directory's
// own namespaces (see builtin.Namespaces).
const nsStatus = "ldapsync"

// nsLease holds the lease of the connection's running sync, one record
// per connection name (package store/lease), so that the nodes sharing a
// store never sync one connection at once.
const nsLease = "ldapsync.lease"

// Namespaces returns the [store.Records] namespaces the LDAP sync owns,
// for a check that no two owners claim one.
func Namespaces() []string { return []string{nsStatus, nsLease} }
