-- Version 8: each mailbox keeps the counts IMAP STATUS answers (RFC 9051
-- §6.3.11: MESSAGES, UNSEEN, DELETED; RFC 8438: SIZE) in its row, so
-- STATUS reads one row instead of aggregating the mailbox's messages.
-- The counts move in the statement that changes the messages: one
-- statement-level trigger per event adds up what the statement
-- inserted, deleted or changed, per mailbox (its transition tables), in
-- one UPDATE of the mailboxes it touched. Every write of an account's
-- messages holds the account's row lock first, so the mailbox rows are
-- updated in one order per account and never wait for each other.
ALTER TABLE mailboxes
	ADD COLUMN messages bigint NOT NULL DEFAULT 0,
	ADD COLUMN unseen   bigint NOT NULL DEFAULT 0,
	ADD COLUMN deleted  bigint NOT NULL DEFAULT 0,
	ADD COLUMN size     bigint NOT NULL DEFAULT 0;

-- mailyard_has_flag is 1 if the space-separated flags hold flag f,
-- compared without regard to case (RFC 9051 §2.3.2), else 0: the test of
-- hasFlagSQL in store/postgres.
CREATE FUNCTION mailyard_has_flag(flags text, f text) RETURNS bigint
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT CASE WHEN position(' ' || lower(f) || ' ' in ' ' || lower(flags) || ' ') > 0 THEN 1 ELSE 0 END $$;

CREATE FUNCTION mailyard_mailbox_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		UPDATE mailboxes mb SET messages = mb.messages + d.n, unseen = mb.unseen + d.u,
				deleted = mb.deleted + d.d, size = mb.size + d.s
			FROM (SELECT mailbox, count(*) AS n, sum(1 - mailyard_has_flag(flags, '\Seen')) AS u,
					sum(mailyard_has_flag(flags, '\Deleted')) AS d, sum(size) AS s
				FROM new_rows GROUP BY mailbox) d
			WHERE mb.id = d.mailbox;
	ELSIF TG_OP = 'DELETE' THEN
		UPDATE mailboxes mb SET messages = mb.messages - d.n, unseen = mb.unseen - d.u,
				deleted = mb.deleted - d.d, size = mb.size - d.s
			FROM (SELECT mailbox, count(*) AS n, sum(1 - mailyard_has_flag(flags, '\Seen')) AS u,
					sum(mailyard_has_flag(flags, '\Deleted')) AS d, sum(size) AS s
				FROM old_rows GROUP BY mailbox) d
			WHERE mb.id = d.mailbox;
	ELSE
		-- Only mailboxes whose counts change are written: a flag
		-- change that moves neither \Seen nor \Deleted, or a MODSEQ
		-- bump, leaves the row alone.
		UPDATE mailboxes mb SET messages = mb.messages + d.n, unseen = mb.unseen + d.u,
				deleted = mb.deleted + d.d, size = mb.size + d.s
			FROM (SELECT mailbox, sum(k) AS n, sum(k * (1 - mailyard_has_flag(flags, '\Seen'))) AS u,
					sum(k * mailyard_has_flag(flags, '\Deleted')) AS d, sum(k * size) AS s
				FROM (SELECT mailbox, flags, size, 1 AS k FROM new_rows
					UNION ALL SELECT mailbox, flags, size, -1 FROM old_rows) c
				GROUP BY mailbox) d
			WHERE mb.id = d.mailbox AND (d.n <> 0 OR d.u <> 0 OR d.d <> 0 OR d.s <> 0);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER messages_counts_insert AFTER INSERT ON messages
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mailyard_mailbox_counts();
CREATE TRIGGER messages_counts_delete AFTER DELETE ON messages
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION mailyard_mailbox_counts();
CREATE TRIGGER messages_counts_update AFTER UPDATE ON messages
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mailyard_mailbox_counts();

UPDATE mailboxes mb SET (messages, unseen, deleted, size) = (SELECT count(*), coalesce(sum(1 - mailyard_has_flag(m.flags, '\Seen')), 0),
	coalesce(sum(mailyard_has_flag(m.flags, '\Deleted')), 0), coalesce(sum(m.size), 0) FROM messages m WHERE m.mailbox = mb.id);
