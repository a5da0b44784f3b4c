// Package imap is Mailyard's IMAP server: IMAP4rev1 (RFC 3501) and
// IMAP4rev2 (RFC 9051) on go-imap/v2's imapserver, with sessions on a
// [store] backend and logins checked by the directory.
//
// A [Server] serves one listener: port 143 with STARTTLS, or port 993 with
// implicit TLS (Options.ImplicitTLS, RFC 8314 §3.3). The library owns the
// wire (parsing, literals, response encoding); this package implements
// every command on the store.
//
// # Guarantees
//
//  1. Nothing acknowledged is lost: the tagged OK of APPEND, STORE, COPY,
//     MOVE, EXPUNGE, CREATE, DELETE, RENAME and (UN)SUBSCRIBE is written
//     only after the store has committed the change durably.
//  2. Authentication goes through the directory for directory.ProtoIMAP:
//     a login may be the primary address or an alias. Wrong passwords get
//     NO [AUTHENTICATIONFAILED] after the shared auth limiter's delay;
//     a blocked client or login gets NO [UNAVAILABLE] without the password
//     being checked; a disabled account NO [CONTACTADMIN]; a user without
//     the IMAP protocol NO [AUTHORIZATIONFAILED] (RFC 5530 codes).
//  3. Without TLS, LOGIN and AUTHENTICATE are refused with
//     NO [PRIVACYREQUIRED] and LOGINDISABLED is announced (RFC 9051
//     §6.2.3), unless Options.AllowInsecureAuth. Clear text a client
//     pipelines after STARTTLS is fed to the TLS handshake, never run as
//     commands.
//  4. Bounded per connection: a command line with its buffered literals is
//     at most 50 KiB and each literal outside APPEND at most 4 KiB (the
//     library's limits, before and after login); an APPEND literal is at
//     most Options.AppendLimit (NO [TOOBIG] beyond); SEARCH BODY/TEXT
//     read at most Options.MaxSearchBytes per message; FETCH BODY[]
//     streams from the store; ENVELOPE and BODY[HEADER(.FIELDS)] read
//     only the header block (cached server-wide, at most 16 MiB). Other
//     FETCH sections (BODY[1.2], BODY[TEXT], BINARY[...]) are cut out in
//     memory by the library's helpers, so they are bounded by the message
//     size. Connections are
//     limited per client and in total (internal/limits).
//  5. Updates come from the store, not from process memory: after every
//     command, and during IDLE (RFC 2177) whenever the account's change
//     feed (one subscription per account, shared by its sessions) reports
//     a commit, the session asks the store what changed
//     since the HIGHESTMODSEQ it last saw ([store.Messages.Changes]) and
//     reports new messages (EXISTS, RECENT), flag changes by other
//     sessions (FETCH FLAGS), new keywords (FLAGS) and expunges. EXPUNGE
//     responses are held back during FETCH, STORE and SEARCH (RFC 9051
//     §7.5.1) and sent highest sequence number first (with QRESYNC, one
//     VANISHED response instead).
//
// Metrics (Options.Registerer): connections by result, open connections,
// authentications by result, messages appended.
//
// # Capabilities
//
// IMAP4rev1, IMAP4rev2, STARTTLS, AUTH=PLAIN, LOGINDISABLED (before TLS),
// SASL-IR, LITERAL+, LITERAL-, ENABLE, IDLE, UNSELECT, UIDPLUS, MOVE,
// NAMESPACE, SPECIAL-USE, CREATE-SPECIAL-USE, LIST-EXTENDED, LIST-STATUS,
// CHILDREN, ESEARCH, SEARCHRES, BINARY, APPENDLIMIT=n, STATUS=SIZE,
// UTF8=ACCEPT, CONDSTORE and QRESYNC. Some are announced only after
// login, as the library does.
//
// # Behaviour worth knowing
//
//   - CONDSTORE and QRESYNC (RFC 7162) rest on the store's per-message
//     MODSEQ and its expunge tombstones, which are never pruned, so
//     QRESYNC and UID FETCH (CHANGEDSINCE n VANISHED) report exactly the
//     UIDs expunged since n (seq-match-data narrows that further, as
//     §3.2.5.2 says) and NOMODSEQ is never sent. There is one MODSEQ per
//     message, not per flag: SEARCH MODSEQ accepts an entry name and
//     type and ignores them (§3.1.5), and UNCHANGEDSINCE fails for a
//     message when any of its flags changed since, even one the client
//     does not care about (§3.1.3 allows this). UNCHANGEDSINCE 0 always
//     fails. A STORE that changes nothing keeps the MODSEQ.
//   - A CONDSTORE enabling command (ENABLE CONDSTORE or QRESYNC, SELECT
//     or EXAMINE (CONDSTORE), FETCH MODSEQ or CHANGEDSINCE, STORE
//     UNCHANGEDSINCE, SEARCH MODSEQ, STATUS HIGHESTMODSEQ) makes every
//     later FETCH response with FLAGS carry MODSEQ, those of STORE and
//     other sessions' changes included; one issued with a mailbox
//     selected first reports its HIGHESTMODSEQ. A flag change by another
//     session that leaves the flags as they were is then reported too,
//     for its new MODSEQ. SELECT and EXAMINE report HIGHESTMODSEQ only
//     after such a command.
//   - After ENABLE QRESYNC expunges are reported as VANISHED, by
//     EXPUNGE, UID EXPUNGE, MOVE, NOOP and IDLE alike; EXPUNGE and UID
//     EXPUNGE that removed something end with OK [HIGHESTMODSEQ n]. While
//     expunges are held back (FETCH, STORE, SEARCH), an untagged OK
//     [HIGHESTMODSEQ] below theirs follows (§3.2). CLOSE reports neither. SELECT (QRESYNC ...) with the mailbox's
//     UIDVALIDITY sends VANISHED (EARLIER), then FETCH (UID FLAGS MODSEQ)
//     of the changed messages, before its tagged OK. SELECT or EXAMINE
//     with a mailbox selected sends OK [CLOSED] first (§3.2.11).
//   - \Recent (IMAP4rev1 only; RFC 9051 dropped it): kept in process
//     memory per mailbox incarnation. The first read-write session to see
//     a message gets it as \Recent; EXAMINE shows without claiming. After
//     a restart every message is recent once more, which RFC 3501 §2.3.2
//     asks for when the server cannot tell.
//   - FLAGS and PERMANENTFLAGS list the system flags and every keyword in
//     use in the mailbox; PERMANENTFLAGS adds \* (new keywords allowed)
//     and is empty after EXAMINE. A keyword first set later is announced
//     with an untagged FLAGS.
//   - EXAMINE is enforced: STORE, EXPUNGE, MOVE and UID EXPUNGE are
//     refused with NO [CANNOT], FETCH BODY[] does not set \Seen, and CLOSE
//     expunges nothing (RFC 9051 §6.4.1).
//   - DELETE keeps inferior names; the deleted name then lists as
//     \Noselect \NonExistent while it has children (RFC 9051 §6.3.5).
//     RENAME INBOX moves INBOX's messages into the new mailbox (RFC 9051
//     §6.3.6). A selected mailbox that is deleted or renamed by another
//     session is reported as all messages expunged (RFC 2180 §3).
//   - SEARCH: every RFC 3501/9051 key. Flags, dates, sizes and UID and
//     sequence sets come from the index; HEADER/FROM/TO/CC/BCC/SUBJECT
//     and SENT* read the header; BODY and TEXT decode the MIME structure
//     (transfer encodings undone) and match case-insensitively. NOT/OR
//     nest at most 100 deep. Charsets other than US-ASCII and UTF-8 get
//     NO [BADCHARSET] (RFC 9051 §6.4.4).
//   - ENVELOPE, BODYSTRUCTURE and body sections come from the library's
//     extractors, which follow RFC 9051 §7.5.2 for multipart,
//     message/rfc822 and malformed MIME.
//
// # Known deviations
//
//   - SEARCH BODY/TEXT decode transfer encodings but not charsets other
//     than US-ASCII and UTF-8: a KOI8-R or windows-1251 part is compared
//     as stored bytes (decoding would mean go-message/charset, whose
//     import installs a process-wide charset hook).
//   - BODYSTRUCTURE of malformed MIME: a multipart without any part is
//     given one empty text/plain part (the grammar needs one; the library
//     would panic), and text parts without charset get charset=us-ascii
//     (RFC 2045 §5.2). A message with more than 1000 "multipart/" or
//     "message/" markers gets NO [PARSE] for BODYSTRUCTURE and part
//     sections, since the library's walkers recurse without a depth
//     limit; BODY[] still returns it.
//   - The library answers LSUB as LIST with the SUBSCRIBED selection
//     option, so the two cannot be told apart when LIST has no other
//     options: both get LSUB's \Noselect parents and \Subscribed.
//   - Malformed sequence sets and unknown SEARCH keys get
//     NO [SERVERBUG] "Internal server error" from the library's parser
//     instead of BAD; the session continues. A quoted string left open
//     at the end of a line makes the library read the next line into it.
//
// # What go-imap/v2 cannot carry: QUOTA, ID
//
// These are not announced, because they are not implemented. go-imap
// v2.0.0-beta.8's imapserver has no way for a backend to add a command or
// to extend one without copying the library's source:
//
//   - Conn.readCommand dispatches on a closed switch; any other command
//     (GETQUOTA, GETQUOTAROOT, SETQUOTA of RFC 9208, ID of RFC 2971) is
//     answered "BAD Unknown command" by the library, and before login the
//     connection is closed.
//   - A filter in front of the library (reading commands off the
//     connection before it does) is no way out: after STARTTLS the
//     library wraps the connection it was given in its own tls.Conn, so
//     a filter below it sees only ciphertext, and one above a tls.Conn
//     hides the *tls.Conn the library checks before it allows LOGIN.
//     It would also need a second IMAP parser to find command
//     boundaries (literals, IDLE, AUTHENTICATE exchanges).
//
// The store already carries what these need (per-message MODSEQ,
// HIGHESTMODSEQ, expunge tombstones via [store.Messages.Changes], quotas
// via [store.Accounts.Usage]); STATUS HIGHESTMODSEQ and DELETED-STORAGE
// are answered when asked.
package imap
