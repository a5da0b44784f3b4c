// Package directory is Mailyard's identity model and the interfaces
// protocol packages use to reach it: tenants (organisations), domains with
// alternative names, users with aliases, groups (distribution lists),
// aliases with several targets, resources such as rooms, the global
// address list's entries and queries, and the one address canonicaliser
// of the module.
//
// It holds no data and imports no store: a consumer such as routing
// depends on [Directory] (or the smaller [Authenticator]) and nothing
// else. The store-backed implementation is package directory/builtin,
// which keeps everything in the store's records so that every backend
// keeps it; connectors such as directory/ldap sync into it, so mail keeps
// flowing while an external directory is down. [SourcedAuth] sends each
// login to where its password lives.
//
// # Addresses
//
// [CanonicalAddress] (and [ParseAddress] with [Address.Canonical]) is the
// one rule by which every package stores and compares hosted addresses:
//
//  1. The address must be a dot-string local part, "@", and a host name
//     (RFC 5321 §4.1.2), within the lengths of RFC 5321 §4.5.3.1; UTF-8
//     is allowed in both (RFC 6531 §3.3). Quoted local parts, address
//     literals, a trailing root dot, whitespace and control characters
//     are refused with [ErrInvalid].
//  2. The domain is lowercased (RFC 5321 §2.4) and kept in the form it
//     was given: U-labels stay UTF-8 and A-labels ("xn--") stay ASCII,
//     with no IDNA mapping between them.
//  3. The local part is lowercased too, as every mainstream mail platform
//     does for its own mailboxes. Only hosted addresses are treated so:
//     an address relayed to another host keeps its local part as given
//     ([Address.String]), since only that host may interpret it (RFC 5321
//     §2.4).
//
// On lookup a directory also maps an alternative domain name to its main
// name ([Address.CanonicalIn]) and applies sub-addressing: "+tag" is
// stripped from the local part ("user+tag@example.com" reaches
// "user@example.com", RFC 5233) unless an entry with the full local part
// exists.
//
// Users and groups synced from an external directory carry its name as
// Source and their stable ID there as ExternalID, so renames keep the
// mailbox; they have no local password, and [SourcedAuth] checks their
// passwords at the source.
package directory

import (
	"context"
	"errors"
	"time"
)

// SourceBuiltin is User.Source for users managed in the built-in
// directory itself.
const SourceBuiltin = "builtin"

// Sentinel errors.
var (
	// ErrNotFound: no entry has this address, ID or name.
	ErrNotFound = errors.New("directory: not found")
	// ErrExists: the address, ID or name is already in use.
	ErrExists = errors.New("directory: already exists")
	// ErrInvalid: malformed input (bad address, unknown domain, ...).
	ErrInvalid = errors.New("directory: invalid")
	// ErrAuthFailed: wrong login or password. Deliberately the same error
	// for unknown logins, so callers cannot tell them apart.
	ErrAuthFailed = errors.New("directory: authentication failed")
	// ErrDisabled: the user exists and the password is right, but the
	// account is disabled (blocked).
	ErrDisabled = errors.New("directory: account disabled")
	// ErrProtocolNotAllowed: the user may not use this protocol.
	ErrProtocolNotAllowed = errors.New("directory: protocol not allowed")
)

// Protocol names a way of reaching the platform that can be allowed or
// denied per user.
type Protocol string

// Protocols.
const (
	ProtoSMTP Protocol = "smtp" // submission (587/465)
	ProtoIMAP Protocol = "imap"
	ProtoDAV  Protocol = "dav" // CalDAV, CardDAV
)

// Tenant is an organisation. Domains, users, groups and resources belong to
// exactly one tenant; the global address list is per tenant.
type Tenant struct {
	ID   string
	Name string
}

// Domain is a mail domain hosted here. Aliases are alternative domain names:
// "x@alias" is "x@Name".
type Domain struct {
	Name    string // lowercase, no trailing dot
	Tenant  string
	Aliases []string
	Created time.Time
}

// User is a mailbox owner.
type User struct {
	// ID is stable for the user's life and is also the store account ID.
	ID          string
	Tenant      string
	Address     string   // primary address, canonical form
	Aliases     []string // further addresses that reach this user
	DisplayName string
	// GivenName, Surname, Title, Department, Phone are shown in the
	// global address list.
	GivenName  string
	Surname    string
	Title      string
	Department string
	Phone      string
	// Mobile, Company and Office are further global address list
	// attributes (mobile phone, organisation name, office location).
	Mobile  string `json:",omitempty"`
	Company string `json:",omitempty"`
	Office  string `json:",omitempty"`
	// PhotoHash is the hex SHA-256 of the user's photo, empty if it has
	// none; builtin.Directory.Photo returns the picture itself.
	PhotoHash string `json:",omitempty"`
	// QuotaBytes and QuotaMessages are the mailbox limits (0: unlimited).
	QuotaBytes    int64
	QuotaMessages int64
	// Disabled users cannot log in and receive no mail (blocked).
	Disabled bool
	// LocallyDisabled records that an administrator disabled the user
	// here (builtin.Directory.SetDisabled): a sync from its Source keeps it
	// disabled whatever the source says. Disabled is the effective state.
	LocallyDisabled bool `json:",omitempty"`
	// Vanished is when a full sync first found the user missing from its
	// Source (builtin.Directory.MarkVanished); zero while the source lists it. A
	// vanished user is disabled but keeps its addresses, store account
	// and mail until the source lists it again (it is enabled again) or it
	// is deleted (builtin.Directory.DeleteUser, builtin.Directory.DeleteVanished).
	Vanished time.Time `json:",omitzero"`
	// Protocols the user may use; empty means all.
	Protocols []Protocol
	// PasswordHash is a PHC string ("$argon2id$v=19$m=...,t=...,p=...$salt$hash").
	// Empty for users that authenticate elsewhere (LDAP bind).
	PasswordHash string
	// Source says where the user comes from: "builtin" or "ldap:NAME".
	Source string
	// ExternalID is the user's stable identifier at its Source (an LDAP
	// objectGUID, nsUniqueId or entryUUID); empty for built-in users.
	// It survives renames, so a connector recognises a renamed user and
	// keeps its mailbox.
	ExternalID string `json:",omitempty"`
	// ExternalDN is the user's distinguished name at an LDAP source
	// (RFC 4514), the name a password bind uses; it may change.
	ExternalDN string `json:",omitempty"`
	Created    time.Time
	Updated    time.Time
}

// Allows reports whether the user may use protocol p.
func (u User) Allows(p Protocol) bool {
	if len(u.Protocols) == 0 {
		return true
	}
	for _, q := range u.Protocols {
		if q == p {
			return true
		}
	}
	return false
}

// Group is a distribution list. Members are addresses (users, other groups,
// aliases or external addresses); expansion is the routing package's job.
type Group struct {
	ID          string
	Tenant      string
	Address     string
	Aliases     []string
	DisplayName string
	Members     []string
	// SendAs lists the user IDs that may use the group's address as
	// envelope sender and From.
	SendAs []string
	// Source, ExternalID and ExternalDN are as in [User]: where a group
	// synced from an external directory comes from, its stable ID there
	// and its distinguished name. Source is empty for built-in groups.
	Source     string `json:",omitempty"`
	ExternalID string `json:",omitempty"`
	ExternalDN string `json:",omitempty"`
	Created    time.Time
}

// Alias is an address that forwards to one or more targets (local or
// external addresses).
type Alias struct {
	Address string
	Tenant  string
	Targets []string
}

// Resource is a bookable thing with a mailbox address, such as a room.
type Resource struct {
	ID          string
	Tenant      string
	Address     string
	DisplayName string
	Kind        string // "room" or "equipment"
	Capacity    int
	Location    string
	// Policy is how invitations to the resource are answered:
	// ResourcePolicyAuto (also when empty) accepts a booking when the
	// resource is free and declines it on a conflict;
	// ResourcePolicyManual declines conflicts and leaves the others to
	// one of the Approvers.
	Policy string `json:",omitempty"`
	// Approvers are the IDs of the users who answer bookings of a
	// resource with the manual policy.
	Approvers []string `json:",omitempty"`
}

// Resource kinds (Resource.Kind).
const (
	ResourceRoom      = "room"
	ResourceEquipment = "equipment"
)

// Resource booking policies (Resource.Policy).
const (
	ResourcePolicyAuto   = "auto"
	ResourcePolicyManual = "manual"
)

// EntryKind says what an address resolved to.
type EntryKind int

// Entry kinds.
const (
	KindUser EntryKind = iota + 1
	KindGroup
	KindAlias
	KindResource
)

// Entry is what an address resolves to. Exactly one pointer is set,
// matching Kind.
type Entry struct {
	Kind     EntryKind
	User     *User
	Group    *Group
	Alias    *Alias
	Resource *Resource
	// Address is the canonical address that matched (after alternative
	// domain mapping and sub-address stripping).
	Address string
}

// Authenticator checks logins: the part of a [Directory] a listener that
// only authenticates needs. [LoginKeyer] is its optional companion.
type Authenticator interface {
	// Authenticate checks a login (primary address or alias) and password
	// for protocol p. Errors: ErrAuthFailed, ErrDisabled,
	// ErrProtocolNotAllowed; any other error means the check could not be
	// made (a store or source failed) and says nothing about the password.
	// The returned User carries no PasswordHash.
	Authenticate(ctx context.Context, login, password string, p Protocol) (User, error)
}

// Directory is what protocol packages need from a directory: logins and
// address resolution. directory/builtin's store-backed Directory and
// [SourcedAuth] implement it.
type Directory interface {
	Authenticator
	// LookupAddress resolves an address to an entry. ErrNotFound if the
	// address is unknown; ErrInvalid if it is malformed.
	LookupAddress(ctx context.Context, address string) (Entry, error)
	// LookupDomain returns the hosted domain that name is (or is an
	// alternative name of). ErrNotFound if it is not hosted here.
	LookupDomain(ctx context.Context, name string) (Domain, error)
	// SendAddresses returns every address the user may use as envelope
	// sender or From: the primary address, aliases, and the addresses of
	// groups whose SendAs lists the user; in canonical form.
	SendAddresses(ctx context.Context, userID string) ([]string, error)
}
