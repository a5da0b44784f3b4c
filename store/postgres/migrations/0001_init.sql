-- Version 1 of the Mailyard schema on PostgreSQL. Never edit a released
-- migration: add the next numbered file. Times are Unix nanoseconds
-- (bigint) so that every backend keeps them exactly; flags are the
-- canonical flags (store.NormalizeFlags) joined by one space.

CREATE TABLE mailyard_meta (
	key   text PRIMARY KEY,
	value bigint NOT NULL
);
INSERT INTO mailyard_meta (key, value) VALUES ('last_uidvalidity', 0);

CREATE TABLE accounts (
	id            text COLLATE "C" PRIMARY KEY,
	max_bytes     bigint NOT NULL DEFAULT 0,
	max_messages  bigint NOT NULL DEFAULT 0,
	used_bytes    bigint NOT NULL DEFAULT 0,
	used_messages bigint NOT NULL DEFAULT 0,
	created       bigint NOT NULL,
	-- feed_seq numbers the account's published changes (table feed);
	-- it only moves while the account row is locked, so in commit order.
	feed_seq      bigint NOT NULL DEFAULT 0
);

CREATE TABLE mailboxes (
	id             bigserial PRIMARY KEY,
	account        text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name           text COLLATE "C" NOT NULL,
	special_use    text NOT NULL DEFAULT '',
	uidvalidity    bigint NOT NULL,
	uidnext        bigint NOT NULL DEFAULT 1,
	highest_modseq bigint NOT NULL DEFAULT 1,
	UNIQUE (account, name)
);

CREATE TABLE subscriptions (
	account text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name    text COLLATE "C" NOT NULL,
	PRIMARY KEY (account, name)
);

-- Message bodies: one row per body, its bytes in chunks of at most
-- chunk_size bytes (blobs.go). Several index rows may name one body.
CREATE TABLE blobs (
	id   bigserial PRIMARY KEY,
	size bigint NOT NULL DEFAULT 0
);
CREATE TABLE blob_chunks (
	blob bigint NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
	n    integer NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (blob, n)
);

CREATE TABLE messages (
	mailbox       bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           bigint NOT NULL,
	modseq        bigint NOT NULL,
	flags         text NOT NULL DEFAULT '',
	internal_date bigint NOT NULL,
	internal_zone integer NOT NULL DEFAULT 0,
	size          bigint NOT NULL,
	blob_id       bigint NOT NULL REFERENCES blobs(id),
	PRIMARY KEY (mailbox, uid)
);
CREATE INDEX messages_blob ON messages(blob_id);
CREATE INDEX messages_modseq ON messages(mailbox, modseq);

-- Expunge tombstones for RFC 7162 VANISHED.
CREATE TABLE expunged (
	mailbox bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid     bigint NOT NULL,
	modseq  bigint NOT NULL,
	PRIMARY KEY (mailbox, uid)
);
CREATE INDEX expunged_modseq ON expunged(mailbox, modseq);

CREATE TABLE collections (
	id           bigserial PRIMARY KEY,
	account      text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	kind         text COLLATE "C" NOT NULL,
	name         text COLLATE "C" NOT NULL,
	display_name text NOT NULL DEFAULT '',
	description  text NOT NULL DEFAULT '',
	color        text NOT NULL DEFAULT '',
	components   text NOT NULL DEFAULT '',
	sync_token   bigint NOT NULL DEFAULT 1,
	-- Changes with token <= pruned_token are no longer in the log.
	pruned_token bigint NOT NULL DEFAULT 0,
	UNIQUE (account, kind, name)
);

-- first_start and last_end are Unix seconds, with the minimum and
-- maximum bigint for unbounded (objects.go).
CREATE TABLE objects (
	collection   bigint NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
	name         text COLLATE "C" NOT NULL,
	uid          text NOT NULL,
	etag         text NOT NULL,
	content_type text NOT NULL,
	data         bytea NOT NULL,
	size         bigint NOT NULL,
	modified     bigint NOT NULL,
	component    text NOT NULL DEFAULT '',
	first_start  bigint NOT NULL,
	last_end     bigint NOT NULL,
	PRIMARY KEY (collection, name),
	UNIQUE (collection, uid)
);
CREATE INDEX objects_range ON objects(collection, name, component, first_start, last_end);

CREATE TABLE object_changes (
	collection bigint NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
	token      bigint NOT NULL,
	name       text NOT NULL,
	deleted    boolean NOT NULL,
	PRIMARY KEY (collection, token)
);

CREATE TABLE records (
	namespace text COLLATE "C" NOT NULL,
	key       text COLLATE "C" NOT NULL,
	value     bytea NOT NULL,
	version   bigint NOT NULL,
	PRIMARY KEY (namespace, key)
);

-- The change feed (feed.go): every committed change of an account, by
-- its feed_seq; NOTIFY mailyard_feed wakes the other nodes, which read
-- what they have not seen from here. Old rows are pruned.
CREATE TABLE feed (
	account text NOT NULL,
	seq     bigint NOT NULL,
	at      bigint NOT NULL,
	change  jsonb NOT NULL,
	PRIMARY KEY (account, seq)
);
CREATE INDEX feed_at ON feed(at);

CREATE TABLE queue_recipients (
	msg          text COLLATE "C" NOT NULL,
	idx          integer NOT NULL,
	sender       text NOT NULL,
	address      text NOT NULL,
	transport    text NOT NULL DEFAULT '',
	next_hop     text NOT NULL DEFAULT '',
	tls          integer NOT NULL DEFAULT 0,
	utf8         boolean NOT NULL DEFAULT false,
	size         bigint NOT NULL,
	created      bigint NOT NULL,
	next_attempt bigint NOT NULL,
	attempts     integer NOT NULL DEFAULT 0,
	held         boolean NOT NULL DEFAULT false,
	warned       boolean NOT NULL DEFAULT false,
	last_error   text NOT NULL DEFAULT '',
	remote_mta   text NOT NULL DEFAULT '',
	lease_owner  text NOT NULL DEFAULT '',
	lease_until  bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (msg, idx)
);
CREATE INDEX queue_due ON queue_recipients(held, next_attempt);
CREATE INDEX queue_leased ON queue_recipients(lease_owner) WHERE lease_owner <> '';
