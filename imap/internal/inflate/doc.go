// Package inflate is the DEFLATE (RFC 1951) decompressor of Go's
// compress/flate (inflate.go and dict_decoder.go of Go 1.26, BSD
// licensed: LICENSE), with one change, marked "mailyard:": the output
// decoded so far is given at the end of every block. The standard
// library gives it only after a stored block (Z_SYNC_FLUSH) or the last
// one, so a peer that flushes with Z_PARTIAL_FLUSH, as isync's mbsync
// does for IMAP COMPRESS=DEFLATE (RFC 4978), would wait forever for an
// answer to a command the server cannot read yet.
package inflate
