package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MetadataEntry is one annotation of a mailbox or of the server (IMAP
// METADATA, RFC 5464 §3): a name in the /private or /shared tree and a
// value of octets.
type MetadataEntry struct {
	// Name is the entry's name as [CanonicalMetadataName] gives it:
	// lower case, "/private/..." or "/shared/...".
	Name string
	// Value is the entry's value. In [Metadata.SetMetadata] nil deletes
	// the entry (RFC 5464 §4.3: NIL removes it); an empty non-nil value
	// is a value.
	Value []byte
}

// MetadataLimits bound the annotations of one account, so that a client
// cannot fill the disk with them. A zero field does not limit.
type MetadataLimits struct {
	// MaxValueBytes is the largest value.
	MaxValueBytes int
	// MaxEntries is how many entries one mailbox, or the server, may
	// have for the account.
	MaxEntries int
	// MaxAccountBytes bounds the names and values of all the account's
	// entries together (the server's and every mailbox's).
	MaxAccountBytes int64
}

// MaxMetadataName is the longest entry name, in bytes.
const MaxMetadataName = 255

// Errors of SetMetadata, told apart so that the IMAP server can answer
// with RFC 5464 §4.3's response codes.
var (
	// ErrMetadataTooLarge: a value is over MetadataLimits.MaxValueBytes
	// (IMAP NO [METADATA MAXSIZE n]).
	ErrMetadataTooLarge = errors.New("store: metadata value too large")
	// ErrMetadataTooMany: the change would take the mailbox over
	// MaxEntries or the account over MaxAccountBytes (IMAP NO
	// [METADATA TOOMANY]).
	ErrMetadataTooMany = errors.New("store: too many metadata entries")
)

// Metadata is an optional capability of a Store, found by type
// assertion: the annotations of the account's mailboxes and of the
// server as the account sees it (RFC 5464). An entry belongs to its
// mailbox: it goes when the mailbox is deleted, follows it when it is
// renamed, and goes with the account.
type Metadata interface {
	// Metadata returns every entry of mailbox, or of the server when
	// mailbox is "", ordered by name. A mailbox that does not exist is
	// ErrNoMailbox; a missing account ErrNotFound.
	Metadata(ctx context.Context, account, mailbox string) ([]MetadataEntry, error)
	// SetMetadata sets the entries with a value and deletes those with
	// a nil one, atomically: when it fails nothing changed (RFC 5464
	// §4.3). Names must be canonical (ErrInvalid otherwise); a name
	// given twice takes its last value. lim is checked against the
	// state after the change; a change that does not grow what is over
	// a limit (a deletion after the limits were lowered) is allowed.
	SetMetadata(ctx context.Context, account, mailbox string, entries []MetadataEntry, lim MetadataLimits) error
}

// CanonicalMetadataName checks an entry name (RFC 5464 §3.2) and returns
// it in lower case, entry names being case-insensitive: it starts with
// "/private/" or "/shared/" followed by at least one component, has no
// empty component ("//", a trailing "/"), no "*" or "%" (they are
// wildcards in other commands), no control characters, and is valid
// UTF-8 of at most MaxMetadataName bytes. Errors wrap [ErrInvalid].
func CanonicalMetadataName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: metadata entry name %q %s", ErrInvalid, name, why)
	}
	if len(name) > MaxMetadataName {
		return bad(fmt.Sprintf("is longer than %d bytes", MaxMetadataName))
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) {
		return bad("is not printable UTF-8")
	}
	if strings.ContainsAny(name, "*%") {
		return bad("holds * or %")
	}
	lower := strings.ToLower(name)
	if !strings.HasPrefix(lower, "/private/") && !strings.HasPrefix(lower, "/shared/") {
		return bad("is not below /private or /shared")
	}
	if strings.HasSuffix(lower, "/") || strings.Contains(lower, "//") {
		return bad("has an empty component")
	}
	return lower, nil
}

// CheckMetadataLimits is the check every backend makes in SetMetadata's
// transaction. before and after are the mailbox's (or the server's)
// entry counts, accountBefore and accountAfter the account's bytes
// (names and values of all its entries) without and with the change.
func CheckMetadataLimits(entries []MetadataEntry, lim MetadataLimits, before, after int, accountBefore, accountAfter int64) error {
	for _, e := range entries {
		if lim.MaxValueBytes > 0 && len(e.Value) > lim.MaxValueBytes {
			return fmt.Errorf("%w: %s has %d bytes, at most %d", ErrMetadataTooLarge, e.Name, len(e.Value), lim.MaxValueBytes)
		}
	}
	if lim.MaxEntries > 0 && after > lim.MaxEntries && after > before {
		return fmt.Errorf("%w: %d entries, at most %d", ErrMetadataTooMany, after, lim.MaxEntries)
	}
	if lim.MaxAccountBytes > 0 && accountAfter > lim.MaxAccountBytes && accountAfter > accountBefore {
		return fmt.Errorf("%w: the account's entries would take %d bytes, at most %d", ErrMetadataTooMany, accountAfter, lim.MaxAccountBytes)
	}
	return nil
}

// ValidMetadataEntries checks that every name is canonical and returns
// the entries with a name given twice reduced to its last value, in the
// order of their last occurrence.
func ValidMetadataEntries(entries []MetadataEntry) ([]MetadataEntry, error) {
	last := make(map[string]int, len(entries))
	for i, e := range entries {
		c, err := CanonicalMetadataName(e.Name)
		if err != nil {
			return nil, err
		}
		if c != e.Name {
			return nil, fmt.Errorf("%w: metadata entry name %q is not canonical", ErrInvalid, e.Name)
		}
		last[e.Name] = i
	}
	out := make([]MetadataEntry, 0, len(last))
	for i, e := range entries {
		if last[e.Name] == i {
			out = append(out, e)
		}
	}
	return out, nil
}

// MetadataSize is what an entry counts toward MaxAccountBytes.
func MetadataSize(name string, value []byte) int64 {
	return int64(len(name) + len(value))
}
