package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// The checks and small computations every backend makes the same way, so
// that storetest's expectations hold for each by construction.

// ValidAccountID checks an account ID: 1 to 255 bytes of UTF-8 without
// control characters. Errors wrap [ErrInvalid].
func ValidAccountID(id string) error {
	if id == "" || len(id) > 255 || !utf8.ValidString(id) || strings.ContainsFunc(id, isControl) {
		return fmt.Errorf("%w: account ID must be 1-255 bytes of UTF-8 without control characters", ErrInvalid)
	}
	return nil
}

// ValidQuota checks that no limit of q is negative (zero is unlimited).
// Errors wrap [ErrInvalid].
func ValidQuota(q Quota) error {
	if q.MaxBytes < 0 || q.MaxMessages < 0 {
		return fmt.Errorf("%w: negative quota", ErrInvalid)
	}
	return nil
}

// ValidSegment checks a collection or object name: one non-empty path
// segment (no "/", not "." or "..") of at most 255 bytes of UTF-8 without
// control characters. what names it in the error, which wraps
// [ErrInvalid].
func ValidSegment(what, name string) error {
	if name == "" || len(name) > 255 || !utf8.ValidString(name) || strings.Contains(name, "/") ||
		name == "." || name == ".." || strings.ContainsFunc(name, isControl) {
		return fmt.Errorf("%w: %s name %q must be one non-empty path segment of at most 255 printable bytes", ErrInvalid, what, name)
	}
	return nil
}

// CanonicalComponents canonicalises a calendar's component names (upper
// case, trimmed); a name that is empty or holds a comma or space is an
// error wrapping [ErrInvalid].
func CanonicalComponents(c []string) ([]string, error) {
	var out []string
	for _, v := range c {
		u := strings.ToUpper(strings.TrimSpace(v))
		if u == "" || strings.ContainsAny(u, ", ") {
			return nil, fmt.Errorf("%w: bad component %q", ErrInvalid, v)
		}
		out = append(out, u)
	}
	return out, nil
}

// ETag is the strong ETag of object data, without quotes: equal bytes,
// equal ETag (RFC 7232 §2.3).
func ETag(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// IfMatch evaluates an If-Match condition (RFC 7232 §3.1) against the
// current object: "" always holds, "*" holds when an object exists, any
// other value, with or without its quotes, must equal its ETag.
func IfMatch(cond string, exists bool, etag string) bool {
	switch {
	case cond == "":
		return true
	case !exists:
		return false
	case cond == "*":
		return true
	}
	if len(cond) >= 2 && cond[0] == '"' && cond[len(cond)-1] == '"' {
		cond = cond[1 : len(cond)-1]
	}
	return cond == etag
}

// ApplyFlags combines a message's current flags (normalised, see
// [NormalizeFlags]) with a STORE of flags (valid) by op. Flags match
// case-insensitively; an existing keyword keeps its spelling. The result
// is new and sorted.
func ApplyFlags(cur []string, op FlagOp, flags []string) []string {
	switch op {
	case FlagsReplace:
		return slices.Clone(flags)
	case FlagsAdd:
		out, _ := NormalizeFlags(append(slices.Clone(cur), flags...)) // both already valid
		return out
	default:
		return slices.DeleteFunc(slices.Clone(cur), func(f string) bool {
			return slices.ContainsFunc(flags, func(x string) bool { return strings.EqualFold(x, f) })
		})
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
