// Package msgtext extracts the searchable text of an RFC 5322 message:
// its header fields with encoded words decoded, and the decoded content
// of its text parts. IMAP SEARCH BODY and TEXT (RFC 9051 §6.4.4) match
// against it, and full-text indexes (store.TextSearcher) are built from
// it; both use this one extraction, so an index built from it finds
// every message a scan finds.
//
// What counts as text:
//
//  1. The top-level header: each field as "Key: value\n", the value
//     with RFC 2047 encoded words decoded (any charset
//     golang.org/x/text knows, so KOI8-R and windows-1251 too).
//  2. Every part whose type is text/* (or that has no Content-Type),
//     with its transfer encoding undone and its charset converted to
//     UTF-8; text/html with its tags, comments, scripts and styles left
//     out and its character references decoded.
//  3. The header fields and texts of attached messages
//     (message/rfc822, message/global), recursively.
//
// Multipart bodies are read with a bounded reader (MultipartReader)
// whose part headers are read by msgheader, as FETCH reads them.
// Nesting deeper than MaxDepth is not read.
package msgtext
