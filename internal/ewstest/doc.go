// Package ewstest is a stateful Exchange Web Services server for tests:
// an http.Handler that speaks SOAP 1.1 EWS the way Exchange 2013 SP1,
// 2016 and 2019 do, built from the published protocol documents
// ([MS-OXWS] and its folder, item, calendar, contact, search, sync and
// notification specifications) and checked against a real independent
// client (exchangelib, .ci/interop-ews.sh).
//
// What it keeps, per mailbox:
//
//  1. Folders: the well-known ones (root, msgfolderroot, inbox, sentitems,
//     drafts, deleteditems, junkemail, outbox, calendar, contacts, tasks,
//     notes) and user folders with any names (GetFolder, FindFolder,
//     CreateFolder, SyncFolderHierarchy).
//  2. Items as the element trees clients send (t:Message with MimeContent,
//     t:CalendarItem, t:Contact, t:Task, and the meeting messages
//     t:MeetingRequest, t:MeetingResponse, t:MeetingCancellation, which
//     are messages with meeting properties), so every property of the types
//     schema round-trips; the server computes ids, change keys, times,
//     sizes, message envelopes from MIME, calendar UIDs, organisers and
//     series data: recurrence expanded in the start time zone, exceptions
//     and deleted occurrences by instance index, first and last
//     occurrences (FindItem with paging or CalendarView, GetItem with
//     shapes and MimeContent, CreateItem, UpdateItem with ChangeKey and
//     ConflictResolution, DeleteItem, SyncFolderItems).
//  3. A change number per mailbox: sync states are opaque base64 of the
//     last change a client has, so a client resumes from any state it
//     saved, and pull subscriptions (Subscribe, GetEvents, Unsubscribe)
//     queue events until a later watermark acknowledges them. Streaming
//     subscriptions queue them for GetStreamingEvents, one response of
//     several envelopes: the events queued so far at once, each later
//     event as it happens, and ConnectionStatus Closed after
//     ConnectionTimeout minutes (Options.StreamingMinute shortens a
//     minute for tests). Queues, subscriptions per mailbox, events per
//     GetEvents and open streaming connections per account are bounded.
//
// Around the operations: Basic and NTLM (NTLMv2, [MS-NLMP]) authentication,
// the ExchangeImpersonation header checked against a per-account right,
// delegate rights, a throttling budget answering ErrorServerBusy with
// BackOffMilliseconds (or HTTP 503), a bounded request size, and one
// mutex, so the server is safe for concurrent use. Accounts and contents
// come from the Go API (AddUser, AddFolder, AddItem, AddMessage,
// Generate) or a JSON Seed (LoadSeed; the ewsd command reads one).
//
// Everything is in memory: ewsd started again begins from its seed, so
// sync states and subscriptions from before are refused (as from a
// mailbox moved to another server).
//
// Attachments ([MS-OXWSATT]): file and item attachments made with
// their item (CreateItem, as Exchange 2010 and later take them) or by
// CreateAttachment, listed without content in an item's Attachments
// (with HasAttachments), read with their content by GetAttachment and
// removed by DeleteAttachment; each change of an item's attachments
// moves its change key. CreateAttachment on an occurrence's ItemId
// makes the occurrence an exception with attachments of its own: a copy
// of the series' then, and its changes ([MS-OXOCAL] §2.2.10).
//
// Meeting messages ([MS-OXWSMTGS]): an organizer's CreateItem with
// SendMeetingInvitations, UpdateItem with
// SendMeetingInvitationsOrCancellations and DeleteItem with
// SendMeetingCancellations (other than SendToNone), and CreateItem of
// a CancelCalendarItem (which moves the organizer's item to Deleted
// Items), deliver to each attendee with a mailbox here what Exchange's
// transport and calendar assistant do: a MeetingRequest
// (NewMeetingRequest or FullUpdate) with the attendee's tentative
// calendar item of the UID as AssociatedCalendarItemId, made or
// updated, earlier requests of the UID marked IsOutOfDate; or a
// MeetingCancellation (with RecurrenceId for an occurrence) with the
// attendee's item, or occurrence, marked IsCancelled. Attendees
// removed by an update get a cancellation. An attendee's AcceptItem,
// TentativelyAcceptItem or DeclineItem (on the request or on their
// calendar item) sets their item's MyResponseType (a declined item
// goes to Deleted Items), takes the UID's requests out of the inbox and
// gives the organizer a MeetingResponse and the answer in their item's
// attendee list. Invitations to other addresses are only recorded
// (Server.Invitations); no copy goes to Sent Items.
//
// Not modelled: restrictions beyond equality and substring tests, sort
// orders (items come in creation order), moving and copying
// items by request, folder updates and deletes, push notifications, and iCalendar/vCard MimeContent for calendar items and
// contacts. Windows time zone ids outside a small table are taken as UTC.
package ewstest
