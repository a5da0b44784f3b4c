-- Version 11: the foreign keys that the writes checked on every row,
-- and that the code keeps true anyway, are dropped (bench/README.md,
-- "Session 17"). PostgreSQL checks a foreign key with a statement of
-- its own per row inserted, and per row updated a second time in one
-- transaction: in the IMAP mix, a group's second write to a mailbox
-- checked its account, every message row its mailbox, every body chunk
-- and full-text entry its body, about as many statements as the writes
-- themselves sent.
--
-- What the cascades did is now done by the statements that delete:
-- DeleteAccount deletes the account's mailboxes and their expunge
-- tombstones, DeleteMailbox the mailbox's tombstones, and a body is
-- deleted together with its chunks and its full-text entry
-- (blobs.go). The rows that refer to a parent are only inserted by
-- statements that find the parent locked or inserted in the same
-- statement. Check reports rows without their parent.
--
-- messages_blob_id_fkey stays: a message may name a body that another
-- account's write is releasing, and the key's lock is what orders the
-- two. Nodes running version 10 delete with the cascades: stop them
-- before this migration runs.
ALTER TABLE mailboxes DROP CONSTRAINT mailboxes_account_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_mailbox_fkey;
ALTER TABLE expunged DROP CONSTRAINT expunged_mailbox_fkey;
ALTER TABLE blob_chunks DROP CONSTRAINT blob_chunks_blob_fkey;
ALTER TABLE text_docs DROP CONSTRAINT text_docs_blob_id_fkey;
