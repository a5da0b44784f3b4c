// Package ews is Mailyard's client for Exchange Web Services (SOAP 1.1
// over HTTPS, [MS-OXWS]) and the mapping of Exchange calendar items and
// contacts to iCalendar (RFC 5545) and vCard 4.0 (RFC 6350) and back. It
// is what calendar and contact migration, and two-way calendar sync
// during coexistence, are built on; no Exchange-specific code lives
// elsewhere.
//
// # Client
//
// A [Client] talks to one EWS endpoint (one source) as one account;
// [Client.Mailbox] gives a handle whose methods are the operations:
// GetFolder, SyncFolderHierarchy, SyncFolderItems, GetItem (in batches of
// [MaxBatch]; GetItemSized also bounds them by bytes), GetAttachment, CreateCalendarItem, UpdateCalendarItem,
// UpdateOccurrence, DeleteItem, DeleteOccurrence, Subscribe, GetEvents
// and Unsubscribe. A call goes as follows:
//
//  1. It waits for one of Options.MaxConcurrent slots of the source.
//  2. The SOAP envelope carries RequestServerVersion (Exchange 2013 SP1,
//     2016 or 2019) and, for [AccessImpersonation], the
//     ExchangeImpersonation header naming the mailbox; [AccessDelegate]
//     names the mailbox in each distinguished folder id instead.
//  3. A new connection is dialled only after Options.Allowlist (the IMAP
//     collectors' [migration.Allowlist]) approves the host, and only to the
//     addresses it approved; TLS uses the configured version range (TLS
//     1.0 to 1.3 when configured, for Exchange 2013 without a forwarder),
//     CA file or skip-verify. Authentication is Basic or NTLM
//     (github.com/Azure/go-ntlmssp), never Basic when NTLM is configured;
//     an NTLM handshake that net/http split over two connections (the
//     server cannot check it) starts over, three handshakes at most.
//  4. The response is decoded as a stream by encoding/xml from a reader
//     that fails past Options.MaxResponseBytes.
//  5. Throttling (HTTP 503 or 429 with Retry-After, or ErrorServerBusy
//     with BackOffMilliseconds in a fault or a response message) waits as
//     asked, capped by Options.MaxBackoff, at most Options.MaxRetries
//     times; the whole call, waits included, is bounded by
//     Options.CallTimeout, counted from the moment it has its slot (step
//     1): a call queued behind the source's others is not failed for
//     the time it queued.
//  6. Every failure is a *[migration.Error] of the collectors' classes:
//     EWS response codes by [ClassOf] (ErrorImpersonateUserDenied is auth,
//     ErrorQuotaExceeded quota, ErrorMessageSizeExceeded too large,
//     ErrorNonExistentMailbox config, ...), HTTP 401/403 auth, network,
//     TLS and timeouts connection, a refused host config, an oversized
//     response too large; the EWS code itself stays reachable as an
//     *[Error] through errors.As.
//
// [Test] is the connection test of a source: it runs DNS, the allowlist,
// TCP, the TLS handshake, the login and the right to reach a mailbox
// (impersonation or delegate) one after another and reports the step
// that failed ([Stage]) or the server's version ([ServerVersion]).
//
// Writes to Exchange never notify anyone: CreateItem and UpdateItem send
// SendMeetingInvitations(OrCancellations)=SendToNone and DeleteItem
// SendMeetingCancellations=SendToNone, so during coexistence an attendee
// never gets an invitation twice. UpdateCalendarItem with a ChangeKey uses
// ConflictResolution=NeverOverwrite, so a concurrent change is reported,
// not overwritten.
//
// # Calendar mapping
//
// [ToICalendar] maps a [CalendarItem] to a VCALENDAR with one VEVENT and
// a VTIMEZONE per zone used: subject, body (HTML kept as X-ALT-DESC, its
// text as DESCRIPTION), location, start and end in their zones, all-day
// events as DATE values, organiser, attendees with ROLE and PARTSTAT from
// ResponseType, the reminder as a VALARM, categories, Sensitivity as
// CLASS, LegacyFreeBusyStatus as TRANSP (and X-MICROSOFT-CDO-BUSYSTATUS,
// which keeps Tentative and OOF), IsCancelled as STATUS and the UID.
//
// Attachments: the migrator reads a calendar item's file attachments,
// and those of its modified occurrences (an exception has attachments
// of its own in Exchange), by one GetAttachment ([MS-OXWSATT]) and puts
// those within MigratorOptions.MaxAttachmentSize each and
// MaxEventAttachments for the whole series (10 MiB each by default,
// taken master first, in the items' order) into the master VEVENT, or
// the exception's overriding VEVENT, as
// ATTACH;ENCODING=BASE64;VALUE=BINARY with FMTTYPE and X-FILENAME (RFC
// 5545 §3.8.1.1). One over a limit, and an item attachment (an attached
// e-mail, event or contact), is left out, logged with its reason and
// counted (Result.AttachmentsSkipped). The two-way sync copies
// attachments both ways within SyncerOptions.MaxAttachmentSize and
// MaxEventAttachments: Exchange's as the migration does, and the
// inline ATTACH properties of a master VEVENT to Exchange after each
// create or update from Mailyard: an ATTACH Exchange lacks (same name
// and content) by CreateAttachment, a copied Exchange file the event
// no longer has by DeleteAttachment ([MS-OXWSATT]). Item attachments
// and files over the limits, which never reached Mailyard, stay in
// Exchange; an ATTACH by URI is not sent.
//
// Time zones: a Windows zone id becomes its IANA zone by CLDR's
// windowsZones table (embedded, territory 001); an id CLDR does not know
// falls back to a fixed offset from the standard period's bias of the
// item's TimeZoneDefinition. The VTIMEZONE is computed from Go's tzdata
// for the years from the event's start: each offset change becomes an
// observance with a yearly RRULE when one rule holds for the following
// years, else with explicit RDATEs.
//
// Recurrence ([RRule], [RecurrenceOf]): DTSTART is the series' first
// occurrence (EWS counts from the first day the pattern matches on or
// after Start, iCalendar from DTSTART itself); daily, weekly (days, interval,
// WKST from FirstDayOfWeek), absolute and relative monthly, absolute and
// relative yearly patterns; DayOfWeekIndex Last is -1; Day, Weekday and
// WeekendDay are a BYDAY set with BYSETPOS. EWS moves a DayOfMonth the
// month lacks to its last day, so 31 is BYMONTHDAY=-1 and 29 or 30 are
// BYMONTHDAY=28,..,d;BYSETPOS=-1. NumberedRecurrence is COUNT,
// EndDateRecurrence UNTIL (the end date at the start's time of day, in
// UTC; a DATE for all-day events), NoEndRecurrence neither. Deleted
// occurrences become EXDATEs and modified occurrences overriding VEVENTs
// with RECURRENCE-ID (with the exception's own properties when the caller
// fetched the occurrence items). [FromICalendar] maps back for two-way
// sync; an RRULE no EWS pattern expresses fails with
// [ErrNotRepresentable]. The property test checks that EWS → iCalendar →
// EWS keeps the instance set over two years for random patterns,
// against a brute-force model of EWS recurrence and against
// internal/calendar's expansion.
//
// # Contact mapping
//
// [ToVCard] and [FromVCard] map names, organisation, title, e-mail
// addresses (three, the first preferred), phones by key and type, postal
// addresses, birthday, home page, notes and categories; the vCard UID is
// the contact's ItemId.
//
// # Migrating a mailbox
//
// A [Migrator] copies one Exchange mailbox into a target account
// ([Migrator.Sync], one pass; [Migrator.Pass] runs it inside a
// [migration.Migrator] run, so EWS jobs share the IMAP collectors' run
// history, statuses and error classes):
//
//  0. The pass takes its target's lease (package store/lease, records
//     "migration.ews.pass" keyed by the lower-cased target), so two
//     Migrators (two `migrate ews sync` processes, two nodes on one
//     PostgreSQL) never copy into one mailbox at once: while another
//     pass holds it, Sync fails at once with a *migration.Error of class
//     config wrapping migration.ErrBusy that names the holder, and
//     copies nothing. A holder that died is taken over when its lease
//     expires (MigratorOptions.LeaseTTL after its last renewal), at once
//     when it was a process of this host that no longer exists; a pass
//     that lost its lease stops.
//  1. The job's target address is resolved through the directory
//     (migration.ResolveTarget).
//  2. Mail folders: SyncFolderHierarchy lists the folders below
//     msgfolderroot; plain folders of class IPF.Note (or none) are mail.
//     Their display-name paths are mapped by the IMAP collectors' rules
//     (migration.PlanFolders: exclusions, FolderMap, well-known English
//     and Russian names); the inbox is INBOX and the distinguished
//     sentitems, deleteditems, junkemail and drafts folders have their
//     special use whatever their names.
//  3. Each folder (MigratorOptions.FolderParallel at once, the client's
//     MaxConcurrent calls at once) is read by SyncFolderItems pages of
//     PageSize changes (512 by default), the next page asked for while
//     this one is stored. A mail page's new messages are read by GetItem
//     with MimeContent (at most MaxBatch and 8 MiB per call by the sizes
//     SyncFolderItems gives, a larger message alone; two more batches
//     read concurrently while one is stored, within 24 MiB) and
//     appended, WriteParallel at once (32 by default, within 32 MiB of
//     messages) so that the store commits them together, with IsRead as
//     \Seen, a Flagged follow-up flag as \Flagged and DateTimeReceived
//     as INTERNALDATE; messages over MaxMessageSize are counted, not
//     read.
//  4. The calendar folder becomes the account's default calendar
//     collection (created as "default" if it has none): one object per
//     series with its modified occurrences (fetched by their ids, one
//     GetItem for the series of a batch; objects written WriteParallel
//     at once, those of one UID in order), named
//     after its UID, replaced when the item changes and deleted when the
//     item is deleted. The contacts folder becomes the default address
//     book, one vCard per contact.
//  5. After the items of a page are stored, the folder's checkpoint (the
//     page's new sync state, the counts, and for mail the target
//     mailbox's UIDNEXT) is written in one record transaction with the
//     page's item-to-object records, in the "migration.ews.folder" and
//     "migration.ews.object" namespaces ([Namespaces]; keys start with
//     the target address). A pass killed after an append and before its
//     checkpoint rereads that page on the next pass: the messages of the
//     target mailbox at or above the checkpoint's UIDNEXT are matched by
//     size and SHA-256 of their bytes, and a match is counted instead of
//     appended again; objects are idempotent by name. So a rerun after
//     SIGKILL copies nothing twice and misses nothing.
//
// Later passes copy what SyncFolderItems reports as new since the
// checkpoint, and carry read and flag changes of copied messages over
// (ReadFlagChange, and Update read back without content): each copy's
// UID and the source state last seen are kept in "migration.ews.object",
// and only what the source changed is added to or removed from the copy
// (\Seen, \Flagged), so the user's own changes in Mailyard stay.
//
// Meetings keep their iTIP meaning (RFC 5546) after the move. An event
// the mailbox is invited to keeps its ORGANIZER and every ATTENDEE's
// PARTSTAT from ResponseType, the mailbox's own from MyResponseType
// (added as an ATTENDEE when the list lacks it), so that a reply made
// later over CalDAV goes to the organizer. Meeting messages
// ([MS-OXWSMTGS] MeetingRequest, MeetingResponse, MeetingCancellation)
// are copied as mail like any message, in every folder; those of
// folders other than Sent Items, Deleted Items, Junk and Drafts are
// then applied once this pass's calendar is migrated (a mail page with
// meeting messages waits for it): a request not answered and not out of
// date gives its event (made from the request when the calendar has
// none) with the mailbox's PARTSTAT NEEDS-ACTION, and a METHOD:REQUEST
// copy in the schedule inbox collection ("inbox", made as the CalDAV
// handler makes it), which is how that handler delivers a local
// invitation (RFC 6638 §4.1); a response sets its sender's PARTSTAT in
// the organizer's event; a cancellation marks the event (or the
// cancelled occurrence: its overriding VEVENT, made from the master
// when there is none) STATUS:CANCELLED and, when the mailbox attends
// the meeting, replaces the UID's message in the schedule inbox with a
// METHOD:CANCEL copy of what was cancelled (RFC 6638 §4.1, RFC 5546
// §3.2.5). Applying a page again after a crash changes nothing more.
//
// Messages deleted on the source stay in the target, as with the IMAP
// collectors, unless MigratorOptions.SourceDeletions is set: then a
// Delete that SyncFolderItems reports for a copied message removes the
// copy if it is still as the migration left it (in the mailbox it was
// copied to, with exactly the \Seen and \Flagged the migration gave it,
// its MODSEQ unchanged between the check and the \Deleted flag, RFC
// 7162 §3.1.3, and only its UID expunged, RFC 4315); a copy the user
// flagged, read, tagged or moved stays, and its record is dropped
// either way. Exchange's own delete moves the item to Deleted Items,
// so its copy moves from the folder's mailbox to Trash on the next
// pass, and emptying Deleted Items empties Trash.
//
// # Two-way calendar sync
//
// A [Syncer] keeps the Exchange calendar of each job and the target's
// default calendar collection in step during coexistence (the
// reference platform's sync_all and subscribe_to_all): both ways for
// the targets its [AccessList] selects (allow-list or deny-list mode),
// Exchange → Mailyard only for the others. [Syncer.Run] gives each job
// a loop:
//
//  0. The loop takes the target's lease (package store/lease, records
//     "migration.ews.lease" keyed by the lower-cased target, as the IMAP
//     collectors lease the mailbox a pass copies into), so two syncers
//     (two processes, or two nodes on one PostgreSQL) never sync one
//     target at once. While another holds it, the loop reports
//     [ErrBusy] once (Trigger "lease") and tries again every
//     SyncerOptions.LeaseTTL/4; it takes the target over when the
//     holder releases the lease at stop, or when the lease expires
//     (LeaseTTL after the holder's last renewal; at once when the
//     holder was a process of this host that no longer exists). The
//     lease is renewed every LeaseTTL/4 while the loop runs; a loop
//     whose lease is lost stops its passes and waits for it again.
//     [Syncer.SyncOnce] holds the lease for its pass, and fails with
//     ErrBusy when another syncer holds it.
//  1. A pull subscription to the calendar ([MS-OXWSNTIF] §3.1.4.3) is
//     made before the first pass; GetEvents every PollInterval wakes a
//     pass when it reports events, so an Exchange change arrives within
//     seconds. A subscription Exchange dropped is made again, and that
//     wakes a pass too. A pass also runs every Interval whatever the
//     notifications said.
//  2. Exchange → Mailyard: SyncFolderItems from the checkpointed sync
//     state ("migration.ews.sync"), GetItem of the created and updated
//     series, mapped as the migrator maps them. The state is written
//     after each page is applied, so a restart resumes after the last
//     applied page. An Exchange change that cancels an event the
//     mailbox attends (the organizer cancelled the meeting, or an
//     instance of it) also puts a METHOD:CANCEL copy into the schedule
//     inbox, as the migration does for a MeetingCancellation.
//  3. Mailyard → Exchange (two-way targets): the store's change feed
//     for the account, and on each poll the collection's sync token
//     (another process's writes reach only its own SQLite feed), wake a
//     pass that reads the collection's changes since the checkpointed
//     token (RFC 6578) and creates, updates (with the ChangeKey last
//     seen, ConflictResolution=NeverOverwrite) or deletes the linked
//     items, always with SendToNone: nobody gets an invitation twice.
//  4. Each event known on both sides has a link ("migration.ews.link"):
//     ItemId, the ChangeKey and the ETag each side had when the sync last
//     wrote or read it. An Exchange change whose ChangeKey equals the
//     link's, and a store change whose ETag equals the link's, is the
//     sync's own write coming back and is not synced again, so an edit
//     never loops. An item and an object of the same UID found unlinked
//     (a calendar migrated before) are linked without a write when equal.
//  5. A conflict is an event both sides changed since the last sync:
//     the later modification (Exchange's LastModifiedTime against the
//     store object's modification time) wins on both sides and the
//     losing version is appended to the target's conflict log
//     ("migration.ews.conflict", at most MaxConflicts entries per
//     target, read by [Syncer.Conflicts] or [ReadConflicts]). A change
//     against a deletion keeps the change (nothing is lost) and logs
//     the deletion. A conflict found by the push (UpdateItem refused
//     with ErrorIrresolvableConflict) is decided the same way.
//
// A series made or edited in Mailyard goes to Exchange with its
// exceptions: CreateItem or UpdateItem writes the master (an update
// that sets the pattern drops the series' exceptions in Exchange),
// then each EXDATE becomes a DeleteItem and each overriding VEVENT
// (RECURRENCE-ID) an UpdateItem of its occurrence, both named by an
// OccurrenceItemId ([MS-OXWSCORE]: the master's ItemId and the
// instance's 1-based InstanceIndex, counted as EWS expands the series:
// the RRULE from DTSTART in its zone, only the days the pattern
// matches, deleted instances keeping their index). A series and its
// occurrences share one ChangeKey, and the link keeps the one after the
// last occurrence write, so the sync's own writes do not come back.
// While the occurrences are written the link is marked pending: a pass
// that fails half-way writes the whole series again next time, and the
// pull leaves a pending series alone. An override or EXDATE that is no
// instance of its series is left out and logged.
//
// Limits of the two-way sync: an RRULE EWS cannot express and objects
// other than VEVENTs stay in Mailyard (counted as skipped); an
// occurrence carries its subject, body, location, times, reminder,
// categories, sensitivity and free/busy status to Exchange, not other
// properties of its own (nor its attachments); only the default calendar is synced;
// each job polls its own pull subscription (no streaming subscription
// shared by many mailboxes).
//
// Not done yet: other non-message items in mail folders (tasks, notes,
// posts), and sub-calendars and sub-address books. A [Migrator] pass and
// a [Syncer] of one target hold different leases: the syncer's writes
// to the calendar and the migrator's are both idempotent by UID.
package ews
