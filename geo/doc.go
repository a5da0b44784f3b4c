// Package geo links separately deployed Mailyard installations ("sites")
// into one organisation over NATS JetStream: each site publishes its
// directory, replicates every peer's into a read-only view, answers
// which site holds an address (for routing) and shows every site's users
// in one global address list, asks a peer for free/busy, and records the
// conflicts an administrator must resolve.
//
// # Sites, links and the NATS topology
//
// A site has a stable ID (^[a-z0-9_-]+$) and runs, by default, its own
// embedded NATS server with JetStream ([Options].DataDir/nats); with
// [Options].External it uses an external NATS instead. A [Link] names a
// peer: its site ID, its NATS endpoints, its MX and the addresses it
// connects from. Sites are linked all-to-all, and every link must exist
// on both ends.
//
// The sites' servers are not joined into one NATS system. A cluster or a
// gateway super-cluster shares one JetStream meta group that needs a
// quorum of all servers, so a cut-off site would lose its own JetStream
// (and its mail would stop replicating even locally); leaf nodes form a
// tree, and a full mesh of them is a loop NATS refuses. Instead each
// site's server stands alone, and each site connects as a client to every
// peer's server with mutual TLS: the peer's server maps the client
// certificate (a DNS name equal to the site ID, signed by the roots in
// [TLS]) to that site, from the link's allowed addresses only, and
// grants it exactly this: read the server's stream through the consumer
// named after the connecting site, acknowledge it, and ask free/busy on
// the subject naming the connecting site. A peer can publish nothing
// else, so only a site writes its own subjects. A connection from a
// verified site that has no link here is refused and recorded as a
// one-ended link; the site that was refused records it too.
//
// # Replication
//
//  1. Each site's stream GEO_<site> holds subjects
//     geo.<site>.dir.<kind>.<hash of key>, one per entry, and keeps only
//     the latest message of each (MaxMsgsPerSubject 1). A deletion is a
//     tombstone record, kept the same way.
//  2. The site reconciles its [Source] (the whole directory) with what it
//     published, at start, on [Node.Notify] and every ReconcileInterval,
//     publishing only entries whose content changed and tombstones for
//     entries gone. Comparing the whole directory each time means no
//     change is missed, whoever made it. [Node.Changed] is the
//     per-entry notice: it reads only the entries owning the given
//     addresses (an [EntrySource]) and publishes their records at once,
//     so a change's lag does not grow with the directory; the periodic
//     reconcile stays the safety net. Each read of the Source is
//     numbered, and a record from a read older than the one published
//     last for its entry is dropped, so a slow listing never publishes
//     over a newer notice. Records carry addresses and GAL attributes,
//     never password hashes or other secrets.
//  3. Each peer reads the stream through its own durable pull consumer
//     (geo_<reader>), which starts at the first message: with one message
//     per entry, that is the full snapshot for a newly linked site, and
//     everything after is incremental. The consumer's position is kept by
//     JetStream on disk, so a restarted site resumes where it stopped.
//  4. A record's version is the stream sequence that carried it. The view
//     applies a record only if its version is newer than the one held, so
//     redelivery and reordering change nothing. Records are validated
//     (known kind, canonical addresses, the subject is the record's own);
//     an invalid one is skipped and recorded as a conflict. A batch is
//     stored in one [store.Records] transaction before it is acknowledged.
//
// # Conflicts
//
// An address claimed by two sites, an invalid payload and a one-ended
// link are [Conflict] records. An address in conflict is not located on
// any site ([ErrConflict]), so its mail stays local. [Node.ClearConflict]
// removes the record only: each reconcile checks every address again,
// so it comes back while the cause remains.
//
// # Health
//
// [Node.Health] reports per link whether it is connected and mutual, the
// consumer lag in records and seconds, the last record applied and the
// last error; [Options].Metrics receives the same as gauges.
//
// Every NATS call has a timeout; memory is the view (one record per
// remote entry) and one batch of at most 256 records per link; each link
// has one goroutine, the publisher one more.
package geo
