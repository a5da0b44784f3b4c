// Package sqlite is Mailyard's embedded store backend: an SQLite database
// (pure Go, modernc.org/sqlite) in WAL mode for the index, and one file per
// message body under a blob directory. It implements [store.Store].
//
// # Layout
//
//	dir/mail.db         the index (accounts, mailboxes, messages, ...)
//	dir/textindex.db    the full-text index (see Full-text index)
//	dir/blobs/xx/<id>   message bodies, xx = first two hex digits of id
//	dir/tmp/            left by older versions (bodies once went here first)
//	dir/store.lock      held (flock) by every process that has the store open
//	dir/MAILYARD        marker: "mailyard-data-dir 1" on its first line
//
// [Open] writes nothing before it has checked that dir is Mailyard's: the
// marker's format and version, and mail.db's application_id ("MYRD",
// 0x4d595244) and user_version (the schema version). Data directories of
// releases before the marker are recognised by their tables and get both.
//
// # Writes and group commit
//
// Every mutating call becomes a request to a single writer goroutine that
// owns the only write connection. The writer takes the first queued request,
// waits [Options.GroupCommitWindow] (zero: not at all), drains whatever else
// is queued up to [Options.MaxBatch], and runs the batch in one
// transaction: each request inside its own SAVEPOINT, so a request that
// fails (over quota, not found, ...) is rolled back alone and the others
// commit. One COMMIT, so one WAL fsync (synchronous=FULL), serves the
// whole batch. The writer does no full-text indexing (see Full-text
// index). After the commit the writer publishes the batch's changes to
// the feed in commit order, deletes blob files no row references any
// more, and only then answers each caller.
//
// # Blob durability
//
// [Store.Append] and [Store.Deliver] stream the body, in the caller's
// goroutine, to a new file at its final place in the blob tree (a random
// name, created exclusively), fsync it and the blob directory, and only
// then queue the index rows. So a committed row always points at a
// durable file, and no row ever names a file still being written. A crash
// before the commit leaves an orphan blob: the first process to open the store
// while no other has it open (an exclusive flock on store.lock succeeds)
// removes orphans and temporary files, then keeps a shared lock like every
// other process. [Store.Check] reports orphans without removing them.
//
// A second process (an admin tool) can open the same directory while a
// server runs: SQLite's busy timeout serialises their writers.
//
// # Schema versions
//
// A new database is created at schema version 1 and taken through every
// migration, so old and new databases follow one path; a database of an
// older release is migrated at Open, in one transaction. Version 2 keeps
// subscriptions apart from mailboxes and the zone of INTERNALDATE;
// version 3 indexes calendar objects by component and bounds for
// [store.Collections.QueryObjects] (objects stored before it match every
// time range until they are next written); version 4 gives the outbound
// queue its table (queue.Store: recipients found by next attempt time,
// claimed with a lease, no credentials); version 5 adds the full-text
// index; version 6 keeps each mailbox's STATUS counts (messages, unseen,
// deleted, bytes) in its row, maintained by triggers, so that STATUS
// reads one row (and, right after a write, nothing: the writer publishes
// the counts of the mailboxes it changed with each commit); version 7
// keeps each message's save date (RFC 8514; messages stored before it
// have none); version 8 keeps metadata entries of mailboxes and of the
// server ([store.Metadata], RFC 5464); version 10 moves the full-text
// index into textindex.db.
//
// # Full-text index
//
// Deliver and Append store a message with its full-text entry (table
// text_docs of mail.db) "not indexed yet", and a background indexer in
// the Store fills it afterwards, in batches of 64: live mail as soon as
// 64 wait or within a second, a bulk import's (an Append with
// [store.AppendOptions] DeferTextIndex, which the migration tools set)
// when the store has had no write for a moment (at least one batch every
// 10 s under constant writes). At Open it picks up entries that earlier
// processes left. Until filled, a message is a candidate of every text
// search, so SEARCH stays exact. [Store.IndexPendingText] fills what
// waits at once.
//
// The index itself (FTS5 tables text_fts, trigrams, and text_words,
// words for fuzzy search) lives in textindex.db, a database of its own
// that only the indexer writes, over a connection of its own: the
// writer of mail.db, which every STORE, COPY, EXPUNGE and APPEND waits
// for, does no FTS5 work (tokenisers, segment merges) at all. Read
// connections attach textindex.db, and a search joins the two in one
// query. The indexer commits an entry's rows in textindex.db first, then
// marks the entry indexed in mail.db; a search reads mail.db's state
// first, so an entry it sees indexed has its rows, and one not yet
// indexed is a candidate. Entry ids are never reused (AUTOINCREMENT), so
// rows left in textindex.db by a message that is gone match nothing;
// their deletion is queued to the indexer after the expunge commits, and
// Open deletes any a crash left. Open also puts entries marked indexed
// whose rows textindex.db lacks (the file removed, or restored from an
// older copy) back to "not indexed", so the file can be deleted to
// rebuild the index. Version 10 moved the index out of mail.db: its
// entries start "not indexed" again and the indexer rebuilds the index
// in the background. [Store.Check] runs FTS5's integrity check of both
// tables and verifies that every entry marked indexed has its rows. See
// textindex.go, and bench/README.md, "imap probe and mix".
package sqlite
