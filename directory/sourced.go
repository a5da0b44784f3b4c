package directory

import "time"

// The types below are the contract between a directory that keeps synced
// entries (directory/builtin) and the connectors that sync into it
// (directory/ldap), so that a connector depends on this package alone.

// Bounds of synced entries.
const (
	// MaxExternalIDLength bounds User.ExternalID and Group.ExternalID.
	MaxExternalIDLength = 256
	// MaxPhotoBytes bounds a user's photo (Active Directory's
	// thumbnailPhoto is at most 100 KB; jpegPhoto has no limit).
	MaxPhotoBytes = 256 << 10
)

// SyncChange says what an upsert of a synced entry did.
type SyncChange int

// Sync changes.
const (
	SyncUnchanged SyncChange = iota
	SyncAdded
	SyncUpdated
)

// UpsertResult is the outcome of builtin.Directory.UpsertSourcedUser and
// builtin.Directory.UpsertSourcedGroup.
type UpsertResult struct {
	// ID is the directory ID of the user or group.
	ID     string
	Change SyncChange
	// Skipped lists the aliases and members that were left out, each as
	// "ADDRESS: reason" (not hosted in the tenant, used by another entry,
	// not a local address).
	Skipped []string
	// Reappeared: the user had vanished from its source
	// (builtin.Directory.MarkVanished) and is listed again; the mark is
	// cleared, and the user is enabled unless the source or an
	// administrator disabled it.
	Reappeared bool
}

// SourcedRef pairs an entry's ID at its source with its directory ID.
type SourcedRef struct {
	ExternalID string
	ID         string
}

// PendingDeletion is a store account whose user or resource is deleted
// from the directory while the account itself is not yet: the directory
// entry and this record go in one transaction, the account after it.
type PendingDeletion struct {
	// Account is the store account ID (the deleted entry's ID).
	Account string
	Kind    string // "user" or "resource"
	Address string // the entry's primary address
	Deleted time.Time
}
