-- Version 3: the full-text index of SEARCH BODY and TEXT
-- (store.TextSearcher, fulltext.go). Its unit is the body, not the
-- message: copies and the recipients of one delivery share a body, so
-- they share one entry. text_docs has a row for every body some message
-- names, with its state: 0 (not indexed: every message of the body is a
-- candidate of every search; bodies stored before version 4 start so,
-- until ReindexText reads them), 1 (header and body hold the whole
-- text) or 2 (they hold the first part of it: always a candidate).
-- The text is lower-cased by the writer (strings.ToLower), and pg_trgm's
-- trigram indexes answer LIKE '%pattern%' on it exactly: the index
-- narrows, PostgreSQL rechecks each row against the pattern.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE text_docs (
	blob_id bigint PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
	state   smallint NOT NULL,
	header  text COLLATE "C" NOT NULL DEFAULT '',
	body    text COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX text_docs_header ON text_docs USING gin (header gin_trgm_ops);
CREATE INDEX text_docs_body ON text_docs USING gin (body gin_trgm_ops);
CREATE INDEX text_docs_unread ON text_docs (blob_id) WHERE state <> 1;
INSERT INTO text_docs (blob_id, state) SELECT DISTINCT blob_id, 0 FROM messages;
