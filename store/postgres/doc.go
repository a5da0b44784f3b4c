// Package postgres is Mailyard's store backend for several nodes on one
// PostgreSQL database (github.com/jackc/pgx/v5). It implements
// [store.Store], [queue.Store], [queue.Bodies] and
// smtp.QuarantineBodies; any number of [Store] values, in one process or
// on many machines, may use one database at once, and each
// sees what the others committed.
//
// # Writes
//
// Every write is one PostgreSQL transaction (a message's body is
// uploaded just before it, see Bodies), committed before the call
// returns, with synchronous_commit on (set on every connection), so what
// a caller was told is stored survives a crash of the database server.
// A write to an account's mail first locks the account's row (SELECT ...
// FOR UPDATE, together with the mailbox row where there is one): that
// orders UID and MODSEQ assignment, quota checks and the change feed of
// the account across all nodes, while different accounts proceed in
// parallel. Deliver locks its accounts in ID order, so two deliveries
// never deadlock; a write to a collection locks its account's row
// before the collection's, as DeleteAccount does. Bodies shared by
// several accounts are locked in ID order too: the index rows naming
// them go in by body ID (the foreign-key checks lock them), freeing
// locks them sorted, and Move, whose copies keep its bodies, frees none.
//
// Statements, and the round trips they take, not rows, are the cost:
// the hot operations send a small constant number whatever the number of
// messages or recipients, using arrays (unnest) and data-modifying CTEs,
// and Deliver, Append, StoreFlags, Expunge, Copy and Move pipeline
// theirs: BEGIN with the reads that lock (and read the messages they
// act on, which the account's lock keeps as read), then the writes with
// the feed and COMMIT, two round trips (besides a body's upload). With
// BEGIN and COMMIT counted, Deliver to any number of recipients and
// Append are 7 statements in 3 round trips, StoreFlags 7 in 2, Expunge
// 10 in 2, Copy 8 in 2; ListMessages, Changes, Status, OpenBody and
// OpenMessage of a body of one chunk and SearchText 1 (TestRoundTrips
// checks the bounds); GetRecord answered from its cache and Mailbox
// answered from memory none (see "Caches kept by the feed"). A write
// holds its pool connection while it waits for its account's lock and
// its commit's flush, so the pool is larger than pgxpool's default
// ([DefaultPoolSize]).
//
// Writes that would wait for the same row locks share transactions
// (group commit, commitGroups): deliveries to the same accounts, and
// this Store's pipelined writes to one account's mailboxes (Append,
// AppendBatch, StoreFlags, Expunge, Copy, Move). Those that arrive
// while one is in flight queue in memory, holding no pool connection,
// and the next transaction takes all of them: one commit, and so one
// WAL flush, and one feed write for all, each with its own outcome
// (one refused for quota or a missing mailbox is refused alone). A
// group of n account writes takes n+1 round trips: each write's reads
// go with the statements of the one before it, so they see what it
// left; the account's row, locked by the first, is not locked again,
// and each later write locks its mailbox with the account's columns in
// one statement. The bodies a group's writes lock are locked in ID order by each
// write, not across the group: two groups of two accounts copying and
// expunging messages whose bodies the accounts share (one delivery to
// both) can deadlock; PostgreSQL detects it (deadlock_timeout) and the
// group that fails is retried one write at a time.
//
// A mailbox row keeps the counts STATUS answers (messages, unseen,
// deleted, size), moved by the statements that change the messages
// (schema 9; schema 8 used triggers, a second statement for each), so
// Status reads one row; Check reports counts that disagree with the
// messages. A partial index holds the messages flagged \Deleted
// (messages_deleted, schema 9), so Expunge reads those and not the
// whole mailbox. OpenMessages opens the bodies of a UID set in one
// statement per MiB of their first chunks.
//
// Foreign keys are kept only where their lock orders two writers (a
// message to its body). Those that the writes checked on every row for
// nothing the code does not keep anyway (mailbox to account, message
// and tombstone to mailbox, chunk and full-text entry to body) were
// dropped in schema 11: each check was a statement of its own, about as
// many as the writes sent. DeleteAccount, DeleteMailbox and the body
// sweep delete the rows the cascades deleted, and Check reports a row
// whose parent is gone ("orphan-row"). As for schema 9, nodes of the
// schema before must be stopped before a node migrates.
//
// Every connection uses generic plans (plan_cache_mode =
// force_generic_plan, PostgreSQL 12 or later; a DSN that sets
// plan_cache_mode keeps its own): planned once per connection, where
// PostgreSQL chose to plan the writes' array statements afresh on every
// call. Text and fuzzy searches, whose best plan depends on their
// patterns, are sent with their arguments as literals and planned for
// them.
//
// # Bodies
//
// Message bodies are kept in the database by default, so that it is the
// only state to back up: one row in blobs per body, its bytes in
// blob_chunks rows of at most 256 KiB, written while the body is read and
// read back a chunk at a time, so a body is never whole in memory. One
// delivery stores one body for all its recipients; a body goes with the
// last message that names it.
//
// Append and Deliver upload the body before their transaction, one
// statement per chunk, and the transaction that stores the message
// claims it; a reader fetches one chunk per statement as it is read. So
// a slow client sending or reading a body holds no connection, lock or
// transaction between chunks, and cannot starve a node's pool. A body
// no message names (being uploaded, refused, or freed by its last
// expunge) is loose: it stays readable, so a body reads whole even if
// its message is expunged meanwhile, and is swept 15 minutes later (a
// node killed mid-upload leaves nothing for longer). The blob code sits
// behind a small internal interface so that an object store can replace
// it without touching the index code.
//
// # Full-text search
//
// [Store.SearchText] (store.TextSearcher) answers IMAP SEARCH BODY and
// TEXT from table text_docs: per body, its header fields and texts as
// internal/msgtext extracts them, lower-cased, extracted while the body
// is uploaded (it is read once), dropped when the last message naming
// the body goes. The transaction that stores the message stores the
// body's entry as not indexed (its messages are candidates of every
// search), and once it committed, the node's text indexer writes the
// texts in batches on a connection of its own (textindexer.go): the
// trigram inserts, most of an APPEND's cost, no longer hold the
// account's lock, and a message expunged within a second costs the
// index nothing. A sweep, on one node at a time, fills the entries a
// node left (stopped before its batch, queue full) and those of bodies
// stored before the index; [Store.IndexPendingText] fills them all now.
// One pg_trgm GIN index (schema 10) is on each entry's distinct words
// (column words, textwords.go), so an entry's trigrams are made once
// per word and not once per occurrence: a search narrows to the
// entries that hold each of the pattern's words as the pattern has them
// (LIKE '% word %', an end of the pattern unbounded), and PostgreSQL
// checks every candidate against the pattern itself in the header and
// the texts, so a body indexed whole is answered exactly (Latin, Cyrillic or any other
// script); bodies over the bounds, or whose text PostgreSQL's text type
// cannot hold (NUL, invalid UTF-8), are candidates of every search.
// Migration 3 runs CREATE EXTENSION pg_trgm (a trusted extension in the
// contrib modules Debian's postgresql package ships; the database owner
// may create it); messages stored before it are candidates of every
// search until the sweep reached them or [Store.ReindexText] ran
// (`mailserver search reindex`).
//
// # Change feed
//
// Each committed change is written, in the same transaction, to table
// feed under a per-account sequence number taken while the account row
// is locked (so in commit order), and once the transaction committed
// NOTIFY mailyard_feed carries the account (a bounded payload) to every
// node. The notification is not sent by the writing transaction:
// PostgreSQL commits the transactions that NOTIFY one at a time, for
// the whole cluster, each holding a lock through its WAL flush, which
// made every write wait for all the others' flushes. Each Store sends
// the notifications of its commits from one connection of its own,
// those of the commits that came in meanwhile together in one statement
// (notifier.go). Each Store keeps one connection LISTENing; a
// notification, or a local commit, makes it read the account's new feed
// rows and hand them to its subscribers. When the listening connection
// is lost, the Store reconnects with backoff and then reads every
// subscribed account's rows after the last one it delivered, so a
// subscriber misses nothing; and every 5 s it checks in one statement
// that no subscribed account has rows it was not notified of, which a
// node that died between a commit and its notification leaves behind
// (found by the second check, so within 10 s).
// Rows older than [Options.FeedRetention] are pruned; a subscriber that
// far behind gets [store.ChangeOverflow] and resynchronises from its
// MODSEQ or sync token.
//
// # Caches kept by the feed
//
// These are answered from memory, and only while the listening
// connection is up (when it is lost they are emptied and bypassed until
// LISTEN is back, since notifications may have been missed). A
// connection that dies without an error reaching the client (the
// server's host gone, a firewall or proxy that drops it silently) is
// found by a round trip after 2 s without a notification that does not
// answer within 10 s, so while it hangs an answer may be up to about
// 12 s older than another node's change:
//
//   - [Store.GetRecord] (the directory's lookups on every SMTP recipient
//     and login): every record write, on any node, sends NOTIFY
//     mailyard_records naming its key from the statement that writes
//     the row, so PostgreSQL delivers it at commit, and each node drops
//     the key when it arrives; a write through the Store itself drops
//     its keys before UpdateRecords returns. A read that missed fills
//     the cache only if its key was not invalidated while it ran. So an
//     answer outlives another node's change by at most the
//     notification's delivery. The cache keeps at most 16384 answers
//     (not-found ones too) and 32 MiB of namespaces, keys and values,
//     and no entry over 16 KiB. A node of an older release, which does
//     not notify, must not write records of a database these nodes
//     share.
//   - [Store.ChangeCount] (imap.ChangeCounter), a per-account number
//     that moves with this Store's commits before the writing call
//     returns and with every node's feed notification before this
//     node's subscribers are woken by it.
//   - [Store.OpenMessages] (imap.MessagesOpener), the bodies of a UID
//     set opened together: one statement per MiB of their first chunks,
//     where an IMAP FETCH of n bodies took n statements.
//   - [Store.ListChangeCount] (imap.ListChangeCounter), a per-account
//     number that moves only when the account's mailbox list or
//     subscriptions change: locally before the writing call returns,
//     and on every node by NOTIFY mailyard_lists, which the writing
//     Store sends after the commit, before its feed notification.
//   - [Store.Mailbox]: the row of a mailbox as this Store's last write
//     to it left it (Append, StoreFlags, Expunge, Copy and Move know it
//     from what they read under the account's lock) or as it last read
//     it, used while the account's ChangeCount has not moved since; a
//     write's row is kept only if no other change of the account was
//     counted between its locking reads and its commit, so it is the
//     latest the Store has heard of. The IMAP poll after another
//     session's write then costs the one statement of Changes.
//
// A Store counts its own commits when they return and skips the
// notifications its own connections sent (by their backend PIDs, the
// pool's and the notifier's), so
// that their echo does not drop what the commit left in memory; a
// COMMIT that was sent but not answered moves the numbers all the same.
//
// # Schema
//
// The schema is versioned SQL embedded in the binary (migrations/*.sql).
// [Open] applies the missing versions in one transaction under
// pg_advisory_xact_lock, so nodes starting at once neither race nor apply
// a version twice, and refuses a database a newer release migrated with
// [ErrSchemaTooNew].
//
// # Outbound queue
//
// ClaimRecipients selects due recipients FOR UPDATE SKIP LOCKED and
// leases them in the same statement, so nodes claiming at once never get
// the same recipient. The queued bodies (queue.Bodies) are chunked rows
// of their own table, written a chunk per asynchronously committed
// statement before EnqueueRecipients (whose synchronous commit makes
// them durable), so a node delivers what any other node queued. The
// bodies of quarantined messages (smtp.QuarantineBodies) are kept the
// same way in table quarantine_bodies, made durable by the synchronous
// commit of the quarantine's record, so any node releases what any node
// held.
package postgres
