// Package dav serves calendars (CalDAV, RFC 4791) and contacts (CardDAV,
// RFC 6352) over the store's collections and the directory, as an
// http.Handler to mount in any mux.
//
// # Design
//
// The WebDAV, CalDAV and CardDAV protocol layer is this package's own,
// over encoding/xml; it is not go-webdav's server. go-webdav v0.6.0's
// caldav and carddav servers cannot carry what Mailyard needs: they have
// no PROPPATCH and no sync-collection, fixed PROPFIND property sets (no
// getctag, sync-token, calendar-color, calendar-user-address-set), and
// they hold query results whole in memory as parsed objects, where a
// 10,000-object REPORT must stream in bounded memory. Their XML layer is
// an internal package that cannot be imported. All iCalendar and vCard
// parsing and encoding is go-ical's and go-vcard's (through
// internal/calendar and dav/internal/contact); go-webdav's clients
// are used by the tests as real clients.
//
// # URL layout
//
// Under Options.Prefix (default "/dav"):
//
//	/.well-known/caldav, /.well-known/carddav  redirect to /dav/ (RFC 6764 §5: 301 for GET
//	                                           and HEAD, 308 for PROPFIND and the rest, which
//	                                           some clients would otherwise turn into a GET)
//	/dav/                                      the context path (current-user-principal)
//	/dav/principals/<userID>/                  the user's principal
//	/dav/principals/<resourceID>/              a room's or equipment's principal (directory.Resource;
//	                                           Rooms and equipment below)
//	/dav/principals/<userID>/calendar-proxy-read/, calendar-proxy-write/
//	                                           the user's delegates (caldav-proxy; Sharing below)
//	/dav/calendars/<userID>/                   calendar home; <name>/ a calendar, <name>/<resource> an object
//	/dav/calendars/<userID>/inbox/             schedule inbox (RFC 6638 §2.2): scheduling messages
//	/dav/calendars/<userID>/outbox/            schedule outbox (RFC 6638 §2.1): POST free/busy requests
//	/dav/addressbooks/<userID>/                address-book home; <name>/ a book, <name>/<resource> a vCard
//	/dav/addressbooks/<userID>/gal/            the tenant's global address list (read-only)
//	/dav/calendars/<userID>/shared-<hex>-<name>/  a calendar another user shares with the user
//	                                           (address books alike under addressbooks/)
//
// userID is directory.User.ID, stable across renames, and the store
// account of the user's collections. A user reaches only their own
// principal and homes (other users' paths answer 403), except that a
// PROPFIND of a colleague's principal (a user of the same tenant)
// answers its displayname, principal-URL, calendar-user-address-set,
// CS:email-address-set and calendar-user-type and nothing else, so that clients can name the
// members of proxy groups, and that a calendar proxy of a colleague
// reaches the colleague's calendar home (Sharing below). The names gal, inbox and outbox are
// reserved. A user without any calendar (or address book) gets a
// default one the first time a home, the principal or the root is
// looked at.
//
// # Authentication
//
// HTTP Basic (RFC 7617) through Directory.Authenticate for
// directory.ProtoDAV, each password check reserved with the shared
// authlimit.Limiter first. Answers: 401 with a challenge without or with
// wrong credentials; 429 with Retry-After when the limiter refuses to
// check; 403 for a disabled account or one without DAV; 503 with
// Retry-After when the directory fails. Verified credentials are
// remembered for Options.AuthCacheTTL as a keyed hash, for the client
// (IPv4 address, IPv6 /64) that sent them only: a client the limiter
// refuses gets 429 for the right password as for wrong ones.
//
// # Guarantees
//
//   - Every request body is bounded (Limits.MaxRequestBody, MaxXMLDepth,
//     MaxXMLElements); a DOCTYPE is refused, so no entity is ever
//     declared or expanded; malformed XML gets 400 and changes nothing.
//   - Path segments are unescaped one by one: "..", "." and encoded
//     slashes or backslashes are refused with 400.
//   - PROPPATCH, MKCALENDAR and extended MKCOL apply all their property
//     changes or none (RFC 4918 §9.2, RFC 5689 §3).
//   - Multi-status answers are written to the client as they are made;
//     queries and sync read the store a page of objects at a time, so a
//     REPORT over any number of objects holds one page.
//   - sync-collection answers at most Limits.MaxSyncChanges members (or
//     the client's smaller DAV:limit); a longer change set is truncated
//     with a 507 for the collection and a continuation token (RFC 6578
//     §3.6), and following the tokens yields every change. A token older
//     than the store's change log gets 403 valid-sync-token (§3.2).
//   - Limits.MaxInstances bounds the instances a report's expand
//     returns over all its objects; past it the report is truncated
//     with a 507 for the request-URI (DAV:number-of-matches-within-
//     limits), as a query over more matches than a limit is.
//   - Answers of GET, HEAD, PROPFIND and REPORT are gzip-coded for a
//     client that accepts it once they pass 1 KiB, as they stream (RFC
//     9110 §8.4, §12.5.3; Vary: Accept-Encoding); a coded GET's ETag is
//     the stored one with "-gzip" appended, and If-Match and
//     If-None-Match take either. A request body with a Content-Encoding
//     is refused with 415 before it is read.
//   - A calendar-multiget or addressbook-multiget answers each resource
//     once however often it is named, and names at most
//     Limits.MaxMultigetHrefs (413 beyond).
//   - A request body that arrives after the server's read deadline (set
//     by whoever serves the handler) gets 408.
//   - A PUT is validated (internal/calendar, dav/internal/contact)
//     before anything is stored; a refusal names the RFC 4791 §5.3.2.1 or
//     RFC 6352 §6.3.2.1 precondition, no-uid-conflict with the href of
//     the resource holding the UID.
//
// # Methods and reports
//
// OPTIONS, PROPFIND (Depth 0 and 1; infinity is refused with
// propfind-finite-depth), PROPPATCH, MKCALENDAR, MKCOL (plain and
// extended, RFC 5689), GET, HEAD, PUT, DELETE (If-Match, If-None-Match),
// and REPORT: calendar-query (with comp/prop selection and expand),
// calendar-multiget, free-busy-query, addressbook-query (with limit),
// addressbook-multiget, sync-collection (sync-level 1) and, on
// principals, expand-property, principal-property-search and
// principal-search-property-set (RFC 3744 §9.4, §9.5; Rooms and
// equipment below).
//
// PROPPATCH, MKCALENDAR and extended MKCOL also keep calendar-timezone
// (RFC 4791 §5.2.2: a calendar-query without its own CALDAV:timezone
// (§7.3), the expand of calendar-query and calendar-multiget, the
// free-busy-query, the outbox's free/busy and [FreeBusy] read the
// calendar's floating times and DATE values in it; Options.
// FloatingLocation only where there is none) and dead properties of any namespace
// other than DAV:, CalDAV and CardDAV (at most 32 per collection, 4 KiB
// each), as records of the namespace [NamespaceProps].
//
// Not served yet, and refused clearly: limit-recurrence-set and
// limit-freebusy-set (501; clients use expand), sync-level infinite
// (403).
//
// # Rooms and equipment
//
// Every directory.Resource is a calendar principal at
// /dav/principals/<resourceID>/ (its directory ID is its store account,
// as in scheduling), which the users of its tenant may PROPFIND:
// resourcetype, displayname, principal-URL, principal-collection-set,
// calendar-user-address-set, CS:email-address-set, calendar-user-type
// (ROOM for a room,
// RESOURCE for equipment: RFC 6638 §2.4.2), calendar-home-set and
// schedule-inbox-URL; another tenant's users get 403. It needs a
// Directory that finds resources by ID (Resource(ctx, id), as
// *builtin.Directory and *directory.SourcedAuth have). Bookings are
// invitations, answered by the resource or (manual policy) by an
// approver in their own copy. To the users of its tenant the resource's
// calendar is free/busy (an outbox free/busy request naming it); its
// calendar home answers 403 to all of them, approvers included, except
// to those an administrator granted access through the grants of
// Sharing below, with the resource's address as owner: [Handler.Share]
// of one of its calendars, or [Handler.Delegate], which makes a user
// the resource's read or read-write calendar proxy (its booking
// manager). Grantees then read (and with read-write write) the
// resource's calendar exactly as a user's, at the resource's URLs and
// in their own home, their writes scheduled as the resource's.
//
// principal-property-search on the principals collection finds the
// tenant's users and resources by displayname, calendar-user-address-set,
// CS:email-address-set, CS:first-name, CS:last-name and
// calendar-user-type (test allof or anyof; match-type contains, the
// default, anywhere inside the value, or starts-with, equals,
// ends-with; compared with i;unicode-casemap), candidates coming from
// Options.GAL (without it nothing is found; a contains text is looked
// up inside words and addresses, directory.GALQuery.Contains, not by a
// scan). At most Limits.MaxPrincipalSearch principals are returned,
// then a 507 for the request-URI (number-of-matches-within-limits); a
// body of more than 16 property-searches or a match of more than 256
// bytes gets 400.
//
// # Sharing
//
// An owner shares a calendar or address book with a colleague or a group
// of the same tenant, read-only or read-write ([Handler.Share], or the
// owner's POST of CalendarServer's CS:share or draft-pot-webdav-resource-
// sharing's DAV:share-resource to the collection). It appears in the
// grantee's home as shared-<hex of the owner's ID>-<name> (resourcetype
// CS:shared; CS:invite, DAV:share-access, DAV:sharees and
// current-user-privilege-set say who may do what); a read-only grantee's
// writes get 403 need-privileges. Writes of a read-write grantee (a
// delegate) in a shared calendar are scheduled as the owner's. Group
// grants follow the group's membership. Grants are records of the
// namespace [NamespaceShares].
//
// Delegation (CalendarServer's caldav-proxy, DAV header
// calendar-proxy): /dav/principals/<userID>/calendar-proxy-read/ and
// calendar-proxy-write/ are the owner's proxy groups (resourcetype
// DAV:principal and CS:calendar-proxy-read or -write), whose
// DAV:group-member-set (RFC 3744 §4.3) is derived from the grants: every
// user holding the owner's calendar-proxy grant of that access or a
// grant of that access of one of the owner's calendars. The owner's
// PROPPATCH of group-member-set gives each member the calendar-proxy
// grant of that access, which covers the owner's whole calendar home:
// every calendar, those made later included, and the schedule inbox and
// outbox. It removes the grants of that access of members left out;
// members must be users of the owner's tenant (403 otherwise, all or
// nothing). A delegate's principal has CS:calendar-proxy-read-for,
// CS:calendar-proxy-write-for and DAV:group-membership (§4.4). The
// expand-property REPORT (RFC 3253 §3.8) on a principal or proxy
// principal returns these with the properties a colleague's principal
// shows of each principal named, and to a proxy of that principal also
// its calendar-home-set, schedule-inbox-URL and schedule-outbox-URL.
// A proxy then opens the owner's calendar home at the owner's URLs:
// PROPFIND lists the calendars the proxy's grants reach, the inbox and
// the outbox; objects are read with any grant and written (PUT, DELETE)
// with read-write, scheduled as the owner's with the proxy named in
// SENT-BY (RFC 5545 §3.2.18); a write proxy may clear the inbox and
// POST free/busy requests to the outbox as the owner; making, deleting,
// sharing or PROPPATCHing a collection stays the owner's (403
// need-privileges). The owner's paths stay closed to everyone else
// (403), and so does a grant once the owner is no user (room or
// equipment) of the proxy's tenant; free/busy needs no grant. Whoever deletes store accounts
// calls [DeleteAccountRecords] to drop their grants and properties too.
//
// # Scheduling
//
// RFC 6638 (DAV: calendar-auto-schedule). The principal names its
// schedule-inbox-URL and schedule-outbox-URL. The inbox is a calendar
// collection the server fills (PROPFIND, GET, DELETE, sync-collection;
// no PUT) holding the latest iTIP message per UID; its
// schedule-default-calendar-URL is where invitations are put. POST of a
// VFREEBUSY REQUEST to the outbox (§5) answers a schedule-response with
// each recipient's VFREEBUSY REPLY (at most Limits.MaxRecipients;
// colleagues of the same tenant only, others 3.8; recipients who are
// not calendar users here go to Options.RemoteFreeBusy, such as another
// site's). Implicit scheduling
// (§3) sends REQUEST, CANCEL and REPLY for organizers' and attendees'
// PUTs and DELETEs: local users and resources get them in their inbox and
// calendar, other domains go to Options.IMIP ([IMIP]); SCHEDULE-STATUS
// records the outcome in the organizer's copy. Rooms and equipment
// (directory.Resource) accept a booking when free over all its
// instances and decline it on a conflict.
//
// [FreeBusy] gives other packages the merged busy time of accounts, in
// one read of the store when it is a store.AccountsQuerier.
package dav
