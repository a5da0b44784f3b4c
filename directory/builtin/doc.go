// Package builtin is Mailyard's store-backed directory: tenants, domains
// with alternative names, users, groups, aliases, resources, the global
// address list and password hashes, kept in [store.Records] so that every
// store backend keeps them. [Directory] implements directory.Directory,
// directory.LoginKeyer and directory.SourcedUsers, and the targets
// directory/ldap syncs into.
//
// Guarantees:
//
//   - Every change that touches several records (an entry, its address
//     index, its GAL entry, ...) is one [store.Records.UpdateRecords]
//     transaction, and updates are checked against the version read, so a
//     concurrent writer is never overwritten.
//   - Nothing is cached: every lookup reads the records, so several
//     processes sharing one data directory (the server and an admin
//     command) always agree.
//   - Addresses are stored in the canonical form of
//     directory.CanonicalAddress under the main domain name, so every
//     spelling of one address is one key; an address is unique across
//     users, groups, aliases and resources.
//   - With [Options].Accounts set, a user's or resource's store account is
//     created before its entry and deleted after it; a deletion
//     interrupted between the two is finished by
//     [Directory.CompleteDeletions].
//   - Passwords are hashed with argon2id ([HashPassword]); legacy hashes
//     ({SSHA}, {CRYPT}, bcrypt, ...) imported from other systems are
//     verified and re-hashed at the next login. A [PasswordHasher] bounds
//     how many hashes run at once, and an unknown login costs what a
//     known one does.
//
// The record namespaces it owns are listed by [Namespaces]; their names
// and layout are those of earlier releases, where this code was package
// directory, so existing data directories keep working.
package builtin
