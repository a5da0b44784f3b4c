-- Version 6: metadata entries (store.Metadata, IMAP METADATA, RFC 5464):
-- one row per entry of a mailbox, or of the server when mailbox is
-- NULL. The rows of a mailbox go with it (DELETE) and stay with its id
-- when it is renamed; those of an account go with the account.
CREATE TABLE metadata (
	account text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	mailbox bigint REFERENCES mailboxes(id) ON DELETE CASCADE,
	name    text COLLATE "C" NOT NULL,
	value   bytea NOT NULL
);
CREATE UNIQUE INDEX metadata_entry ON metadata (account, coalesce(mailbox, 0), name);
CREATE INDEX metadata_mailbox ON metadata (mailbox);
