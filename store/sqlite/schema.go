package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// schemaV1 is version 1 of the index, as the first release created it; a
// new database starts from it and runs every migration, so that old and
// new databases take the same path. Never change it: change the schema
// by adding a migration. Times are Unix nanoseconds. Flags are stored
// canonical (store.NormalizeFlags), space-separated, so metadata search
// can match them with instr() without loading bodies.
const schemaV1 = `
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE accounts (
	id            TEXT PRIMARY KEY,
	max_bytes     INTEGER NOT NULL DEFAULT 0,
	max_messages  INTEGER NOT NULL DEFAULT 0,
	used_bytes    INTEGER NOT NULL DEFAULT 0,
	used_messages INTEGER NOT NULL DEFAULT 0,
	created       INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE mailboxes (
	id             INTEGER PRIMARY KEY,
	account        TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name           TEXT NOT NULL,
	special_use    TEXT NOT NULL DEFAULT '',
	subscribed     INTEGER NOT NULL DEFAULT 0,
	uidvalidity    INTEGER NOT NULL,
	uidnext        INTEGER NOT NULL DEFAULT 1,
	highest_modseq INTEGER NOT NULL DEFAULT 1,
	UNIQUE (account, name)
);

CREATE TABLE messages (
	mailbox       INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           INTEGER NOT NULL,
	modseq        INTEGER NOT NULL,
	flags         TEXT NOT NULL DEFAULT '',
	internal_date INTEGER NOT NULL,
	size          INTEGER NOT NULL,
	blob_id       TEXT NOT NULL,
	PRIMARY KEY (mailbox, uid)
) WITHOUT ROWID;
CREATE INDEX messages_blob ON messages(blob_id);
CREATE INDEX messages_modseq ON messages(mailbox, modseq);
CREATE INDEX messages_date ON messages(mailbox, internal_date);

-- Expunge tombstones for RFC 7162 VANISHED.
CREATE TABLE expunged (
	mailbox INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid     INTEGER NOT NULL,
	modseq  INTEGER NOT NULL,
	PRIMARY KEY (mailbox, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged(mailbox, modseq);

CREATE TABLE collections (
	id           INTEGER PRIMARY KEY,
	account      TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	kind         TEXT NOT NULL,
	name         TEXT NOT NULL,
	display_name TEXT NOT NULL DEFAULT '',
	description  TEXT NOT NULL DEFAULT '',
	color        TEXT NOT NULL DEFAULT '',
	components   TEXT NOT NULL DEFAULT '',
	sync_token   INTEGER NOT NULL DEFAULT 1,
	-- Changes with token <= pruned_token are no longer in the log.
	pruned_token INTEGER NOT NULL DEFAULT 0,
	UNIQUE (account, kind, name)
);

CREATE TABLE objects (
	collection   INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	uid          TEXT NOT NULL,
	etag         TEXT NOT NULL,
	content_type TEXT NOT NULL,
	data         BLOB NOT NULL,
	size         INTEGER NOT NULL,
	modified     INTEGER NOT NULL,
	PRIMARY KEY (collection, name),
	UNIQUE (collection, uid)
) WITHOUT ROWID;

CREATE TABLE object_changes (
	collection INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
	token      INTEGER NOT NULL,
	name       TEXT NOT NULL,
	deleted    INTEGER NOT NULL,
	PRIMARY KEY (collection, token)
) WITHOUT ROWID;

CREATE TABLE records (
	namespace TEXT NOT NULL,
	key       TEXT NOT NULL,
	value     BLOB NOT NULL,
	version   INTEGER NOT NULL,
	PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
`

// migrationV2 makes subscriptions a list of names of their own and keeps
// the zone of INTERNALDATE.
//
//   - A subscription no longer lives on the mailbox row, which DELETE
//     removed with it: RFC 3501 §6.3.6 and RFC 9051 §6.3.7 say the server
//     must not drop a subscribed name because the mailbox went away, and
//     SUBSCRIBE may name a mailbox that does not exist. The subscribed
//     flags are copied into the new table.
//   - internal_zone is the UTC offset, in seconds east, that INTERNALDATE
//     was given with (APPEND) or received in; rows from version 1 were
//     stored in UTC and get 0 (+0000).
const migrationV2 = `
CREATE TABLE subscriptions (
	account TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name    TEXT NOT NULL,
	PRIMARY KEY (account, name)
) WITHOUT ROWID;
INSERT INTO subscriptions (account, name) SELECT account, name FROM mailboxes WHERE subscribed != 0;
ALTER TABLE mailboxes DROP COLUMN subscribed;
ALTER TABLE messages ADD COLUMN internal_zone INTEGER NOT NULL DEFAULT 0;
`

// migrationV3 indexes calendar objects for time-range queries
// (store.Collections.QueryObjects): each object's main component and the
// bounds of its whole recurrence set, as Unix seconds, with the sentinels
// of objectquery.go for unbounded (minimum int64 for first_start, maximum
// for last_end). Rows written before it get an empty component and both
// sentinels: they match every query, which is correct, since the caller
// re-checks what it reads; each PUT of an object sets its real bounds.
//
// The index objects_range keeps the three columns next to (collection,
// name): QueryObjects reads a page of names from it in name order, as a
// covering index, testing component and bounds without reading the
// table (whose rows hold the data first, mostly on overflow pages), then
// reads that page's rows. BenchmarkMonthIndex compared it with indexes
// led by last_end or by first_start (each with the other columns, also
// covering): on a 10,000-object calendar the three are within noise of
// each other for a month near the end or the start of ten years, as
// reading the 200 to 1,000 matching rows dominates; filtering the table
// rows instead was 1.5 to 8 times slower (medians of five runs each, on a
// shared 2-core machine under heavy load, so only the ordering is firm). The name-ordered index is kept
// because its cost does not depend on where the range lies and it needs
// no sort: paging through any result reads the index once in all, while
// an index led by a bound sorts all its candidates again for every page.
const migrationV3 = `
ALTER TABLE objects ADD COLUMN component TEXT NOT NULL DEFAULT '';
ALTER TABLE objects ADD COLUMN first_start INTEGER NOT NULL DEFAULT -9223372036854775808;
ALTER TABLE objects ADD COLUMN last_end INTEGER NOT NULL DEFAULT 9223372036854775807;
CREATE INDEX objects_range ON objects(collection, name, component, first_start, last_end);
`

// migrationV4 gives the outbound queue (package queue, queue.Store) a
// table of its own: one row per recipient of a queued message, found by
// the index on (held, next_attempt) instead of a scan of generic records,
// and claimed with a lease (lease_owner, lease_until). It holds no
// credentials: the next hop is looked up by transport name at delivery.
// Times are Unix nanoseconds; 0 in lease_until is "not leased".
// Recipients queued by earlier releases (JSON records in namespace
// "queue") are moved by the queue itself when it starts
// (queue.Options.Records), so that the store knows nothing of that
// format.
const migrationV4 = `
CREATE TABLE queue_recipients (
	msg          TEXT NOT NULL,
	idx          INTEGER NOT NULL,
	sender       TEXT NOT NULL,
	address      TEXT NOT NULL,
	transport    TEXT NOT NULL DEFAULT '',
	next_hop     TEXT NOT NULL DEFAULT '',
	tls          INTEGER NOT NULL DEFAULT 0,
	utf8         INTEGER NOT NULL DEFAULT 0,
	size         INTEGER NOT NULL,
	created      INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	held         INTEGER NOT NULL DEFAULT 0,
	warned       INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	remote_mta   TEXT NOT NULL DEFAULT '',
	lease_owner  TEXT NOT NULL DEFAULT '',
	lease_until  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (msg, idx)
) WITHOUT ROWID;
CREATE INDEX queue_due ON queue_recipients(held, next_attempt);
CREATE INDEX queue_leased ON queue_recipients(lease_owner) WHERE lease_owner != '';
`

// migrations[i] takes a database from version i+1 to version i+2; the
// last one reaches schemaVersion.
var migrations = [schemaVersion - 1]string{migrationV2, migrationV3, migrationV4, migrationV5, migrationV6, migrationV7, migrationV8, migrationV9, migrationV10}

// migrationV7 keeps each message's save date (store.Message.SaveDate,
// RFC 8514): Unix nanoseconds of its delivery, APPEND, COPY or MOVE into
// the mailbox. Rows written before it get 0, "unknown", which IMAP
// answers as NIL (RFC 8514 allows a mailbox without save dates).
const migrationV7 = `
ALTER TABLE messages ADD COLUMN save_date INTEGER NOT NULL DEFAULT 0;
`

// migrationV8 keeps metadata entries (store.Metadata, IMAP METADATA, RFC
// 5464): one row per entry of a mailbox, or of the server when mailbox
// is NULL. The rows of a mailbox go with it (DELETE) and stay with its
// ID when it is renamed; those of an account go with the account.
const migrationV8 = `
CREATE TABLE metadata (
	account TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	mailbox INTEGER REFERENCES mailboxes(id) ON DELETE CASCADE,
	name    TEXT NOT NULL,
	value   BLOB NOT NULL
);
CREATE UNIQUE INDEX metadata_entry ON metadata(account, ifnull(mailbox, 0), name);
CREATE INDEX metadata_mailbox ON metadata(mailbox);
`

// migrate creates the schema in an empty database, brings one written by
// an older version up to date in one transaction (a failure leaves it as
// it was), and refuses databases written by a newer version or by another
// program. It checks the identity again inside the write transaction, so
// a database that changed after checkDataDir looked is not taken over,
// and stamps the application_id on databases of releases without it.
func migrate(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	err := func() error {
		id, err := readIdentity(ctx, conn)
		if err != nil {
			return err
		}
		if err := id.check(); err != nil {
			return err
		}
		v := id.version
		if v == 0 {
			if _, err := conn.ExecContext(ctx, schemaV1); err != nil {
				return err
			}
			v = 1
		}
		for ; v < schemaVersion; v++ {
			if _, err := conn.ExecContext(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("to version %d: %w", v+1, err)
			}
		}
		if id.version != schemaVersion {
			if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
				return err
			}
		}
		if id.app != applicationID {
			if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}
