-- Version 7: the bodies of messages a milter quarantined
-- (smtp.QuarantineBodies), in chunks of at most 256 KiB as queue_bodies,
-- so that any node releases or deletes a message any node held.
-- written is when the chunk was written (Unix nanoseconds), for the
-- reclaim of bodies whose record was never committed.
CREATE TABLE quarantine_bodies (
	msg     text COLLATE "C" NOT NULL,
	n       integer NOT NULL,
	data    bytea NOT NULL,
	written bigint NOT NULL,
	PRIMARY KEY (msg, n)
);
