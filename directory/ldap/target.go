package ldap

import (
	"context"
	"fmt"
	"time"

	"github.com/mailyard/mailyard/directory"
)

// Target is the directory a Connector syncs into: the core the user sync
// needs. A sync also needs a GroupTarget, and, depending on the Config,
// a ContactTarget, a VanishedDeleter and a DomainCreator; New finds them
// on Options.Dir by type assertion and refuses a Config whose features
// the target lacks. *builtin.Directory implements all of them.
//
// The sync runs many writes concurrently, so a Target must be safe for
// concurrent use. An error from a write is counted in the run's Status
// and the sync carries on with the next entry (a later run tries again);
// an error from ListSourced ends the run. Errors wrap the directory
// package's sentinels where one applies: the sync tells ErrNotFound
// apart from the others.
type Target interface {
	// ListSourced returns every entry of kind (KindUser, KindGroup or
	// KindContact) synced from source. A full sync compares it with the
	// source's entries to find the vanished ones.
	ListSourced(ctx context.Context, source string, kind directory.EntryKind) ([]directory.SourcedRef, error)
	// User returns a user by ID; ErrNotFound if there is none.
	User(ctx context.Context, id string) (directory.User, error)
	// UpsertSourcedUser creates or updates the user that u.Source knows
	// as u.ExternalID, and sets its photo (nil removes it). It is
	// idempotent: writing the same u again changes nothing and reports
	// SyncUnchanged. It keeps the user's ID and store account across
	// renames and clears a vanished mark (Reappeared).
	UpsertSourcedUser(ctx context.Context, u directory.User, photo []byte) (directory.UpsertResult, error)
	// MarkVanished disables a synced user that a full sync no longer
	// finds, as of at, keeping its addresses and mail. Marking a marked
	// user again keeps its first time; it reports whether it disabled
	// the user (false if it was disabled already).
	MarkVanished(ctx context.Context, id string, at time.Time) (bool, error)
}

// GroupTarget is the part of a Target that holds the synced groups
// (distribution lists). Every sync needs it.
type GroupTarget interface {
	// Group returns a group by ID; ErrNotFound if there is none.
	Group(ctx context.Context, id string) (directory.Group, error)
	// GroupByExternalID returns the group that source knows as
	// externalID; ErrNotFound if there is none.
	GroupByExternalID(ctx context.Context, source, externalID string) (directory.Group, error)
	// UpsertSourcedGroup creates or updates the group that g.Source knows
	// as g.ExternalID, idempotently as UpsertSourcedUser. Members that do
	// not exist (yet) are skipped, so the sync upserts groups twice when
	// groups are members of groups.
	UpsertSourcedGroup(ctx context.Context, g directory.Group) (directory.UpsertResult, error)
	// DeleteGroup deletes a group gone from the source; ErrNotFound if it
	// is gone already.
	DeleteGroup(ctx context.Context, id string) error
}

// ContactTarget is the part of a Target that holds the address-book
// contacts of the global address list. A Config with an AddressBook
// filter needs it; when the target has it, a sync without such a filter
// removes the contacts an earlier configuration synced.
type ContactTarget interface {
	// UpsertSourcedContact creates or replaces the contact that source
	// knows as externalID, idempotently as UpsertSourcedUser.
	UpsertSourcedContact(ctx context.Context, source, externalID string, e directory.GALEntry) (directory.UpsertResult, error)
	// DeleteSourcedContact removes a contact gone from the source.
	DeleteSourcedContact(ctx context.Context, source, externalID string) error
}

// VanishedDeleter is the part of a Target that deletes users with their
// mail. A Config with DeleteVanishedAfter needs it; when the target has
// it, every sync first completes the deletions a crash interrupted.
type VanishedDeleter interface {
	// DeleteVanished deletes a user with its store account and mail,
	// provided it was marked vanished at or before cutoff, checked in the
	// deleting transaction: a user listed again meanwhile is kept
	// (ErrInvalid). ErrNotFound if the user is gone already. An error
	// after the user was deleted leaves its mailbox for
	// CompleteDeletions.
	DeleteVanished(ctx context.Context, id string, cutoff time.Time) error
	// CompleteDeletions finishes the deletions that were interrupted
	// between deleting an entry and deleting its mailbox, and returns
	// those it finished. It is safe at any time.
	CompleteDeletions(ctx context.Context) ([]directory.PendingDeletion, error)
}

// DomainCreator is the part of a Target that hosts domains. A Config
// with CreateDomains needs it.
type DomainCreator interface {
	// LookupDomain returns the hosted domain that name is (or is an
	// alternative name of); ErrNotFound if it is not hosted.
	LookupDomain(ctx context.Context, name string) (directory.Domain, error)
	// CreateDomain hosts a domain; ErrExists if it is hosted already.
	CreateDomain(ctx context.Context, d directory.Domain) (directory.Domain, error)
}

// targets are the parts of Options.Dir a Connector uses; the optional
// ones are nil when cfg does not use them.
type targets struct {
	dir           Target
	groups        GroupTarget
	contacts      ContactTarget
	deleter       VanishedDeleter
	domainCreator DomainCreator
}

// findTargets looks up the optional interfaces on dir, failing when cfg
// needs one that dir lacks. Those dir has are kept also when cfg does
// not need them: a ContactTarget to remove the contacts an earlier
// configuration synced, a VanishedDeleter for CompleteDeletions.
func findTargets(dir Target, cfg Config) (targets, error) {
	t := targets{dir: dir}
	var ok bool
	if t.groups, ok = dir.(GroupTarget); !ok {
		return t, missing(dir, "GroupTarget", "syncing groups")
	}
	if t.contacts, ok = dir.(ContactTarget); !ok && (cfg.AddressBookUserFilter != "" || cfg.AddressBookGroupFilter != "") {
		return t, missing(dir, "ContactTarget", "an address-book filter")
	}
	if t.deleter, ok = dir.(VanishedDeleter); !ok && cfg.DeleteVanishedAfter > 0 {
		return t, missing(dir, "VanishedDeleter", "DeleteVanishedAfter")
	}
	if cfg.CreateDomains {
		if t.domainCreator, ok = dir.(DomainCreator); !ok {
			return t, missing(dir, "DomainCreator", "CreateDomains")
		}
	}
	return t, nil
}

func missing(dir Target, iface, feature string) error {
	return fmt.Errorf("ldap: Options.Dir (%T) is no %s, which %s needs", dir, iface, feature)
}
