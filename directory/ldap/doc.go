// Package ldap connects an external LDAP directory (Active Directory and
// Samba AD, 389 Directory Server and FreeIPA, OpenLDAP) to Mailyard's
// built-in directory: it syncs users, groups and address-book entries
// into a [Target] (builtin.Directory, or any directory with the few
// methods the sync calls) and checks passwords by binding as the user.
// Mail keeps flowing while the external directory is unreachable, since
// routing only reads the built-in copy; only logins of synced users
// need a server.
//
// A full sync ([Connector.Sync] with Full):
//
//  1. connects to the first reachable server in failover order (priority,
//     then weight as for SRV records, RFC 2782), over LDAPS or StartTLS
//     (RFC 4513 §3) if configured, and binds as the service account;
//  2. reads the mail users page by page (simple paged results, RFC 2696),
//     maps each entry with the [Mapping] (a preset with overrides) and
//     upserts it by its stable ID (builtin.Directory.UpsertSourcedUser):
//     a rename keeps the user's ID and mailbox, a disabled account is
//     blocked, excluded users are skipped;
//  3. reads the mail groups and writes them as distribution lists, their
//     member DNs resolved to the synced users' and groups' addresses
//     (nested groups included);
//  4. writes the address-book entries that are not mail users or groups
//     as contacts of the global address list;
//  5. disables the users that vanished (deleted, moved out of the base,
//     no longer matching the filter) and keeps their addresses, account
//     and mail (builtin.Directory.MarkVanished); a user listed again is
//     enabled again, unless the source or an administrator disabled it.
//     Deleting a mailbox is a separate step: an administrator's
//     (builtin.Directory.DeleteUser), or, opted into with
//     Config.DeleteVanishedAfter, a full sync's once the user has been
//     missing that long. Groups and address-book entries that vanished
//     are removed (they hold no mail). The safety guard fails the run
//     with [ErrSafetyGuard] before anything changes if more than
//     Config.MaxDeleteShare of the users listed before vanished at once,
//     if as large a share would be deleted, or of the groups removed;
//  6. records the highest change marker (uSNChanged, or modifyTimestamp)
//     and the server it came from.
//
// An incremental sync reads only entries changed since that marker, on
// the same server (Active Directory's uSNChanged is per domain
// controller; another server means a full sync), plus the groups that
// list a changed user. It cannot see deletions, so run a full sync now
// and then (the reference server does daily).
//
// Every run's counts, errors and log, the users missing from the source
// and those deleted are stored in the store's records ([ReadStatus]),
// for an admin command in another process. A deletion removes the
// directory entry and records its store account as pending in one
// transaction, then deletes the account; if a crash comes between, the
// next run completes it (builtin.Directory.CompleteDeletions). Passwords —
// the service account's and users' — are never stored or logged; values
// from user input are escaped in filters (RFC 4515 §3, EscapeFilter).
//
// [Connector] implements [directory.SourceAuthenticator]; hand it to a
// [directory.SourcedAuth] so that synced users bind at the directory and
// built-in users keep their local password hash.
package ldap
