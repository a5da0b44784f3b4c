// Package msgheader is the module's one reader of a message's header
// block (RFC 5322 §2.1): it splits a message, or a MIME part, into the
// header and the body, and the header into its fields, for DKIM, the
// SMTP checks and DSNs, migration and IMAP.
//
// The header ends at the first empty line ("\r\n" or "\n" alone on a
// line), or at the end of the input for a message that is all header. A
// line that is not a header field (no colon, white space at the start of
// the header) does not end it, as in Dovecot: the header and the body
// together are always the input, byte for byte. What a caller does with
// such a line is the caller's: Scan reports it as a Field that is not
// Valid, with its bytes, so that DKIM can canonicalise it (RFC 6376
// §3.4) and IMAP can leave it out of ENVELOPE.
//
// A header block is bounded in one of two ways. ReadBlock and
// ReadBlockUntil cut it (MaxBlockBytes, MaxBlockLines) and leave the rest
// to be read as the body, where a reader must go on (an IMAP FETCH of a
// stored message); ReadBlockMax cuts it at a byte bound of the caller's;
// AppendBlock fails with ErrTooLarge where a longer header is refused
// (SMTP, DKIM: a header cut short would be signed or checked wrong).
package msgheader
