-- Version 5: each message's save date (store.Message.SaveDate, RFC 8514):
-- Unix nanoseconds of its delivery, APPEND, COPY or MOVE into the
-- mailbox. Rows written before get 0, "unknown", which IMAP answers as
-- NIL (RFC 8514 allows a mailbox without save dates).
ALTER TABLE messages ADD COLUMN save_date bigint NOT NULL DEFAULT 0;
