-- Version 2: bodies are written before the transaction that stores
-- their message, and freed bodies are kept a while for readers still on
-- them (blobs.go). A body no index row names, being written or freed,
-- is loose since loose_since (Unix nanoseconds: its last chunk written,
-- or when it was freed); loose bodies are swept after a grace period.
ALTER TABLE blobs ADD COLUMN loose_since bigint;
CREATE INDEX blobs_loose ON blobs(loose_since) WHERE loose_since IS NOT NULL;
