// Package authlimit decides whether a password may be checked against the
// directory, so that guessing is slow and bounded while the real user can
// always log in from where they usually do.
//
// A protocol server (SMTP submission, IMAP, ...) asks [Limiter.Begin] before
// it hands a password to the directory, and reports the verdict on the
// returned [Attempt]. One Limiter is meant to be shared by every listener of
// a process, so that failures on one protocol count on all.
//
// # Keys
//
// A client is an IPv4 address, or the /64 an IPv6 address belongs to: one
// IPv6 subscriber is routinely given a whole /64 and could otherwise rotate
// through 2^64 addresses. IPv4-mapped IPv6 addresses count as IPv4. A login
// is compared case-insensitively, without surrounding spaces. A pair is a
// client and a login together. The servers of this module pass the
// account's primary address for any login of it (directory.LoginKeyer), so
// that a user's aliases and alternative domain names share one budget.
//
// # The algorithm
//
//  1. Begin classes the request. It is Trusted when this client logged in
//     to this login successfully within [Policy.TrustFor] (30 days by
//     default); Fresh when the client has no remembered failures (for any
//     login) and no unfinished check; otherwise it comes from a Stranger.
//  2. The pair's record is consulted for every class: while the pair is
//     blocked, its last failure's delay has not passed, or its failures
//     plus its unfinished checks reach [Backoff.BlockAfter], Begin refuses.
//  3. For Fresh and Stranger requests the client's record is consulted the
//     same way ([Policy.Client]). A Trusted pair skips it: an attacker
//     behind the same address guessing other logins does not lock the
//     real user out of their own.
//  4. A Stranger request also needs the login's stranger budget: at most
//     [Policy.StrangerChecks] checks in any [Policy.StrangerWindow]. When
//     the budget is spent Begin refuses without a check. Trusted and
//     Fresh requests never touch the budget and are never refused by it.
//  5. If nothing refused, Begin reserves the attempt before returning:
//     it counts as unfinished on the client and the pair, and a Stranger
//     request takes its slot of the budget. Concurrent requests therefore
//     see each other, and no number of parallel guesses can run more
//     checks than the limits allow.
//  6. [Attempt.Failed] records a failure on the pair and (unless Trusted)
//     on the client: the first [Backoff.Free] failures cost nothing, each
//     further one doubles a delay from [Backoff.BaseDelay] up to
//     [Backoff.MaxDelay], and at [Backoff.BlockAfter] the key is blocked
//     for [Backoff.BlockFor]. It returns the delay, which the caller waits
//     before it answers; Begin refuses the key until it has passed.
//     Failures are forgotten [Policy.Window] after the last one; until
//     then the first failure after a block blocks again.
//  7. [Attempt.Succeeded] forgets the pair's failures (not the client's:
//     owning one account does not reset a guesser's count) and trusts the
//     pair. [Attempt.Abandon] ends an attempt that gave no verdict on the
//     password (directory unavailable, account disabled).
//
// # Guarantees
//
//   - The real user is never refused by what others do from other
//     clients: from an address where they logged in within TrustFor, only
//     their own failures there can refuse them; from a new address without
//     failures, their check is Fresh and refused by nothing (one at a
//     time: a second check while the first runs counts as a Stranger's).
//   - Password checks against one login caused by clients that have not
//     logged in to it recently are bounded: at most StrangerChecks in any
//     StrangerWindow, plus one per distinct client that had no failures
//     (a Fresh request's failure makes its client a Stranger until Window
//     passes). [Limiter.Stats] counts checks by class so this can be
//     watched.
//   - A client runs at most Client.BlockAfter checks that fail, a pair at
//     most Pair.BlockAfter, before a block, however many run in parallel.
//   - Memory is bounded: each table (clients, pairs, logins' budgets,
//     trusted pairs) holds at most [Policy.MaxEntries] entries; forgotten
//     entries are swept once a minute and when a table is full.
//
// # Several nodes
//
// Servers behind a load balancer on one database each run a Limiter; a
// guesser spreads its attempts over them, and the user's next login
// lands on any of them. With [Policy.Shared] set (limitstore.New over
// the store they share), the limiters keep in it what must hold across
// nodes, and the guarantees above hold for the cluster as a whole:
//
//   - Begin reads the pair's shared record (failures, block, last
//     success) and, unless that makes the pair Trusted, the client's,
//     and decides on them: a block or delay earned on one node refuses
//     on every node, and a user who logged in on one node is Trusted on
//     all (one read for a Trusted login).
//   - Failed counts the failure in the shared records (one transaction
//     each, atomic against every node), Succeeded forgets the pair's
//     failures and trusts it there (written only when something changes
//     or the stored trust is older than TrustFor/16).
//   - A Stranger's check takes its slot of the login's shared budget in
//     one transaction, so StrangerChecks per StrangerWindow holds for the
//     cluster; a login found spent is refused locally, without a write,
//     until a slot frees.
//   - Unfinished checks stay local: parallel checks of one client on N
//     nodes see each other only once their verdicts are in, so the
//     bounds that rest on them (a failure-free client's one Fresh check,
//     no parallel guesses past BlockAfter) widen to one per node.
//   - Entries expire (a client's or pair's Window after its last
//     failure, or when its block, delay or trust ends; a budget
//     StrangerWindow after its last check); [Limiter.SweepShared] deletes
//     what expired. If the shared store fails, the limiter decides on
//     what its process knows and counts the failure in Stats.
//
// The price: a user who mistyped their password from a new address while
// their login is under attack is a Stranger there, and may be refused until
// the budget frees up; from any address where they logged in before, they
// are not.
package authlimit
