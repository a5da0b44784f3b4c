-- Version 3: the bodies of queued outbound messages (queue.Bodies), in
-- chunks of at most 256 KiB, so that every node delivers what any node
-- queued: a node claims recipients another node queued, or one killed
-- meanwhile. written is when the chunk was written (Unix nanoseconds),
-- for the sweep of bodies whose recipients were never queued.
CREATE TABLE queue_bodies (
	msg     text COLLATE "C" NOT NULL,
	n       integer NOT NULL,
	data    bytea NOT NULL,
	written bigint NOT NULL,
	PRIMARY KEY (msg, n)
);
