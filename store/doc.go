// Package store is Mailyard's data contract: accounts, mailboxes, messages,
// calendar and address-book collections, generic keyed records, and a
// change feed. Backends (store/sqlite, store/postgres, and store/memstore
// for tests and disk-less embedding) implement [Store];
// the protocol packages (smtp, imap, dav) consume the small interfaces
// [Accounts], [Mailboxes], [Messages], [Deliverer], [Collections],
// [Records] and [Feed].
//
// # Guarantees every backend gives
//
//  1. Durability: when a mutating call returns nil, the change is on stable
//     storage (rows committed, blob file and its directory fsynced). A crash
//     after return loses nothing; a crash before return leaves no trace that
//     a reader can see (no dangling rows; at most an orphan blob that
//     [Checker.Check] reports and the backend removes at next open).
//  2. UIDs are strictly increasing per mailbox and never reused while the
//     mailbox keeps its UIDVALIDITY. UIDVALIDITY changes only when a mailbox
//     is recreated under a name.
//  3. Every change to a message (append, flag change, expunge) assigns it a
//     modification sequence (RFC 7162 MODSEQ) greater than every MODSEQ the
//     mailbox has given out before; expunges are remembered with their
//     MODSEQ so that [Messages.Changes] can report them (QRESYNC VANISHED).
//  4. [Deliverer.Deliver] stores the body once and indexes it for every
//     recipient in one transaction: all recipients get it or none does.
//  5. Quotas are checked inside the same transaction that adds a message,
//     and a refusal is [ErrQuotaExceeded] (wrapped in a *QuotaError).
//  6. Subscribers of [Feed] receive every change committed after they
//     subscribed, in commit order per account; a subscriber that falls behind
//     receives one [ChangeOverflow] and must resynchronise.
//
// # Records
//
// [Records] is a transactional key-value space with no meaning of its own:
// the store keeps (namespace, key) -> value with a version and knows
// nothing of what a namespace holds. Each namespace belongs to the package
// that writes it, which declares its namespaces in one place and lists them
// with a Namespaces function: directory, directory/ldap, dkim, migration
// and smtp (a test in examples/mailserver fails when two owners claim one
// namespace). The layout of a namespace's keys and values is documented
// there, not here.
//
// # Calendar objects and time ranges
//
// A calendar-query or free-busy REPORT must not parse every object of a
// calendar, so each [Object] carries an index the store keeps beside its
// data: its main Component and the Start and End of its whole recurrence
// set (RFC 4791 §9.9), zero for unbounded. The store does not parse
// iCalendar: the caller of [Collections.PutObject] computes them. The
// index only ever widens (bounds are kept to whole seconds, Start rounded
// down, End rounded up; see [IndexBounds]), and an object of unknown
// component or bounds (as stored before the index existed) matches every
// query, so [Collections.QueryObjects] returns a superset of the objects
// a query's filter selects: the caller parses what it returns and
// filters again. QueryObjects returns objects with their data in name
// order, a page of at most [MaxObjectQueryLimit] at a time, so a
// collection of any size is read in bounded memory.
//
// # Metadata
//
// [Metadata], optional and found by type assertion (every backend here
// has it), keeps IMAP METADATA entries (RFC 5464) of each mailbox and of
// the server per account. The store owns their life: they go with their
// mailbox, follow it through a rename, and go with the account. It also
// enforces [MetadataLimits] in the transaction that changes them, so
// that concurrent sessions (or nodes) cannot together pass a limit.
//
// Mailbox names are full paths with "/" as the hierarchy separator; "INBOX"
// is case-insensitive and always exists for an account.
package store
