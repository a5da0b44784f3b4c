package builtin

// Record namespaces of the built-in directory: the directory owns them and
// their layout; the store keeps them without knowing what they mean. Every
// change that touches several records runs in one
// [store.Records.UpdateRecords] transaction.
//
//	tenant      tenant ID           -> Tenant (JSON)
//	domain      main domain name    -> Domain (JSON, with its alternative names)
//	domainname  any hosted name     -> main domain name (raw)
//	user        user ID             -> User (JSON)
//	group       group ID            -> Group (JSON)
//	alias       canonical address   -> Alias (JSON)
//	resource    resource ID         -> Resource (JSON)
//	addr        canonical address   -> {"kind":..., "id":...} (JSON); the
//	            uniqueness index over every kind and every address
//	index       KIND/DOMAIN/LOCAL   -> ID, for listing by address and for
//	            the "domain is empty" check; KIND is user, group, alias,
//	            resource, or secondary (aliases of users and groups)
//	sendas      USERID/GROUPID      -> "", reverse index of Group.SendAs
//	external    KIND/SOURCE/EXTID   -> ID (raw) of a user or group synced
//	            from an external directory (a "source" such as
//	            "ldap:corp"); KIND is user or group (builtin_sourced.go)
//	photo       user ID             -> the user's photo (raw bytes)
//	gal, galref, galtoken, galinner the global address list (gal.go)
//	meta        name                -> markers such as "the GAL is indexed"
//	accountdrop account ID          -> a deleted user's or resource's store
//	            account still to be deleted (PendingDeletion)
//
// Addresses are always stored under the main domain name, so an address
// and its spelling under an alternative name are the same key.
//
// The names predate the rule that an owner prefixes its namespaces and are
// kept as they are, since renaming one changes stored data.
const (
	nsTenant     = "tenant"
	nsDomain     = "domain"
	nsDomainName = "domainname"
	nsUser       = "user"
	nsGroup      = "group"
	nsAlias      = "alias"
	nsResource   = "resource"
	nsAddr       = "addr"
	nsIndex      = "index"
	nsSendAs     = "sendas"
	nsExternal   = "external"
	nsPhoto      = "photo"
	nsGAL        = "gal"
	nsGALRef     = "galref"
	nsGALToken   = "galtoken"
	nsGALInner   = "galinner"
	nsMeta       = "meta"
	nsDrop       = "accountdrop"
)

// Namespaces returns the [store.Records] namespaces the built-in directory
// owns, for a check that no two owners claim one. The store's records
// under them are the directory's alone.
func Namespaces() []string {
	return []string{
		nsTenant, nsDomain, nsDomainName, nsUser, nsGroup, nsAlias,
		nsResource, nsAddr, nsIndex, nsSendAs, nsExternal, nsPhoto,
		nsGAL, nsGALRef, nsGALToken, nsGALInner, nsMeta, nsDrop,
	}
}
