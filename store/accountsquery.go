package store

import "context"

// AccountsQuerier is an optional capability of a Store, found by type
// assertion: the objects of many accounts' collections that match one
// ObjectQuery, read in one snapshot. Free/busy of a meeting's fifty
// attendees is then one read instead of a ListCollections and a
// QueryObjects per attendee.
type AccountsQuerier interface {
	// QueryAccounts calls fn for every object, with its data, of every
	// collection of kind owned by one of accounts that QueryObjects(c.ID,
	// q) would return, q.After and q.Limit aside (every match is
	// visited). c is the object's collection as ListCollections gives
	// it. Accounts that do not exist or have no such collection are
	// skipped; an account named twice is visited once. The order is
	// unspecified. fn runs inside the store's read and must not call the
	// store; the objects are the caller's. An error from fn ends the walk
	// and is returned as it is. ErrInvalid for an unknown kind or a bad
	// q, as for QueryObjects.
	QueryAccounts(ctx context.Context, accounts []string, kind CollectionKind, q ObjectQuery, fn func(c *Collection, o *Object) error) error
}
