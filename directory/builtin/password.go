package builtin

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/mailyard/mailyard/directory"
)

// ErrUnsupportedHash: a stored password hash is malformed, uses a scheme
// this package cannot verify, or has parameters outside the accepted
// bounds.
var ErrUnsupportedHash = errors.New("directory: unsupported password hash")

// Argon2id parameters for new hashes: the first configuration OWASP's
// Password Storage Cheat Sheet recommends (19 MiB, 2 passes, 1 lane).
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Bounds on parameters read from stored hashes, so that a crafted or
// imported hash cannot make one verification take gigabytes or minutes.
const (
	maxArgonMemory = 256 * 1024 // KiB
	maxArgonTime   = 16
	maxArgonLanes  = 16
	maxBcryptCost  = 15
	// MaxPasswordLength bounds the passwords HashPassword accepts and
	// VerifyPassword considers; longer inputs are refused or fail.
	MaxPasswordLength = 1024
)

// HashPassword returns a new argon2id hash of pw in PHC string form
// ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash", unpadded standard base64 as
// in the PHC string format specification and RFC 9106 parameters). Each
// call costs about 19 MiB of memory; servers should go through a
// [PasswordHasher], which bounds how many run at once. Empty passwords and
// passwords over [MaxPasswordLength] bytes are refused with ErrInvalid.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", fmt.Errorf("%w: empty password", directory.ErrInvalid)
	}
	if len(pw) > MaxPasswordLength {
		return "", fmt.Errorf("%w: password longer than %d bytes", directory.ErrInvalid, MaxPasswordLength)
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("directory: password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches hash. It accepts argon2id PHC
// strings (also with Dovecot's "{ARGON2ID}" prefix) and, for accounts
// migrated from other systems, the legacy schemes "{SSHA}", "{SSHA256}",
// "{SSHA512}" (salted SHA, RFC 2307 style as written by OpenLDAP and
// Dovecot), and bcrypt ("$2a$", "$2b$", "$2y$", optionally with a
// "{CRYPT}" or "{BLF-CRYPT}" prefix). Legacy schemes are never produced.
//
// A wrong password is (false, nil). A hash that cannot be verified is
// (false, error wrapping ErrUnsupportedHash). Digests are compared in
// constant time.
func VerifyPassword(hash, pw string) (bool, error) {
	if len(pw) > MaxPasswordLength {
		return false, nil
	}
	scheme, rest := splitScheme(hash)
	switch scheme {
	case "":
		return verifyCrypt(rest, pw)
	case "ARGON2ID":
		return verifyArgon2id(rest, pw)
	case "CRYPT", "BLF-CRYPT":
		return verifyCrypt(rest, pw)
	case "SSHA":
		return verifySaltedSHA(rest, pw, sha1.New)
	case "SSHA256":
		return verifySaltedSHA(rest, pw, sha256.New)
	case "SSHA512":
		return verifySaltedSHA(rest, pw, sha512.New)
	}
	return false, fmt.Errorf("%w: scheme {%s}", ErrUnsupportedHash, scheme)
}

// NeedsRehash reports whether hash should be replaced by a fresh
// [HashPassword] result after a successful login: it is a legacy scheme or
// argon2id with parameters other than the current ones.
func NeedsRehash(hash string) bool {
	p, err := parseArgon2id(hash)
	if err != nil {
		return true
	}
	return p.memory != argonMemory || p.time != argonTime || p.threads != argonThreads ||
		len(p.key) != argonKeyLen
}

// splitScheme separates an RFC 2307 style "{SCHEME}" prefix, upper-cased.
func splitScheme(hash string) (scheme, rest string) {
	if !strings.HasPrefix(hash, "{") {
		return "", hash
	}
	end := strings.IndexByte(hash, '}')
	if end < 0 {
		return "", hash
	}
	return strings.ToUpper(hash[1:end]), hash[end+1:]
}

// verifyCrypt dispatches a crypt(3)-style string on its "$id$" prefix.
func verifyCrypt(s, pw string) (bool, error) {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return verifyArgon2id(s, pw)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return verifyBcrypt(s, pw)
	}
	return false, fmt.Errorf("%w: unknown crypt format", ErrUnsupportedHash)
}

type argon2Params struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parseArgon2id parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash" (the PHC
// string format; Dovecot's "{ARGON2ID}" prefix is accepted).
func parseArgon2id(s string) (argon2Params, error) {
	if scheme, rest := splitScheme(s); scheme == "ARGON2ID" {
		s = rest
	}
	var p argon2Params
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return p, fmt.Errorf("%w: not an argon2id PHC string", ErrUnsupportedHash)
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("%w: argon2id version %q", ErrUnsupportedHash, f[2])
	}
	var seen int
	for kv := range strings.SplitSeq(f[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, fmt.Errorf("%w: argon2id parameter %q", ErrUnsupportedHash, kv)
		}
		switch k {
		case "m":
			p.memory, seen = uint32(n), seen|1
		case "t":
			p.time, seen = uint32(n), seen|2
		case "p":
			if n > maxArgonLanes {
				return p, fmt.Errorf("%w: argon2id parallelism %d", ErrUnsupportedHash, n)
			}
			p.threads, seen = uint8(n), seen|4
		default:
			return p, fmt.Errorf("%w: argon2id parameter %q", ErrUnsupportedHash, kv)
		}
	}
	if seen != 7 {
		return p, fmt.Errorf("%w: argon2id parameters incomplete", ErrUnsupportedHash)
	}
	// RFC 9106 §3.1: at least 8*p KiB of memory, at least one pass.
	if p.threads < 1 || p.time < 1 || p.time > maxArgonTime ||
		p.memory < 8*uint32(p.threads) || p.memory > maxArgonMemory {
		return p, fmt.Errorf("%w: argon2id parameters out of bounds", ErrUnsupportedHash)
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(f[4]); err != nil || len(p.salt) < 8 {
		return p, fmt.Errorf("%w: argon2id salt", ErrUnsupportedHash)
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(f[5]); err != nil || len(p.key) < 16 || len(p.key) > 128 {
		return p, fmt.Errorf("%w: argon2id hash", ErrUnsupportedHash)
	}
	return p, nil
}

func verifyArgon2id(s, pw string) (bool, error) {
	p, err := parseArgon2id(s)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(got, p.key) == 1, nil
}

func verifyBcrypt(s, pw string) (bool, error) {
	cost, err := bcrypt.Cost([]byte(s))
	if err != nil {
		return false, fmt.Errorf("%w: bcrypt: %w", ErrUnsupportedHash, err)
	}
	if cost > maxBcryptCost {
		return false, fmt.Errorf("%w: bcrypt cost %d over %d", ErrUnsupportedHash, cost, maxBcryptCost)
	}
	// bcrypt only reads the first 72 bytes; such passwords could never
	// have been set through bcrypt's own generator either.
	if len(pw) > 72 {
		return false, nil
	}
	// CompareHashAndPassword compares in constant time.
	switch err := bcrypt.CompareHashAndPassword([]byte(s), []byte(pw)); {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("%w: bcrypt: %w", ErrUnsupportedHash, err)
	}
}

// verifySaltedSHA checks base64(digest(pw || salt) || salt), the salted
// SHA layout used by OpenLDAP's {SSHA} and Dovecot's SSHA256/SSHA512.
func verifySaltedSHA(s, pw string, newHash func() hash.Hash) (bool, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return false, fmt.Errorf("%w: salted SHA: %w", ErrUnsupportedHash, err)
	}
	h := newHash()
	size := h.Size()
	if len(raw) <= size {
		return false, fmt.Errorf("%w: salted SHA without salt", ErrUnsupportedHash)
	}
	digest, salt := raw[:size], raw[size:]
	h.Write([]byte(pw))
	h.Write(salt)
	return subtle.ConstantTimeCompare(h.Sum(nil), digest) == 1, nil
}

// PasswordHasher hashes and verifies passwords with a bound on concurrent
// computations: each argon2id run holds about 19 MiB, so an authentication
// flood would otherwise exhaust memory. Callers beyond the bound wait
// (respecting their context). The zero value is not usable; use
// [NewPasswordHasher]. A PasswordHasher is safe for concurrent use.
type PasswordHasher struct {
	sem chan struct{}
}

// dummyHash has the current parameters and a random key nobody knows the
// password for; verifying against it costs what a real verification costs.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$y7yFBANG1/oE2gE4NO0oOQ$rWd+jvwGkO1b6tHVLU/urUWcuWjAIhFQcbbs7Oe4kvw"

// NewPasswordHasher returns a hasher running at most maxConcurrent hash
// computations at once; maxConcurrent <= 0 means GOMAXPROCS.
func NewPasswordHasher(maxConcurrent int) *PasswordHasher {
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	return &PasswordHasher{sem: make(chan struct{}, maxConcurrent)}
}

func (h *PasswordHasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("directory: waiting for a password hashing slot: %w", ctx.Err())
	}
}

func (h *PasswordHasher) release() { <-h.sem }

// Hash is [HashPassword] within the concurrency bound.
func (h *PasswordHasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return HashPassword(pw)
}

// Verify is [VerifyPassword] within the concurrency bound.
func (h *PasswordHasher) Verify(ctx context.Context, hash, pw string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	return VerifyPassword(hash, pw)
}

// VerifyDummy spends the time and memory of verifying pw against a current
// argon2id hash and then reports false. Call it for unknown logins and for
// users without a password, so that response times do not reveal which
// logins exist.
func (h *PasswordHasher) VerifyDummy(ctx context.Context, pw string) error {
	_, err := h.Verify(ctx, dummyHash, pw)
	return err
}
