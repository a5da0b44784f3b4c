-- Version 9 makes writes cheaper for the server (bench/README.md,
-- "postgres": the IMAP mix).
--
-- Message bodies, their full-text entries, queued and quarantined
-- bodies and DAV objects are compressed with lz4 where the server has
-- it (PostgreSQL 14 and later, built with lz4, as Debian's and the
-- official images are) instead of the default pglz, which took a few
-- per cent of the server's CPU in the IMAP mix. Values stored before
-- keep their compression; both are read alike. On a server without lz4
-- nothing changes.
DO $$
BEGIN
	IF 'lz4' = ANY (coalesce((SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'), '{}')) THEN
		ALTER TABLE blob_chunks ALTER COLUMN data SET COMPRESSION lz4;
		ALTER TABLE text_docs ALTER COLUMN header SET COMPRESSION lz4, ALTER COLUMN body SET COMPRESSION lz4;
		ALTER TABLE queue_bodies ALTER COLUMN data SET COMPRESSION lz4;
		ALTER TABLE quarantine_bodies ALTER COLUMN data SET COMPRESSION lz4;
		ALTER TABLE objects ALTER COLUMN data SET COMPRESSION lz4;
	END IF;
END
$$;

-- The STATUS counts of version 8 move in the statements that change the
-- messages (store/postgres: countsOfSQL and StoreFlags) instead of in
-- statement-level PL/pgSQL triggers, which cost each of those statements
-- a second one: a twentieth of the server's CPU in the IMAP mix.
DROP TRIGGER messages_counts_insert ON messages;
DROP TRIGGER messages_counts_delete ON messages;
DROP TRIGGER messages_counts_update ON messages;
DROP FUNCTION mailyard_mailbox_counts();
-- Counted afresh once, as version 8 did. Nodes still running version 8
-- would not move the counts once the triggers are gone: stop them before
-- this migration runs (Check reports counts that disagree).
UPDATE mailboxes mb SET (messages, unseen, deleted, size) = (SELECT count(*), coalesce(sum(1 - mailyard_has_flag(m.flags, '\Seen')), 0),
	coalesce(sum(mailyard_has_flag(m.flags, '\Deleted')), 0), coalesce(sum(m.size), 0) FROM messages m WHERE m.mailbox = mb.id);

-- EXPUNGE reads the messages of the mailbox flagged \Deleted (Expunge:
-- selectLockedBatch with hasFlagSQL): through this partial index it
-- reads those alone instead of every message of the mailbox. The
-- predicate is hasFlagSQL's expression, word for word, so that the
-- planner proves the query implies it.
CREATE INDEX messages_deleted ON messages (mailbox, uid)
	WHERE position(' ' || lower('\Deleted') || ' ' in ' ' || lower(flags) || ' ') > 0;
