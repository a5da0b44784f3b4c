package dkimstore

// Namespace is the store.Records namespace holding the DKIM keys, keyed
// "domain/selector", each value the JSON form dkim encodes. dkim owns these
// records; the name is the one dkim used before [dkim.KeyStore] existed,
// so existing data directories keep their keys.
const Namespace = "dkim"

// Namespaces returns the store.Records namespaces this key store owns, for
// the check that no two owners claim one.
func Namespaces() []string { return []string{Namespace} }
