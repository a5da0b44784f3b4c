package migration

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/hkdf"
)

// MinSecretKeySize is the least number of bytes Options.SecretKey must
// hold.
const MinSecretKeySize = 32

// sealV1 prefixes a password sealed with AES-256-GCM under the key
// derived by hkdfInfoV1: "v1:" + base64(nonce || ciphertext || tag). A
// later scheme gets its own prefix, so records of every version stay
// readable.
const sealV1 = "v1:"

// hkdfInfoV1 binds the derived key to its one use (RFC 5869 §3.2).
const hkdfInfoV1 = "mailyard migration collector password v1"

// ErrNoSecretKey is returned (inside an *Error of class ErrClassConfig)
// when a collector's password would have to be stored or read sealed and
// the Migrator has no Options.SecretKey.
var ErrNoSecretKey = errors.New("migration: no secret key configured (set Options.SecretKey; in examples/migrate [migration] secret_key_file) to seal stored source passwords")

// ErrWrongSecretKey is returned (inside an *Error of class
// ErrClassConfig) for a stored password that the configured
// Options.SecretKey does not open: the key differs from the one it was
// sealed with, or the record was changed.
var ErrWrongSecretKey = errors.New("migration: the stored source password does not open with the configured secret key (configure the key it was sealed with, or give the password again with a force-update run)")

// sealer seals and opens stored passwords. A nil *sealer has no key.
type sealer struct {
	aead cipher.AEAD
}

// newSealer derives the AES-256-GCM key from secret with HKDF-SHA256
// (RFC 5869); an empty secret gives a nil sealer.
func newSealer(secret []byte) (*sealer, error) {
	if len(secret) == 0 {
		return nil, nil
	}
	if len(secret) < MinSecretKeySize {
		return nil, fmt.Errorf("migration: Options.SecretKey has %d bytes, needs at least %d", len(secret), MinSecretKeySize)
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, []byte(hkdfInfoV1)), key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal encrypts password with a fresh random nonce; target (the
// collector's canonical address) is the associated data, so a sealed
// password copied into another collector's record does not open.
func (s *sealer) seal(target, password string) (string, error) {
	if s == nil {
		return "", ErrNoSecretKey
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(password)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := s.aead.Seal(nonce, nonce, []byte(password), []byte(target))
	return sealV1 + base64.StdEncoding.EncodeToString(out), nil
}

// open returns the password sealed by seal for target.
func (s *sealer) open(target, sealed string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, sealV1)
	if !ok {
		return "", fmt.Errorf("migration: stored password has an unknown format (written by a newer version?)")
	}
	if s == nil {
		return "", ErrNoSecretKey
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(b) < s.aead.NonceSize()+s.aead.Overhead() {
		return "", ErrWrongSecretKey
	}
	n := s.aead.NonceSize()
	pw, err := s.aead.Open(nil, b[:n], b[n:], []byte(target))
	if err != nil {
		return "", ErrWrongSecretKey
	}
	return string(pw), nil
}
