// Package imap is Mailyard's IMAP server: IMAP4rev1 (RFC 3501) and
// IMAP4rev2 (RFC 9051), with sessions on a [store] backend and logins
// checked by the directory.
//
// A [Server] serves one listener: port 143 with STARTTLS, or port 993 with
// implicit TLS (Options.ImplicitTLS, RFC 8314 §3.3). The wire (parsing,
// literals, response encoding) is our fork of go-imap/v2's imapserver in
// imap/internal/imapserver (see its package comment for why it was
// copied and how changes are marked); this package implements every
// command on the store.
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
//     read at most Options.MaxSearchBytes per message, through a window
//     of 32 KiB (the text is never held whole); FETCH BODY[] and
//     every other section (BODY[1.2], BODY[TEXT], BINARY[...], partial
//     ranges) stream from the store, read once to count the literal's
//     length and once to send it (sections of at most 256 KiB in all are
//     kept from the first read), and BODYSTRUCTURE counts sizes and
//     lines as the body goes by: only header blocks are held, each
//     within 256 KiB and 2000 lines (imapserver.MaxHeaderBlockBytes:
//     the block is held, and its short fields parse at some 35 bytes of
//     memory a byte; go-message's reader took 640 MiB for an 8 MiB part
//     header), for SEARCH too. ENVELOPE
//     and BODY[HEADER(.FIELDS)] read only the header block (cached
//     server-wide, at most 16 MiB). Connections are limited per client
//     and in total (internal/limits).
//  5. Updates come from the store, not from process memory: after every
//     command, and during IDLE (RFC 2177) whenever the account's change
//     feed (one subscription per account, shared by its sessions) reports
//     a commit, the session asks the store what changed
//     since the HIGHESTMODSEQ it last saw ([store.Messages.Changes]) and
//     reports new messages (EXISTS, RECENT), flag changes by other
//     sessions (FETCH FLAGS), new keywords (FLAGS) and expunges. EXPUNGE
//     responses are held back during FETCH, STORE and SEARCH (RFC 9051
//     §7.5.1) and sent highest sequence number first (with QRESYNC, one
//     VANISHED response instead). The sessions polling one mailbox
//     under the same change number ([ChangeCounter]) share one read of
//     its changes; a session's own STORE whose MODSEQ is the one after
//     its view's is not read back. SELECT opens the mailbox's last
//     listing brought forward by the changes since (the listings of at
//     most 32 mailboxes of at most 20,000 messages are kept), so a
//     write by another process is seen as by a fresh listing.
//  6. A refused literal's data is never run as commands, nor is any part
//     of a failed command: a synchronising literal over a limit gets a
//     tagged NO or BAD instead of the continuation request, so its data
//     never comes; any other failed command (a refused non-synchronising
//     literal, a syntax error, an AUTHENTICATE response longer than
//     4 KiB) is answered and its rest skipped up to the client's next
//     command, at most 1 MiB, beyond which the server says BYE and
//     closes the connection (the package comment of
//     imap/internal/imapwire has the rules). An APPEND answered BAD or
//     NO, junk after its message included, or cut short by the end of
//     the connection stores nothing and uses no UID.
//
// Metrics (Options.Metrics, an interface of this package: no metrics
// library is imported): connections by result, open connections,
// authentications by result, messages appended.
//
// # Capabilities
//
// IMAP4rev1, IMAP4rev2, STARTTLS, AUTH=PLAIN, LOGINDISABLED (before TLS),
// SASL-IR, LITERAL+, LITERAL-, ENABLE, IDLE, UNSELECT, UIDPLUS, MOVE,
// NAMESPACE, SPECIAL-USE, CREATE-SPECIAL-USE, LIST-EXTENDED, LIST-STATUS,
// CHILDREN, ESEARCH, SEARCHRES, BINARY, APPENDLIMIT=n, STATUS=SIZE,
// UTF8=ACCEPT, CONDSTORE, QRESYNC, QUOTA, QUOTA=RES-STORAGE,
// QUOTA=RES-MESSAGE, ID, SORT, SORT=DISPLAY, ESORT, CONTEXT=SEARCH,
// CONTEXT=SORT, THREAD=ORDEREDSUBJECT,
// THREAD=REFERENCES, WITHIN, SEARCH=FUZZY, MULTIAPPEND, CATENATE,
// COMPRESS=DEFLATE, OBJECTID, SAVEDATE, PREVIEW, METADATA,
// METADATA-SERVER, LIST-METADATA and NOTIFY. ID and
// the pre-login ones are announced in the greeting; the rest after login. The three QUOTA ones are announced only
// when the Backend implements [Quotas]; without it GETQUOTA and
// GETQUOTAROOT are BAD, as in a server without the extension. METADATA,
// METADATA-SERVER and LIST-METADATA likewise need a Backend with
// store.Metadata (without it LIST's METADATA return option is BAD), and
// NOTIFY a Backend with a [Feed] (without it NOTIFY is BAD).
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
//     later FETCH response with FLAGS carry UID and MODSEQ (RFC 7162
//     §3.2.4), those of STORE, of an implicit \Seen and of other
//     sessions' changes included; one issued with a mailbox
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
//   - QUOTA (RFC 9208): every account has one quota root, "", covering
//     all of its mailboxes, with the account's limits from the store
//     (mailserver user add -quota-bytes/-quota-messages). STORAGE is in
//     KiB, usage rounded up and the limit down; an account without limits
//     has no root (GETQUOTAROOT lists none, GETQUOTA "" is NO
//     [NONEXISTENT]). SETQUOTA is NO [NOPERM] and QUOTASET is not
//     announced: limits are the administrator's. APPEND, COPY and MOVE
//     beyond a limit are NO [OVERQUOTA]. A full disk is no user's quota:
//     any command that writes then answers NO [LIMIT] (RFC 5530 §3).
//   - ID (RFC 2971), valid in every state: the client's fields are
//     logged ("client id"), the server answers with its name and version
//     only (RFC 2971 §5: nothing about the host). More than 30 pairs,
//     names over 30 or values over 1024 octets, or a repeated name are
//     BAD (RFC 2971 §3.3).
//   - BINARY[...] and BINARY.SIZE[...] accept BODY's section-text after
//     the part numbers (HEADER, HEADER.FIELDS[.NOT], MIME, TEXT), as
//     Dovecot does, though RFC 3516 allows part numbers only: the
//     octets are BODY's for that section, except that the TEXT of a leaf
//     is decoded as BINARY[n] is. Charsets are never converted; a
//     transfer encoding the server cannot decode is NO [UNKNOWN-CTE].
//   - IDLE costs no goroutine of its own: the account's change feed wakes
//     a short poll that writes the updates, while the connection waits for
//     DONE with its read and write buffers back in a pool, as between
//     commands. An idle connection costs about 4 KiB of stack and 4 KiB
//     of heap (bench/README.md, "imap").
//   - \Recent (IMAP4rev1 only; RFC 9051 dropped it): kept in process
//     memory per mailbox incarnation. The first read-write session to see
//     a message gets it as \Recent; EXAMINE shows without claiming. After
//     a restart every message is recent once more, which RFC 3501 §2.3.2
//     asks for when the server cannot tell.
//   - FLAGS and PERMANENTFLAGS list the system flags and every keyword in
//     use in the mailbox; PERMANENTFLAGS adds \* (new keywords allowed)
//     and is empty after EXAMINE. A keyword first set later is announced
//     with an untagged FLAGS and, read-write, PERMANENTFLAGS, before any
//     FETCH or EXISTS response that carries it (RFC 9051 §7.3.5).
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
//     and SENT* read the header; BODY and TEXT match case-insensitively
//     against the text internal/msgtext extracts (transfer encodings
//     undone, charsets such as KOI8-R and windows-1251 converted, HTML
//     without its tags). With a backend that has a full-text index
//     (store.TextSearcher), the BODY and TEXT keys of the top level
//     narrow the messages read to the index's candidates, and those it
//     holds whole are not read for them: the answer is the scan's (a
//     property test compares the two). NOT/OR nest at most 100 deep.
//     A search has at most 32 distinct BODY and TEXT strings (each is
//     looked for in all the text read), NO [LIMIT] beyond; message sets
//     are kept as the ranges the client wrote, never as lists of the
//     mailbox's messages. Charsets other than US-ASCII and UTF-8 get
//     NO [BADCHARSET] (RFC 9051 §6.4.4).
//   - SORT (RFC 5256 §3) and SORT=DISPLAY (RFC 5957) sort what SEARCH
//     finds: ARRIVAL (INTERNALDATE), DATE (the Date field, in UTC, or the
//     INTERNALDATE when it has none that parses), SIZE, SUBJECT (the base
//     subject of RFC 5256 §2.1, encoded words decoded), FROM, TO and CC
//     (the first address's local part), DISPLAYFROM and DISPLAYTO (its
//     display name decoded, else its address); strings compare upper-cased
//     (i;unicode-casemap without its decomposition); ties go by sequence
//     number, REVERSE included. SORT RETURN (ESORT, RFC 5267 §3) answers
//     ESEARCH: MIN and MAX are the first and last in sort order, ALL keeps
//     the order (ascending runs as ranges).
//   - CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): SEARCH and SORT take
//     the CONTEXT (a hint, ignored), PARTIAL m:n (§4.4: the results at
//     those positions that exist, NIL if none; one PARTIAL or one ALL)
//     and UPDATE return options. An UPDATE leaves a context in the
//     selected mailbox's view, kept current by the poll that already
//     follows every command and every IDLE wake-up from the change feed:
//     the search runs again over the view (only when the view changed,
//     or on every poll for WITHIN) and what left or joined the result
//     goes out as REMOVEFROM and ADDTO, for changes by any session or
//     delivery. A SEARCH context uses position 0 and mailbox order; a
//     SORT context gives each run of adjacent results its position.
//     ADDTO follows the EXISTS of the messages it adds (§4.3.3); the
//     REMOVEFROM of an expunged message precedes its EXPUNGE or VANISHED
//     (§4.3.4), also when the EXPUNGE is held back during FETCH, STORE or
//     SEARCH. Options.MaxUpdateContexts (default 4) bounds the contexts
//     of a session; beyond it the command answers an untagged NO
//     [NOUPDATE "tag"] and still its other return options. UPDATE with
//     the tag of a context still updated is BAD (§4.3). CANCELUPDATE
//     ends contexts (tags that name none are ignored); deselecting ends
//     them all.
//   - THREAD=ORDEREDSUBJECT and THREAD=REFERENCES follow RFC 5256 §2.2
//     and §2.3 step by step (References, else In-Reply-To's first id;
//     missing or duplicate Message-IDs made unique; loops refused; dummies
//     pruned; root threads merged by base subject; siblings by sent date,
//     then sequence number). UID THREAD answers UIDs.
//   - SEARCH=FUZZY (RFC 6203): FUZZY before a BODY, TEXT or header key
//     (FROM, SUBJECT, HEADER name, ...) matches words, not substrings:
//     each word of the value (letters and digits, package
//     internal/fuzzy) must match a word of the text exactly, as a prefix
//     (of 3 runes or more), or within one edit (query words of 4 to 7
//     runes) or two (8 or more), an edit being a rune inserted, deleted,
//     replaced, or two swapped, after the same first rune: "accomodation"
//     finds "accommodation", "сообщенне" finds "сообщение". With a
//     store.FuzzySearcher (store/sqlite: a word index and its
//     vocabulary, the same rules; store/postgres: pg_trgm word
//     similarity of at least 0.6) the index answers, and messages it
//     does not hold whole are read; without one every message is read.
//     A value with no words (only punctuation, say) matches no
//     message, unlike BODY "", which matches every one (§3 leaves it to
//     the server; the rule of store.FuzzySearcher, as in Dovecot).
//     FUZZY around other keys (dates, sizes, flags) matches them
//     exactly (§5). At most 16 words in all the FUZZY keys of a search,
//     else NO [LIMIT] (§8). Relevancy (§4): a key scores the mean of its
//     words' matches (exact 100, prefix 80, one edit 70, two 50; or the
//     backend's score), a message the mean of the fuzzy keys that made
//     it match (not under NOT), 100 if none did. SEARCH RETURN
//     (RELEVANCY) answers the scores in the order of the messages (§4),
//     SORT (RELEVANCY) sorts the highest first and SORT RETURN
//     (RELEVANCY) gives them in sort order (§6); with PARTIAL (RFC 5267)
//     the scores are those of the results returned, and the ADDTO and
//     REMOVEFROM of an UPDATE context carry none. RELEVANCY without a
//     FUZZY key is BAD (§4, §6: "MUST NOT").
//   - WITHIN (RFC 5032): OLDER n matches an INTERNALDATE at least n
//     seconds before the command, YOUNGER n one less than n seconds
//     before, so the two split the mailbox.
//   - MULTIAPPEND (RFC 3502): each message is appended as it arrives,
//     streamed as a single APPEND is. The next message's flags, date and
//     literal size are read before the last byte of the one before is
//     given to the store, so a syntax error or a literal over
//     APPENDLIMIT there keeps it from being committed. A later failure (a
//     store error such as OVERQUOTA, junk after a later message, the
//     connection's end) flags \Deleted and expunges the messages the
//     command appended before it: none is kept, but their UIDs are used,
//     another session that polls in between may see them come and go,
//     and a crash in between can leave them. APPENDUID gives every UID.
//   - CATENATE (RFC 4469): the message is streamed to the store part by
//     part, each parsed when the one before is read, so a failure (NO
//     [BADURL url], NO [TOOBIG], a syntax error) makes the store give the
//     message up. URLs are resolved only in the server-relative form
//     "/mailbox[;UIDVALIDITY=n]/;UID=m[/;SECTION=s]" (RFC 5092, as in RFC
//     4469's examples), against the logged-in user's own mailboxes; an
//     absolute imap:// URL, ;PARTIAL, ;URLAUTH and HEADER.FIELDS sections
//     are BADURL. A section is cut as FETCH BODY[s] cuts it, so one the
//     message lacks is empty. The whole message is bounded by APPENDLIMIT
//     (a TEXT literal over it is refused before "+"), and a command by 64
//     parts (NO [LIMIT]). CATENATE works within MULTIAPPEND. The UTF8
//     part of RFC 6855 §4 inside CATENATE is not accepted (BAD).
//   - OBJECTID (RFC 8474): MAILBOXID is "F", the store's mailbox ID and
//     the UIDVALIDITY (kept by RENAME, never given to another mailbox);
//     it is in CREATE's OK, an untagged OK of SELECT and EXAMINE, and a
//     STATUS item (LIST-STATUS too). EMAILID is "M" and a digest of the
//     account and the stored body, which COPY and MOVE share, so a copy
//     keeps it; another APPEND of the same text gets another. THREADID is
//     NIL (the store keeps no threads; RFC 8474) and SEARCH THREADID
//     matches nothing. Nothing is stored for them.
//   - SAVEDATE (RFC 8514): the store keeps when each message was
//     delivered, appended, copied or moved into its mailbox
//     (store.Message.SaveDate); FETCH SAVEDATE gives it in UTC, NIL for
//     messages stored before the store kept it, which the SAVED* keys
//     then do not match. SAVEDATESUPPORTED matches every message.
//   - PREVIEW (RFC 8970): made at FETCH from at most the first 64 KiB of
//     the message, with the texts SEARCH reads (internal/msgtext): text
//     parts in UTF-8, HTML without markup, whitespace folded, at most 256
//     characters. PREVIEW (LAZY) gets it too; it is never NIL. It does
//     not set \Seen.
//   - METADATA and METADATA-SERVER (RFC 5464): entries of each mailbox
//     and of the server (mailbox ""), kept by the store (store.Metadata)
//     for the account, under /private and /shared alike (one user per
//     mailbox, so both are the user's and NOPRIVATE is never sent).
//     Entry names are case-insensitive and answered in lower case.
//     GETMETADATA takes MAXSIZE (longer entries are left out and the OK
//     carries [METADATA LONGENTRIES n], the longest's size) and DEPTH 0,
//     1 or infinity, its options before or after the mailbox (the RFC's
//     grammar and its examples differ); an entry named that does not
//     exist is NIL, as Dovecot answers. SETMETADATA changes all its
//     entries or none; NIL deletes. Limits (Options.Metadata): a value
//     over 64 KiB is NO [METADATA MAXSIZE n], refused before "+" when it
//     comes as a literal (a non-synchronising one's data is skipped); a
//     mailbox, or the server, with more than 100 entries, or an account
//     whose entries would take more than 1 MiB, is NO [METADATA
//     TOOMANY]; the values of one SETMETADATA are at most 256 KiB (NO
//     [TOOBIG]). /private/specialuse (RFC 6154 §4) is the mailbox's
//     special-use attribute, read-only (NO [CANNOT]). Entries go with
//     their mailbox on DELETE and move with it on RENAME. A value holding
//     NUL is sent as a literal8. Unsolicited METADATA responses (§4.4.2)
//     are not offered.
//   - LIST-METADATA (RFC 9590): LIST ... RETURN (METADATA (entry ...))
//     answers each listed mailbox's LIST response (and its STATUS, with
//     LIST-STATUS) with one METADATA response holding the entries asked,
//     as GETMETADATA would: NIL for one the mailbox does not have, the
//     same names, limits and /private/specialuse. MAXSIZE n, among the
//     entries or in a list of its own, leaves out longer values and the
//     OK carries [METADATA LONGENTRIES n]; a mailbox all of whose entries
//     are left out, and a listed name without a mailbox (\NonExistent,
//     \Noselect), get no METADATA response. DEPTH is not taken. Each
//     listed mailbox's entries are read once (one read, not one per
//     entry) and dropped when written, so a LIST over many mailboxes
//     holds one mailbox's entries at a time.
//   - NOTIFY (RFC 5465): NOTIFY SET [STATUS] with the filters selected,
//     selected-delayed, inboxes (taken as personal, §6.3: Sieve may file
//     mail anywhere), personal, subscribed, subtree and mailboxes, and
//     NOTIFY NONE. The events: MessageNew (with fetch attributes for the
//     selected mailbox: EXISTS, then FETCH of the new messages, before
//     their ADDTO) and MessageExpunge, which go together, FlagChange,
//     MailboxName (LIST, with OLDNAME for a rename, \NonExistent for a
//     name without a mailbox), SubscriptionChange (LIST with
//     \Subscribed when subscribed), MailboxMetadataChange and
//     ServerMetadataChange (METADATA naming the changed entries, RFC 5464
//     §4.4.2) with a metadata Backend. AnnotationChange (no per-message
//     annotations) and unknown events are NO [BADEVENT (the supported
//     events)]; a breach of §5's or §6.1's rules, or bad syntax, is BAD
//     and changes nothing. A watched mailbox other than the selected one
//     gets STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN, and HIGHESTMODSEQ
//     with FlagChange or once CONDSTORE is enabled) when its counts
//     change as its events ask, and whenever its UIDVALIDITY changed (a
//     mailbox deleted and created again). Notifications go out after
//     every command, in IDLE (§4), and while the connection waits for a
//     command, woken by the account's change feed: counts come from the
//     status cache, no query per mailbox. The selected mailbox is
//     reported between commands only with selected or selected-delayed,
//     and then with everything the poll after a command would report
//     (a FlagChange not asked for comes with the new messages); with
//     selected-delayed its expunges wait for a command that allows them
//     (§6.1). Bounds: Options.MaxNotifyMailboxes (default 1000) watched
//     mailboxes and named mailboxes, beyond which NOTIFY SET is NO
//     [NOTIFICATIONOVERFLOW]; the name events waiting for a client that
//     does not keep up (a command in progress, a full socket) at most
//     256 KiB, and the mailboxes with changed counts at most
//     MaxNotifyMailboxes; past either, or when the store's feed itself
//     overflows, the session gets OK [NOTIFICATIONOVERFLOW] and no more
//     notifications (§5.8). A session without NOTIFY costs nothing more;
//     one waiting between commands with NOTIFY on its selected mailbox
//     and personal costs about what one in IDLE does (15 KiB against 14,
//     BenchmarkIdleSessionsNotify).
//     SEARCH and SORT's UPDATE return option takes fetch attributes
//     (§7, "UPDATE (UID BODY.PEEK[HEADER])"): a new message that joins
//     the context's result gets their FETCH after its EXISTS and before
//     the ADDTO; one that joins it by a flag change does not. Known
//     deviations: the session's own CREATE, RENAME, DELETE, SUBSCRIBE and
//     SETMETADATA are not reported back to it (§5: SHOULD omit), but
//     its APPEND, COPY or MOVE into a watched mailbox other than the
//     selected one is (a STATUS), and so are the parents a CREATE made;
//     a LIST gives the name as it is when the notification is written,
//     which may be after later changes. As the store's feed carries
//     neither subscriptions nor metadata, those two are seen only by
//     sessions on the same Server (not across front ends sharing a
//     PostgreSQL store).
//   - COMPRESS=DEFLATE (RFC 4978), after login, over plain or TLS
//     connections (crypto/tls never compresses, so COMPRESSIONACTIVE is
//     only the answer to a second COMPRESS). Compressed data the client
//     pipelines after the command is inflated, not lost. The client's
//     stream is inflated by a fork of compress/flate's reader
//     (imap/internal/inflate) that gives its output at every block end,
//     so Z_PARTIAL_FLUSH works (mbsync flushes so; the standard reader
//     waits for the next block). The inflater
//     (its 32 KiB window) lives as long as the connection; the deflater
//     is taken from a pool for each write and ends it with a sync flush,
//     so an idle compressed connection holds none: 56 KiB per idle
//     compressed connection against 14 KiB plain
//     (BenchmarkIdleSessionsCompressed). Writes compress independently
//     (flate level 1), trading some ratio for memory.
//   - ENVELOPE is the header as written (RFC 9051 §7.5.2): date,
//     subject, in-reply-to and message-id are the field strings, unfolded,
//     encoded words kept; address lists come from a tolerant RFC 5322
//     parser with group markers and source routes, that skips only an
//     element it cannot read. SEARCH FROM/TO/CC/BCC also match the
//     addresses as the envelope shows them, so comments in a header do
//     not hide a match.
//   - BODYSTRUCTURE and body sections follow RFC 9051 §7.5.2 for
//     multipart, message/rfc822 and malformed MIME.
//   - A header (of the message, a message/rfc822 part or a multipart's
//     part) ends at its first empty line (RFC 5322 §2.1), as in Dovecot:
//     a line that is not a field (no colon, a control character or space
//     in the name) stays in BODY[HEADER] and is skipped as a field, so
//     BODY[HEADER] and BODY[TEXT] together are BODY[], and SEARCH,
//     ENVELOPE and BODYSTRUCTURE see the body BODY[] shows. (A part's
//     MIME header and HEADER.FIELDS.NOT drop such lines; Dovecot keeps
//     them.)
//   - A message nested deeper than 100 levels is described down to the
//     100th, where a multipart or message part is an application/
//     octet-stream leaf of its whole body, and its section numbers
//     address that leaf; at most 10000 parts are described. These are
//     Dovecot 2.3's limits and its answer (see
//     imapserver.MaxMIMEDepth), so one hostile message cannot stop a
//     FETCH over the mailbox.
//   - A header block past 256 KiB or 2000 lines is cut there (see item 4
//     above) and the rest read as the body of its message or part, so
//     BODY[HEADER], ENVELOPE, BODYSTRUCTURE and SEARCH see only the
//     fields before the cut (BODY[HEADER] and BODY[TEXT] together are
//     still BODY[]); Postfix keeps even less of a header
//     (header_size_limit, 100 KiB). BODY[] sends it whole.
//   - No NUL is sent in a literal (RFC 9051 §4.3): BODY sections send it
//     as 0x80 and strings (ENVELOPE) as U+FFFD, as Dovecot does; BINARY
//     sends the part as it is in a literal8 (RFC 3516).
//   - Subscriptions are names, not mailboxes (RFC 3501 §6.3.6): DELETE
//     keeps them, and LIST (SUBSCRIBED) shows a subscribed name without a
//     mailbox as \Subscribed \NonExistent; LSUB lists it too. A Backend
//     without [Subscriptions] has every existing mailbox subscribed
//     (UNSUBSCRIBE is NO [CANNOT]); one without [Feed] has IDLE poll
//     every Options.IdlePollInterval.
//   - MOVE into the selected mailbox works as COPY and EXPUNGE would (RFC
//     6851 §3): new UIDs, COPYUID, then EXPUNGE (or VANISHED) and EXISTS.
//   - INTERNALDATE keeps the zone APPEND gave (delivered mail: the
//     server's zone); SEARCH BEFORE/ON/SINCE compare dates in that zone.
//   - A message another session expunged that this session has not been
//     told of yet (RFC 2180 §4.1): FETCH answers UID and FLAGS from the
//     session's view, and anything else with NO [EXPUNGEISSUED] after the
//     other messages' data; STORE changes the others and ends the same
//     way (.SILENT: OK). The body is gone at expunge, so it is not served
//     (RFC 2180 §4.1.2, not §4.1.1) — unless the FETCH had opened it
//     before the expunge committed: each body is opened before its FETCH
//     response starts and the store keeps an open body readable, so a
//     body is served whole or not at all, never as an empty literal.
//     SEARCH keys that read a message (HEADER, BODY, TEXT, ...) leave
//     out a message whose body is gone by then (RFC 2180 §4.3); its
//     sequence number stays valid and the search ends OK.
//   - A selected mailbox that another session deletes has all its
//     messages expunged (RFC 2180 §3), as above: FETCH of more than UID
//     and FLAGS, STORE (but .SILENT), COPY and MOVE end NO
//     [EXPUNGEISSUED], SEARCH finds nothing, EXPUNGE reports them and
//     CLOSE leaves the mailbox. NO [NONEXISTENT] always means a named
//     mailbox that does not exist (or, for a session whose account was
//     deleted, the account), never a missing message.
//   - Client syntax errors (malformed sets, unknown SEARCH keys, a quoted
//     string open at the end of the line) are BAD; the session goes on.
//     A mailbox name that is not valid modified UTF-7 is well-formed but
//     names no mailbox, as in Dovecot: NO [NONEXISTENT], NO [CANNOT] for
//     CREATE and RENAME's new name, and LIST matches nothing with it.
//
// # Known deviations
//
//   - BODYSTRUCTURE of malformed MIME: a multipart without any part is
//     given one empty text/plain part (the grammar needs one; the library
//     would panic), and text parts without charset get charset=us-ascii
//     (RFC 2045 §5.2). Past 10000 parts, Dovecot describes the rest of
//     the message as one last part; here the multiparts list no more.
package imap
